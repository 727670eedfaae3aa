/* mmap-growsdown-return-address: where does the VMA of a MAP_GROWSDOWN mapping start, relative
 * to the address mmap returns? man 2 mmap says the return address is one page lower than the
 * area created. Prints the returned address and the /proc/self/maps line that holds it. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct utsname u;
	uname(&u);
	char *g = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	if (g == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	printf("kernel %s: mmap returned %p\n", u.release, (void *)g);
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long s, e;
	char line[512];
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s <= (unsigned long)g + page && (unsigned long)g + page < e)
			printf("maps: %s(start - returned = %ld pages)\n", line, (long)(s - (unsigned long)g) / page);
	return 0;
}
