/* eof-tail-zeroed-on-remap: a store past EOF in the EOF page through one MAP_SHARED mapping,
 * munmap (optionally msync first), then a new mapping of the file. POSIX mmap: the system
 * shall always zero-fill any partial page at the end of an object.
 * Usage: tail_remap FILE|memfd [msync]   Prints what the new mapping shows past EOF. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long ps = sysconf(_SC_PAGESIZE);
	int named = argc > 1 && strcmp(argv[1], "memfd");
	int fd = named ? open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600) : memfd_create("probe", 0);
	char *m, *n;

	if (fd < 0 || ftruncate(fd, ps / 2))
		return perror("open/ftruncate"), 2;
	m = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return perror("mmap"), 2;
	memcpy(m + ps / 2 + 8, "tail", 4);
	if (argc > 2 && msync(m, ps, MS_SYNC))
		return perror("msync"), 2;
	munmap(m, ps);
	n = mmap(NULL, ps, PROT_READ, MAP_SHARED, fd, 0);
	if (n == MAP_FAILED)
		return perror("mmap"), 2;
	printf("new mapping past EOF%s: %s\n", argc > 2 ? " (after msync)" : "",
	       memcmp(n + ps / 2 + 8, "tail", 4) ? "zeros" : "the stored bytes");
	if (named)
		unlink(argv[1]);
	return 0;
}
