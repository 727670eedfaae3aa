/* mmap-hugetlb-nopool: MAP_HUGETLB and SHM_HUGETLB with an empty pool, as root and as nobody
 * (no CAP_IPC_LOCK, not in vm.hugetlb_shm_group). Run as root with vm.nr_hugepages=0. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/utsname.h>
#include <unistd.h>

#define HUGE (2UL << 20)

static void probe(const char *who)
{
	void *m = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		       -1, 0);
	printf("%s: mmap MAP_HUGETLB %s\n", who, m == MAP_FAILED ? strerrorname_np(errno) : "ok");
	int id = shmget(IPC_PRIVATE, HUGE, IPC_CREAT | SHM_HUGETLB | 0600);
	printf("%s: shmget SHM_HUGETLB %s\n", who, id < 0 ? strerrorname_np(errno) : "ok");
	if (id >= 0)
		shmctl(id, IPC_RMID, NULL);
}

int main(void)
{
	struct utsname u;
	uname(&u);
	printf("kernel %s\n", u.release);
	probe("root");
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return 1;
	probe("nobody");
	return 0;
}
