/* mmap-sync-private: MAP_PRIVATE|MAP_SYNC on anonymous memory, a memfd and each FILE given. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

static void probe(const char *what, int fd)
{
	int flags = MAP_PRIVATE | MAP_SYNC | (fd < 0 ? MAP_ANONYMOUS : 0);
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, flags, fd, 0);
	printf("%s: MAP_PRIVATE|MAP_SYNC %s\n", what, m == MAP_FAILED ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv)
{
	struct utsname u;
	uname(&u);
	printf("kernel %s\n", u.release);
	probe("anon", -1);
	int fd = memfd_create("sync", 0);
	if (ftruncate(fd, 4096))
		return 1;
	probe("memfd", fd);
	for (int i = 1; i < argc; i++) {
		fd = open(argv[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
		unlink(argv[i]);
		if (fd < 0 || ftruncate(fd, 4096))
			return 1;
		probe(argv[i], fd);
	}
	return 0;
}
