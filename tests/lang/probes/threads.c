/* The truth of the thread cases (cases/threads/), without the harness: plain pthreads.
 *   fault tid=thread si_code=SEGV_ACCERR      a thread's store to a read-only page faults in
 *                                             that thread (the handler runs on it)
 *   grow ok=1 grown=1                          LTP mmap18's MAP_GROWSDOWN thread stack grows
 *   blocked si_code=SEGV_MAPERR                ... and faults with a mapping within the guard gap
 *   noreplace won=1 eexist=1                   two threads racing MAP_FIXED_NOREPLACE
 * Faults are caught on a signal stack and left by siglongjmp, so the probe goes on. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static long page;
static __thread sigjmp_buf back;
static volatile int fault_tid, fault_code;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)ctx;
	fault_tid = (int)syscall(SYS_gettid);
	fault_code = si->si_code;
	siglongjmp(back, 1);
}

static void altstack(void)
{
	stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16};
	sigaltstack(&ss, NULL);
}

static const char *code_name(int code)
{
	return code == SEGV_ACCERR ? "SEGV_ACCERR" : code == SEGV_MAPERR ? "SEGV_MAPERR" : "other";
}

static volatile int my_tid;
static void *store_ro(void *arg)
{
	altstack();
	my_tid = (int)syscall(SYS_gettid);
	if (!sigsetjmp(back, 1))
		*(volatile char *)arg = 1;
	return NULL;
}

static __attribute__((noinline)) uintptr_t descend(uintptr_t limit, int depth)
{
	volatile char frame[512];
	frame[0] = (char)depth;
	uintptr_t here = (uintptr_t)frame;
	if (here <= limit)
		return here;
	uintptr_t low = descend(limit, depth + 1);
	frame[1] = frame[0];
	return low;
}

static void *grow(void *limit)
{
	altstack();
	if (!sigsetjmp(back, 1))
		return (void *)descend((uintptr_t)limit, 0);
	return NULL;
}

/* mmap18's layout: 256 free pages, then a 32-page stack of which the top 4 are mapped */
static char *growsdown_stack(char **top)
{
	size_t reserved = 288 * page;
	char *start = mmap(NULL, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(start, reserved);
	*top = mmap(start + 284 * page, 4 * page, PROT_READ | PROT_WRITE,
		    MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	return start;
}

static char *run_on(char *stack, void *limit)
{
	pthread_attr_t attr;
	pthread_t t;
	void *low = NULL;
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, stack, 32 * page);
	pthread_create(&t, &attr, grow, limit);
	pthread_join(t, &low);
	return low;
}

static char *hole;
static volatile int go, won, eexist;
static void *race(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&go, __ATOMIC_SEQ_CST))
		;
	void *p = mmap(hole, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == hole)
		__atomic_add_fetch(&won, 1, __ATOMIC_SEQ_CST);
	else if (p == MAP_FAILED && errno == EEXIST)
		__atomic_add_fetch(&eexist, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

int main(void)
{
	page = sysconf(_SC_PAGESIZE);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigaction(SIGSEGV, &sa, NULL);

	char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t;
	pthread_create(&t, NULL, store_ro, ro);
	pthread_join(t, NULL);
	printf("fault tid=%s si_code=%s\n",
	       fault_tid == my_tid && fault_tid != getpid() ? "thread" : "other", code_name(fault_code));

	char *top, *start = growsdown_stack(&top);
	char *low = run_on(start + 256 * page, start + 257 * page);
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512];
	int grown = 0;
	while (maps && fgets(line, sizeof line, maps)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && hi == (unsigned long)(start + 288 * page))
			grown = lo <= (unsigned long)(start + 257 * page);
	}
	printf("grow ok=%d grown=%d\n", low != NULL && low <= start + 257 * page, grown);

	start = growsdown_stack(&top);
	mmap(start + 256 * page, page, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
	     -1, 0);
	fault_code = 0;
	low = run_on(start + 256 * page, start + 257 * page);
	printf("blocked si_code=%s\n", low == NULL ? code_name(fault_code) : "none");

	hole = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t a, b;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	char *stacks = mmap(NULL, 128 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, page); /* after the stacks: starting the threads maps nothing over it */
	pthread_attr_setstack(&attr, stacks, 64 * page);
	pthread_create(&a, &attr, race, NULL);
	pthread_attr_setstack(&attr, stacks + 64 * page, 64 * page);
	pthread_create(&b, &attr, race, NULL);
	__atomic_store_n(&go, 1, __ATOMIC_SEQ_CST);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	printf("noreplace won=%d eexist=%d\n", won, eexist);
	return 0;
}
