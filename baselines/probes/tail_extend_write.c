/* trunc-extend-write-gap-zero: bytes stored through MAP_SHARED past EOF in the EOF page, then
 * the file extended by pwrite(2) past them. POSIX lseek: the gap reads as zeros until written.
 * Usage: tail_extend_write FILE (a path on the filesystem under test) | memfd
 * Prints what read(2) and a new mapping return for the gap. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long ps = sysconf(_SC_PAGESIZE);
	int fd = argc > 1 && strcmp(argv[1], "memfd") ? open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600)
						       : memfd_create("probe", 0);
	char got[6] = {0}, *m, *n;

	if (fd < 0 || ftruncate(fd, ps / 2))
		return perror("open/ftruncate"), 2;
	m = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return perror("mmap"), 2;
	memcpy(m + ps / 2 + 8, "stale", 5);
	if (pwrite(fd, "end", 3, ps + 16) != 3)
		return perror("pwrite"), 2;
	if (pread(fd, got, 5, ps / 2 + 8) != 5)
		return perror("pread"), 2;
	printf("read(2) of the gap: %s\n", got[0] ? got : "zeros");
	n = mmap(NULL, ps, PROT_READ, MAP_SHARED, fd, 0);
	printf("new mapping of the gap: %s\n", n[ps / 2 + 8] ? "stale bytes" : "zeros");
	if (argc > 1 && strcmp(argv[1], "memfd"))
		unlink(argv[1]);
	return 0;
}
