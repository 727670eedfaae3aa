/* The truth of the self-test matrix's expectations, observed without the harness.
 *
 * Each line is "KIND OBSERVATION", one per expectation kind of tests/matrix/matrixgen.py, whose
 * right expectations must say the same (test_matrix.py compares the two). Faults run in a fork
 * child whose SA_SIGINFO handler writes signo, si_code and the offset of si_addr into a shared
 * page before the child dies by the same signal again, which its parent sees in the wait status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct seen { int signo, code; uintptr_t addr; };
static struct seen *shared;

static void record(int signo, siginfo_t *si, void *ctx)
{
	(void)ctx;
	shared->signo = signo;
	shared->code = si->si_code;
	shared->addr = (uintptr_t)si->si_addr;
}

static const char *code_name(int signo, int code)
{
	if (signo == SIGSEGV && code == SEGV_MAPERR) return "SEGV_MAPERR";
	if (signo == SIGSEGV && code == SEGV_ACCERR) return "SEGV_ACCERR";
	if (signo == SIGBUS && code == BUS_ADRERR) return "BUS_ADRERR";
	return "OTHER";
}

/* Fork, store to (or load from) addr in the child, and print how the child died. */
static void fault(const char *kind, volatile char *base, long off, int store)
{
	memset(shared, 0, sizeof *shared);
	pid_t pid = fork();
	if (pid == 0) {
		struct sigaction sa = { .sa_sigaction = record, .sa_flags = SA_SIGINFO | SA_RESETHAND };
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		if (store)
			base[off] = 1;
		else
			(void)base[off];
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	if (!WIFSIGNALED(status)) {
		printf("%s exit %d\n", kind, WEXITSTATUS(status));
		return;
	}
	printf("%s SIG%s %s offset %ld\n", kind, sigabbrev_np(shared->signo),
	       code_name(shared->signo, shared->code), (long)(shared->addr - (uintptr_t)base));
	printf("%s wait SIG%s\n", kind, sigabbrev_np(WTERMSIG(status)));
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	shared = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int32_t v = 42;
	memcpy(m, &v, sizeof v);
	memcpy(&v, m, sizeof v);
	printf("value %d\n", v);
	printf("comparators %d\n", v);
	memcpy(m, "AB", 2);
	printf("bytes %02x%02x\n", (unsigned char)m[0], (unsigned char)m[1]);

	char *sh = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char line[256], want[32];
	snprintf(want, sizeof want, "%lx-%lx ", (unsigned long)sh, (unsigned long)(sh + page));
	FILE *maps = fopen("/proc/self/maps", "r");
	while (fgets(line, sizeof line, maps))
		if (strncmp(line, want, strlen(want)) == 0) {
			char perms[8];
			sscanf(line, "%*s %7s", perms);
			printf("fields perms %s\n", perms);
		}
	fclose(maps);

	errno = 0;
	printf("errno %s\n", munmap(m + 1, page) == 0 ? "none" : strerrorname_np(errno));

	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int status;
	waitpid(pid, &status, 0);
	printf("exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

	char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fault("signal", ro, 5, 1);
	fault("wait-death", ro, 5, 1);

	char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(two + page, page);
	fault("si_code", two, page, 0);

	int fd = memfd_create("probe", 0);
	if (ftruncate(fd, page) != 0)
		return 1;
	char *f = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, fd, 0);
	fault("si_addr", f, page + 7, 0);
	return 0;
}
