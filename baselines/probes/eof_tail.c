/* Bytes stored through MAP_SHARED past EOF in the EOF page, then:
 *   extend  pwrite(2) past them extends the file (trunc-extend-write-gap-zero; POSIX lseek:
 *           the gap reads as zeros until written)
 *   remap   munmap, optionally msync first, and a new mapping (eof-tail-zeroed-on-remap;
 *           POSIX mmap: the system shall always zero-fill any partial page at the end)
 * Usage: eof_tail extend|remap FILE|memfd [msync]   Prints what the gap shows. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *seen(const char *p)
{
	return memcmp(p, "tail", 4) ? "zeros" : "the stored bytes";
}

int main(int argc, char **argv)
{
	long ps = sysconf(_SC_PAGESIZE);
	int named = argc > 2 && strcmp(argv[2], "memfd");
	int fd = named ? open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0600) : memfd_create("probe", 0);
	char got[4], *m, *n;

	if (argc < 3 || (strcmp(argv[1], "extend") && strcmp(argv[1], "remap")))
		return fprintf(stderr, "usage: %s extend|remap FILE|memfd [msync]\n", argv[0]), 2;
	if (fd < 0 || ftruncate(fd, ps / 2))
		return perror("open/ftruncate"), 2;
	m = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return perror("mmap"), 2;
	memcpy(m + ps / 2 + 8, "tail", 4);
	if (argc > 3 && msync(m, ps, MS_SYNC))
		return perror("msync"), 2;
	if (!strcmp(argv[1], "extend")) {
		if (pwrite(fd, "end", 3, ps + 16) != 3 || pread(fd, got, 4, ps / 2 + 8) != 4)
			return perror("pwrite/pread"), 2;
		printf("read(2) of the gap: %s\n", seen(got));
	}
	munmap(m, ps);
	n = mmap(NULL, ps, PROT_READ, MAP_SHARED, fd, 0);
	if (n == MAP_FAILED)
		return perror("mmap"), 2;
	printf("new mapping of the gap%s: %s\n", argc > 3 ? " (after msync)" : "", seen(n + ps / 2 + 8));
	if (named)
		unlink(argv[2]);
	return 0;
}
