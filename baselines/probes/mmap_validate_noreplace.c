/* mmap-validate-noreplace: MAP_SHARED_VALIDATE with MAP_FIXED_NOREPLACE (a known flag since
 * 4.17) on a free, page-aligned address; then MAP_SHARED with it, for comparison.
 * Argument: a file to map (default /dev/shm/mmap_validate_noreplace, created). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

static void try(const char *what, int fd, int flags, long page)
{
	char *hint = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hint, page);
	char *p = mmap(hint, page, PROT_READ, flags, fd, 0);
	printf("%s: %s\n", what, p == MAP_FAILED ? strerrorname_np(errno) : p == hint ? "ok, at the address" : "ok, elsewhere");
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/shm/mmap_validate_noreplace";
	long page = sysconf(_SC_PAGESIZE);
	struct utsname u;
	uname(&u);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, page)) {
		perror(path);
		return 1;
	}
	printf("kernel %s, %s\n", u.release, path);
	try("MAP_SHARED_VALIDATE|MAP_FIXED_NOREPLACE", fd, MAP_SHARED_VALIDATE | MAP_FIXED_NOREPLACE, page);
	try("MAP_SHARED_VALIDATE|MAP_FIXED", fd, MAP_SHARED_VALIDATE | MAP_FIXED, page);
	try("MAP_SHARED|MAP_FIXED_NOREPLACE", fd, MAP_SHARED | MAP_FIXED_NOREPLACE, page);
	return 0;
}
