/* mremap-across-vmas-fixed: a MREMAP_MAYMOVE|MREMAP_FIXED shrink whose new_size spans two VMAs.
 * Prints the errno and, per page, whether the source and destination are still mapped. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *mapped(char *p, long page)
{
	unsigned char v;
	return mincore(p, page, &v) == 0 ? "mapped" : strerrorname_np(errno);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct utsname u;
	uname(&u);
	char *src = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mprotect(src, page, PROT_NONE);
	char *dst = mmap(NULL, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *r = mremap(src, 3 * page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	printf("kernel %s: mremap %s\n", u.release, r == MAP_FAILED ? strerrorname_np(errno) : "ok");
	for (int i = 0; i < 3; i++)
		printf("src+%d page: %s\n", i, mapped(src + i * page, page));
	for (int i = 0; i < 2; i++)
		printf("dst+%d page: %s\n", i, mapped(dst + i * page, page));
	return 0;
}
