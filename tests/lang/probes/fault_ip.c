/* The truth of the `ip` expectation, without the harness: where the kernel says a SIGSEGV's
 * faulting instruction is (the ucontext's program counter), for a fetch from a page that is not
 * executable, and for a store to address 0 by code at a known place (x86-64). Prints
 * "fetch si_addr=+OFF ip=+OFF" and "store si_addr=ADDR ip=+OFF", offsets from the code page. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf back;
static volatile uintptr_t seen_addr, seen_ip;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	(void)sig;
	seen_addr = (uintptr_t)si->si_addr;
#if defined(__x86_64__)
	seen_ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	seen_ip = (uintptr_t)uc->uc_mcontext.pc;
#endif
	siglongjmp(back, 1);
}

static void run(unsigned char *page)
{
	if (!sigsetjmp(back, 1))
		((int (*)(void))page)();
}

int main(void)
{
	long psz = sysconf(_SC_PAGESIZE);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	unsigned char *page = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return 2;
	run(page); /* not executable: the fetch itself faults */
	printf("fetch si_addr=+%ld ip=+%ld\n", (long)(seen_addr - (uintptr_t)page),
	       (long)(seen_ip - (uintptr_t)page));
#if defined(__x86_64__)
	/* four nops, then mov dword [0], 0 (gVisor's Fault(): a store through NULL), ret */
	static const unsigned char code[] = {0x90, 0x90, 0x90, 0x90, 0xc7, 0x04, 0x25, 0, 0,
					     0,    0,    0,    0,    0,    0,    0xc3};
	memcpy(page, code, sizeof code);
	mprotect(page, psz, PROT_READ | PROT_EXEC);
	run(page);
	printf("store si_addr=%#lx ip=+%ld\n", (unsigned long)seen_addr,
	       (long)(seen_ip - (uintptr_t)page));
#endif
	return 0;
}
