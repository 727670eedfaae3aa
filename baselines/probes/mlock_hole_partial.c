/* mlock-fail-no-change: mlock over [page, hole, page], both pages touched. man 2 mlock says a
 * failed call changes no locks; prints the errno, VmLck, and whether each page is locked
 * (msync(MS_ASYNC|MS_INVALIDATE) is EBUSY exactly on a locked range, man 2 msync). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "vmlck.h"


static const char *locked(char *p, long page)
{
	return msync(p, page, MS_ASYNC | MS_INVALIDATE) == 0 ? "not locked" : errno == EBUSY ? "locked" : strerrorname_np(errno);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct utsname u;
	uname(&u);
	char *m = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	m[0] = m[2 * page] = 1;
	munmap(m + page, page);
	int r = mlock(m, 3 * page);
	printf("kernel %s: mlock %s, VmLck %ld kB\n", u.release, r ? strerrorname_np(errno) : "ok", vmlck());
	printf("page 0: %s\npage 2: %s\n", locked(m, page), locked(m + 2 * page, page));
	return 0;
}
