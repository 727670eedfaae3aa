/* mremap-dontunmap-locked: MREMAP_DONTUNMAP of an mlocked page, then both ranges unmapped.
 * Prints VmLck (from /proc/self/status) at each point; man 2 mremap says the lock moves with the
 * mapping, so the expected figures are one page, one page, and 0 once both are unmapped. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "vmlck.h"


int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct utsname u;
	uname(&u);
	char *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m[0] = 1;
	if (mlock(m, page)) {
		perror("mlock");
		return 1;
	}
	printf("kernel %s: locked one page: VmLck %ld kB\n", u.release, vmlck());
	char *n = mremap(m, page, page, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	if (n == MAP_FAILED) {
		perror("mremap");
		return 1;
	}
	printf("after MREMAP_DONTUNMAP: VmLck %ld kB\n", vmlck());
	munmap(m, page);
	munmap(n, page);
	printf("after unmapping both: VmLck %ld kB\n", vmlck());
	return 0;
}
