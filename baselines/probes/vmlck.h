/* VmLck of this process, in kB, from /proc/self/status (-1 if absent): shared by the probes
 * that check locked-memory accounting. */
#include <stdio.h>
#include <string.h>

static long vmlck(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmLck:", 6) == 0)
			sscanf(line + 6, "%ld", &kb);
	if (f)
		fclose(f);
	return kb;
}
