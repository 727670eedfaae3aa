/* memfd-grow-partial-write: with F_SEAL_GROW, pwrite of one page at 3/4 of a one-page memfd
 * (EOF on a page boundary), and of half a page at 1/4 of a half-page memfd (EOF inside a page).
 * For each shmem_enabled setting given (written to /sys, so run it as root in a guest), or the
 * current one with no arguments: each write's result and the size after it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define SHMEM_ENABLED "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static void grow_write(const char *setting, long size, long offset, long length)
{
	static char buf[1 << 16];
	struct stat st;
	int fd = memfd_create("partial", MFD_ALLOW_SEALING);
	if (ftruncate(fd, size) || fcntl(fd, F_ADD_SEALS, F_SEAL_GROW))
		perror("setup");
	ssize_t n = pwrite(fd, buf, length, offset);
	int err = errno;
	fstat(fd, &st);
	printf("shmem_enabled %s: size %ld, pwrite %ld at %ld: ", setting, size, length, offset);
	if (n < 0)
		printf("%s", strerrorname_np(err));
	else
		printf("%zd", n);
	printf(", size after %lld\n", (long long)st.st_size);
	close(fd);
}

static void probe(long page)
{
	char setting[128] = "?";
	FILE *f = fopen(SHMEM_ENABLED, "r");
	if (f) {
		if (!fgets(setting, sizeof setting, f))
			strcpy(setting, "?");
		setting[strcspn(setting, "\n")] = 0;
		fclose(f);
	}
	grow_write(setting, page, 3 * page / 4, page);
	grow_write(setting, page / 2, page / 4, page / 2);
}

int main(int argc, char **argv)
{
	struct utsname u;
	uname(&u);
	printf("kernel %s, page %ld\n", u.release, sysconf(_SC_PAGESIZE));
	if (argc == 1)
		probe(sysconf(_SC_PAGESIZE));
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(SHMEM_ENABLED, "w");
		if (!f || fputs(argv[i], f) < 0 || fclose(f)) {
			printf("cannot set %s: %s\n", argv[i], strerror(errno));
			continue;
		}
		probe(sysconf(_SC_PAGESIZE));
	}
	return 0;
}
