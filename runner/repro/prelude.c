/* ---- the harness part: shared page, fault capture, judging helpers ------------------------ */
#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wunused-function" /* each case uses some of these helpers */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <linux/io_uring.h>
#include <linux/fs.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define EXIT_DONE 0    /* every step ran and every expectation held */
#define EXIT_FAILED 3  /* an expectation did not hold (the process printed its FAIL line) */
#define EXIT_ABORTED 4 /* another process failed first; this one gave up waiting */
#define EXIT_ERROR 70  /* the case could not be carried out as written */
#define SHOWN_ITERATIONS 3 /* steps inside a repeat print their first iterations only */

typedef long long i64;

/* One process of the case, as the harness (the top process) sees it on the shared page. The
 * SIGSEGV/SIGBUS handler records siginfo here just before the process dies of it. */
struct slot {
	int pid, step, in_step;  /* pid: a thread's id; a process's own pid */
	int tgid;                /* the process a thread belongs to (a process's own pid) */
	int signo, code;        /* what the fault handler recorded */
	uint64_t addr;
	int want_signo, want_code, want_has_addr; /* the open step expects this death */
	uint64_t want_addr;
	const char *name;
	uint64_t ip;                      /* the faulting instruction, from the ucontext */
	int want_nip, want_ip_ops[6];     /* the open step's ip: comparators (0 eq .. 5 le) */
	uint64_t want_ip[6];
};

struct shared {
	int events[256]; /* post / wait_for: 0 until posted (futex words) */
	int aborted;     /* set when a process failed: every wait_for gives up */
	int failures, errors; /* counted where they are seen */
	int nkills;
	struct {
		int target, signo;
	} kills[64]; /* what the case's kill steps sent */
	struct slot slots[512];
};

struct step_info {
	const char *label, *op, *where, *expected;
};

struct bytes {
	unsigned char *p;
	i64 n;
};

/* A /proc mapping record (smaps, proc_status): name -> integer or text. */
struct kv {
	int n;
	char key[96][48];
	char text[96][128];
	int is_int[96];
	i64 num[96];
};

struct wait_result {
	int exited, status, sig, code; /* code: si_code recorded by the child, or -1000 */
	uint64_t addr;                 /* si_addr, when code was recorded */
};

struct maps_line {
	i64 start, end, offset, inode;
	char perms[8], dev[16], path[256];
};

struct cstat_range { /* struct cachestat_range of <linux/mman.h> */
	uint64_t off, len;
};

struct cstat { /* struct cachestat of <linux/mman.h> */
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* @@CASE_TABLES@@ */

static struct shared *shared;
static const struct step_info *const S = STEPS;
/* per thread: each thread of a case process runs its own steps, in its own slot */
static __thread struct slot *me;
static i64 PAGE;
static char scratch[PATH_MAX];
static __thread char got[8192];  /* the current step's observation, as text */
static __thread i64 shown_iteration; /* the innermost repeat's iteration (0 outside loops) */
static unsigned timeout_s;
static const char *errno_name(int e);
static const char *signal_name(int s);
static const char *si_code_name(int sig, int code);

static void say(const char *fmt, ...)
{
	char line[9000];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* one write per line: processes of the case print concurrently */
	if (write(1, line, n) < 0)
		_exit(EXIT_ERROR);
}

static void got_text(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(got, sizeof got, fmt, ap);
	va_end(ap);
}

/* ---- events and abort: futex words on the shared page ---- */
static long futex(int *word, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static void abort_case(void)
{
	__atomic_store_n(&shared->aborted, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 256; i++)
		futex(&shared->events[i], FUTEX_WAKE, INT_MAX, NULL);
}

static void post(int event)
{
	__atomic_store_n(&shared->events[event], 1, __ATOMIC_SEQ_CST);
	futex(&shared->events[event], FUTEX_WAKE, INT_MAX, NULL);
}

static void wait_for(int event)
{
	struct timespec slice = {0, 50 * 1000 * 1000};
	while (!__atomic_load_n(&shared->events[event], __ATOMIC_SEQ_CST)) {
		if (__atomic_load_n(&shared->aborted, __ATOMIC_SEQ_CST))
			_exit(EXIT_ABORTED); /* another process failed: this case is over */
		futex(&shared->events[event], FUTEX_WAIT, 0, &slice);
	}
}

/* ---- fault capture: record siginfo, return, fault again and die by the signal ---- */
static void on_fault(int sig, siginfo_t *info, void *context)
{
	ucontext_t *uc = context;
#if defined(__x86_64__)
	me->ip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	me->ip = (uint64_t)uc->uc_mcontext.pc;
#else
	(void)uc;
#endif
	me->signo = sig;
	me->code = info->si_code;
	me->addr = (uint64_t)(uintptr_t)info->si_addr;
}

/* RLIMIT_AS as the engine sets it: what the process maps now plus ADDRESS_SPACE_PAGES (the
 * case's address_space), never raised: a fork child keeps its parent's budget. */
static void limit_address_space(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long pages = 0;
	if (!f)
		return;
	int got = fscanf(f, "%llu", &pages);
	fclose(f);
	if (got != 1)
		return;
	struct rlimit r;
	getrlimit(RLIMIT_AS, &r);
	rlim_t limit = (rlim_t)(pages + ADDRESS_SPACE_PAGES) * (rlim_t)sysconf(_SC_PAGESIZE);
	if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < limit)
		limit = r.rlim_cur;
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < limit)
		limit = r.rlim_max;
	r.rlim_cur = r.rlim_max = limit;
	setrlimit(RLIMIT_AS, &r);
}

static void begin_process(const char *name)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	/* SA_RESETHAND: the disposition is the default again when the handler returns, so the
	 * faulting access runs again and the process dies by that very signal */
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER | SA_ONSTACK; /* a thread's own stack */
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0); /* no core_pattern helper dumps an expected fault either */
	limit_address_space();
	me = &shared->slots[getpid() % 512];
	memset(me, 0, sizeof *me);
	me->name = name;
	me->pid = me->tgid = getpid();
	alarm(timeout_s + 2); /* a backstop, should the top process be gone */
}

/* ---- threads: the `thread` step's steps on a new thread, with a slot and a signal stack of its
 * own (a stack that cannot grow still runs the fault handler); `join` is pthread_join ---- */
#define ALTSTACK_SIZE (64 << 10)
struct thread_start {
	void (*body)(void);
	const char *name;
	char *altstack;
};

static void *thread_main(void *arg)
{
	struct thread_start *t = arg;
	stack_t ss = {.ss_sp = t->altstack, .ss_size = ALTSTACK_SIZE};
	sigaltstack(&ss, NULL);
	int tid = (int)syscall(SYS_gettid);
	me = &shared->slots[tid % 512];
	memset(me, 0, sizeof *me);
	me->name = t->name;
	me->pid = tid;
	me->tgid = getpid();
	t->body();
	return NULL;
}

static int start_thread(pthread_t *th, pthread_attr_t *attr, void (*body)(void), const char *name)
{
	struct thread_start *t = calloc(1, sizeof *t);
	char *alt = malloc(ALTSTACK_SIZE); /* under the break: not in a gap the case keeps free */
	if (!t || !alt)
		return ENOMEM;
	t->body = body;
	t->name = name;
	t->altstack = alt;
	return pthread_create(th, attr, thread_main, t);
}

/* The frames of a recursive function, each touching its own bytes, down to TO: what LTP mmap18's
 * thread does to its MAP_GROWSDOWN stack. Returns the lowest frame's address. */
static __attribute__((noinline)) i64 descend(i64 to, int depth)
{
	volatile char frame[512];
	frame[0] = (char)depth;
	i64 here = (i64)(uintptr_t)frame;
	if (here <= to)
		return here;
	i64 low = descend(to, depth + 1);
	frame[1] = frame[0]; /* used after the call: no tail call */
	return low;
}

static void case_error(int k, const char *message);
static i64 grow_stack(i64 to)
{
	char here;
	if (to < (i64)(uintptr_t)&here - (64 << 20))
		case_error(me->step, "grow_stack: more than 64 MiB below the stack");
	return descend(to, 0);
}

/* ---- steps: begin, then ok() or fail() ---- */
static void begin(int k)
{
	me->step = k;
	me->want_signo = 0;
	me->want_nip = 0;
	me->in_step = 1;
	got[0] = 0;
}

static void expect_signal(int signo, int code, int has_addr, i64 addr)
{
	me->want_signo = signo;
	me->want_code = code;
	me->want_has_addr = has_addr;
	me->want_addr = (uint64_t)addr;
}

/* One comparator of the open step's ip expectation (an address alone is eq). */
static void expect_ip(int op, i64 addr)
{
	if (me->want_nip < 6) {
		me->want_ip_ops[me->want_nip] = op;
		me->want_ip[me->want_nip++] = (uint64_t)addr;
	}
}

static int ip_matches(const struct slot *s)
{
	for (int i = 0; i < s->want_nip; i++) {
		i64 have = (i64)s->ip, want = (i64)s->want_ip[i];
		int r[] = {have == want, have != want, have > want, have >= want, have < want, have <= want};
		if (!r[s->want_ip_ops[i]])
			return 0;
	}
	return 1;
}

static void ok(int k)
{
	me->in_step = 0;
	if (shown_iteration < SHOWN_ITERATIONS)
		say("  %s step %s (%s): %s", me->name, S[k].label, S[k].op, got[0] ? got : "success");
}

static void fail(int k)
{
	say("FAIL %s step %s (%s): expected %s, got %s   [%s]", me->name, S[k].label, S[k].op,
	    S[k].expected, got[0] ? got : "success", S[k].where);
	__atomic_add_fetch(&shared->failures, 1, __ATOMIC_SEQ_CST);
	abort_case();
	_exit(EXIT_FAILED);
}

static void case_error(int k, const char *message)
{
	say("ERROR %s step %s (%s): %s   [%s]", me->name, S[k].label, S[k].op, message,
	    S[k].where);
	__atomic_add_fetch(&shared->errors, 1, __ATOMIC_SEQ_CST);
	abort_case();
	_exit(EXIT_ERROR);
}

/* ---- observations as text ---- */
static void got_errno(int e)
{
	got_text("errno %s", errno_name(e));
}

static void got_int(i64 v)
{
	got_text("success, value %lld", v);
}

static void got_addr(i64 v)
{
	got_text("success, value %#llx", v);
}

static void got_bytes(struct bytes b)
{
	char *out = got + snprintf(got, sizeof got, "success, value {hex ");
	for (i64 i = 0; i < b.n && i < 48; i++)
		out += sprintf(out, "%02x", b.p[i]);
	sprintf(out, "%s} (%lld bytes)", b.n > 48 ? "..." : "", b.n);
}

static void got_list(struct bytes b)
{
	char *out = got + snprintf(got, sizeof got, "success, value [");
	for (i64 i = 0; i < b.n && i < 64; i++)
		out += sprintf(out, "%s%d", i ? ", " : "", b.p[i]);
	sprintf(out, "%s]", b.n > 64 ? ", ..." : "");
}

static void got_wait(struct wait_result w)
{
	if (w.exited)
		got_text("success, value {exit: %d}", w.status);
	else if (w.code != -1000)
		got_text("success, value {signal: %s, si_code: %s, si_addr: %#llx}", signal_name(w.sig),
			 si_code_name(w.sig, w.code), (unsigned long long)w.addr);
	else
		got_text("success, value {signal: %s}", signal_name(w.sig));
}

/* ---- arithmetic as the case language defines it (Python's floor division) ---- */
static i64 floordiv(i64 a, i64 b)
{
	if (b == 0) {
		say("ERROR %s: division by zero in an expression", me->name);
		_exit(EXIT_ERROR);
	}
	i64 q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static i64 floormod(i64 a, i64 b)
{
	return a - floordiv(a, b) * b;
}

static i64 min_(i64 a, i64 b)
{
	return a < b ? a : b;
}

static i64 max_(i64 a, i64 b)
{
	return a > b ? a : b;
}

static i64 align_up(i64 x, i64 a)
{
	return -floordiv(-x, a) * a;
}

static i64 align_down(i64 x, i64 a)
{
	return floordiv(x, a) * a;
}

/* ---- memory: real CPU accesses through libc's memmove, never folded away by the compiler ---- */
static void *(*volatile mem_move)(void *, const void *, size_t) = memmove;

static struct bytes load(i64 addr, i64 n)
{
	struct bytes b = {calloc(n > 0 ? n : 1, 1), n};
	mem_move(b.p, (void *)(uintptr_t)addr, (size_t)n);
	return b;
}

static void store(i64 addr, const void *data, i64 n)
{
	mem_move((void *)(uintptr_t)addr, data, (size_t)n);
}

static int bytes_eq(struct bytes b, const char *want, i64 n)
{
	return b.n == n && memcmp(b.p, want, n) == 0;
}

/* pick(i, ...) with i outside its choices: the engine ends the case as an error there too */
static i64 pick_out(i64 index, i64 n)
{
	char msg[96];
	snprintf(msg, sizeof msg, "pick: index %lld is outside 0..%lld", index, n - 1);
	case_error(me->step, msg);
	return 0;
}

/* userfaultfd(2) with its API handshake, as the engine makes it */
static int uffd_open(int flags)
{
	int fd = (int)syscall(SYS_userfaultfd, flags | O_CLOEXEC);
	struct uffdio_api api = {.api = UFFD_API, .features = 0};
	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* the pattern repeated whole ({fill: "00"}: every byte zero) */
static int bytes_fill(struct bytes b, const char *pattern, i64 n)
{
	if (b.n <= 0 || n <= 0 || b.n % n)
		return 0;
	for (i64 i = 0; i < b.n; i += n)
		if (memcmp(b.p + i, pattern, n))
			return 0;
	return 1;
}

/* an 's' field of a struct format read back as text: trailing NULs removed */
static int field_text_eq(struct bytes b, i64 off, i64 size, const char *want)
{
	i64 n = size;
	while (n > 0 && b.p[off + n - 1] == 0)
		n--;
	return (i64)strlen(want) == n && memcmp(b.p + off, want, n) == 0;
}

static void put_int(unsigned char *at, int size, i64 value)
{
	for (int i = 0; i < size; i++) /* little-endian */
		at[i] = (unsigned char)((uint64_t)value >> (8 * i));
}

static i64 field_int(struct bytes b, i64 off, int size, int is_signed)
{
	uint64_t v = 0;
	for (int i = size - 1; i >= 0; i--) /* little-endian, as '<' says */
		v = v << 8 | b.p[off + i];
	if (is_signed && size < 8 && (v >> (8 * size - 1)) & 1)
		v |= ~(uint64_t)0 << (8 * size);
	return (i64)v;
}

/* ---- /proc/self/smaps, /proc/self/maps, /proc/self/status ---- */
static void kv_add(struct kv *r, const char *key, const char *rest)
{
	if (r->n >= 96)
		return;
	int i = r->n++;
	snprintf(r->key[i], sizeof r->key[i], "%s", key);
	while (*rest == ' ' || *rest == '\t')
		rest++;
	snprintf(r->text[i], sizeof r->text[i], "%s", rest);
	r->text[i][strcspn(r->text[i], "\n")] = 0;
	char *end;
	r->num[i] = strtoll(r->text[i], &end, 10);
	r->is_int[i] = end != r->text[i] && r->text[i][0] >= '0' && r->text[i][0] <= '9' &&
		       (*end == 0 || *end == ' ');
}

static int kv_find(const struct kv *r, const char *key)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->key[i], key) == 0)
			return i;
	return -1;
}

/* field KEY compared with OP to an integer (when the expectation is one) or to TEXT */
enum { EQ, NE, GT, GE, LT, LE };
static int cmp(i64 have, int op, i64 want)
{
	switch (op) {
	case EQ: return have == want;
	case NE: return have != want;
	case GT: return have > want;
	case GE: return have >= want;
	case LT: return have < want;
	default: return have <= want;
	}
}

static int kv_cmp(const struct kv *r, const char *key, int op, int want_is_int, i64 want,
		  const char *text)
{
	int i = kv_find(r, key);
	if (i < 0)
		return 0;
	if (r->is_int[i] && want_is_int)
		return cmp(r->num[i], op, want);
	if (op == EQ || op == NE) /* text against text, or a number against text: never equal */
		return (op == EQ) == (!r->is_int[i] && strcmp(r->text[i], text) == 0);
	return 0; /* an order between text and a number does not exist */
}

static int kv_contains(const struct kv *r, const char *key, const char *part)
{
	int i = kv_find(r, key);
	return i >= 0 && !r->is_int[i] && strstr(r->text[i], part) != NULL;
}

static i64 kv_int(const struct kv *r, const char *key)
{
	int i = kv_find(r, key);
	if (i < 0 || !r->is_int[i]) {
		say("ERROR %s: the record has no integer field %s", me->name, key);
		_exit(EXIT_ERROR);
	}
	return r->num[i];
}

static void got_kv(const struct kv *r, const char *const *keys, int nkeys)
{
	char *out = got + snprintf(got, sizeof got, "success, value {");
	for (int k = 0; k < nkeys; k++) {
		int i = kv_find(r, keys[k]);
		if (i >= 0)
			out += snprintf(out, 200, "%s%s: %s", k ? ", " : "", keys[k], r->text[i]);
	}
	sprintf(out, "}");
}

/* the smaps entry of the mapping holding ADDR; -1 with errno EFAULT when nothing is mapped there */
static int read_smaps(i64 addr, struct kv *r)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int found = 0;
	memset(r, 0, sizeof *r);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long long start, end;
		char *colon = strchr(line, ':');
		char *space = strchr(line, ' ');
		int header = strchr(line, '-') && (!colon || (space && space < colon));
		if (header && sscanf(line, "%llx-%llx", &start, &end) == 2) {
			if (found)
				break;
			if (start <= (unsigned long long)addr && (unsigned long long)addr < end) {
				char num[32];
				found = 1;
				snprintf(num, sizeof num, "%llu", start);
				kv_add(r, "start", num);
				snprintf(num, sizeof num, "%llu", end);
				kv_add(r, "end", num);
			}
		} else if (found && colon) {
			*colon = 0;
			kv_add(r, line, colon + 1);
		}
	}
	fclose(f);
	if (!found)
		errno = EFAULT;
	return found ? 0 : -1;
}

static int read_status(struct kv *r)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[512];
	memset(r, 0, sizeof *r);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (colon && strncmp(line, "Vm", 2) == 0) {
			*colon = 0;
			kv_add(r, line, colon + 1);
		}
	}
	fclose(f);
	return 0;
}

/* The /proc/self/maps line of the mapping holding addr, or (name given) of the one named so */
static int find_maps(i64 addr, const char *name, struct maps_line *m)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	memset(m, 0, sizeof *m);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long long start, end, offset, inode;
		int used = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %15s %llu %n", &start, &end, m->perms, &offset,
			   m->dev, &inode, &used) < 6)
			continue;
		snprintf(m->path, sizeof m->path, "%s", used ? line + used : "");
		m->path[strcspn(m->path, "\n")] = 0;
		if (name ? !strcmp(m->path, name)
			 : start <= (unsigned long long)addr && (unsigned long long)addr < end) {
			m->start = start, m->end = end, m->offset = offset, m->inode = inode;
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	m->path[0] = 0;
	errno = EFAULT;
	return -1;
}

static int read_maps(i64 addr, struct maps_line *m)
{
	return find_maps(addr, NULL, m);
}

/* ---- deaths: judged by the step they ended, whichever process reaps them ---- */
static int killed_by_case(int pid, int sig)
{
	int n = __atomic_load_n(&shared->nkills, __ATOMIC_SEQ_CST);
	for (int i = 0; i < n && i < 64; i++)
		if (shared->kills[i].signo == sig &&
		    (shared->kills[i].target == pid || shared->kills[i].target <= 0))
			return 1;
	return 0;
}

/* REAPED_BY_CASE: a `wait` step reaped it. Such a child, killed by the case's own kill in a step
 * that expected no signal, is judged by that wait alone (the contract's one excuse). */
/* The slot a death of process PID by SIG belongs to: the thread whose handler recorded it, else
 * a thread in a step expecting it, else the process's own. */
static struct slot *death_slot(int pid, int sig)
{
	struct slot *expecting = NULL;
	for (int i = 0; i < 512; i++) {
		struct slot *s = &shared->slots[i];
		if (!s->pid || s->tgid != pid)
			continue;
		if (s->signo == sig)
			return s;
		if (!expecting && s->in_step && s->want_signo == sig)
			expecting = s;
	}
	return expecting ? expecting : &shared->slots[pid % 512];
}

static void judge_death(int pid, int sig, int reaped_by_case)
{
	struct slot *s = death_slot(pid, sig);
	int excused = reaped_by_case && killed_by_case(pid, sig);
	int failed = 1;
	if (s->tgid != pid || !s->in_step) {
		if (!excused)
			say("FAIL %s died by %s outside any step", s->tgid == pid ? s->name : "a process",
			    signal_name(sig));
		failed = !excused;
	} else {
		const struct step_info *k = &S[s->step];
		int recorded = s->signo == sig;
		char seen[256];
		int n = snprintf(seen, sizeof seen, "%s", signal_name(sig));
		if (recorded)
			snprintf(seen + n, sizeof seen - n, "/%s at %#llx", si_code_name(sig, s->code),
				 (unsigned long long)s->addr);
		int matches = s->want_signo == sig &&
			      (s->want_code == -1000 || (recorded && s->code == s->want_code)) &&
			      (!s->want_has_addr || (recorded && s->addr == s->want_addr)) &&
			      (!s->want_nip || (recorded && ip_matches(s)));
		if (recorded && s->want_nip)
			snprintf(seen + strlen(seen), sizeof seen - strlen(seen), ", ip %#llx",
				 (unsigned long long)s->ip);
		if (excused && !s->want_signo) {
			say("  %s step %s (%s): %s (the case's kill; its wait judges it)", s->name,
			    k->label, k->op, seen);
			failed = 0;
		} else if (matches) {
			say("  %s step %s (%s): %s", s->name, k->label, k->op, seen);
			failed = 0;
		} else {
			say("FAIL %s step %s (%s): expected %s, got %s   [%s]", s->name, k->label,
			    k->op, k->expected, seen, k->where);
		}
	}
	if (failed)
		__atomic_add_fetch(&shared->failures, 1, __ATOMIC_SEQ_CST);
}

/* ---- wait(2) as the case language reports it ---- */
static int wait_child(i64 pid, struct wait_result *w)
{
	int status;
	if (waitpid((pid_t)pid, &status, 0) < 0)
		return -1;
	w->exited = WIFEXITED(status);
	w->status = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
	w->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	w->code = -1000;
	struct slot *s = death_slot((int)pid, w->sig);
	if (!w->exited && s->tgid == pid && s->signo == w->sig) {
		w->code = s->code; /* the child's fault handler recorded its siginfo */
		w->addr = s->addr;
	}
	if (!w->exited)
		judge_death((int)pid, w->sig, 1);
	return 0;
}

/* kill(2), recorded first: a waited child the case itself killed is judged by its wait */
static int kill_recorded(i64 pid, int sig)
{
	int i = __atomic_fetch_add(&shared->nkills, 1, __ATOMIC_SEQ_CST);
	if (i < 64) {
		shared->kills[i].target = (int)pid;
		shared->kills[i].signo = sig;
	}
	return kill((pid_t)pid, sig);
}

/* ---- the scratch folder ---- */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void make_scratch(const char *parent)
{
	snprintf(scratch, sizeof scratch, "%s/mmapconf-repro-XXXXXX", parent);
	if (!mkdtemp(scratch)) {
		say("ERROR setup: cannot make a scratch folder in %s: %s", parent, strerror(errno));
		exit(2);
	}
}

static const char *in_scratch(const char *name)
{
	static char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", scratch, name);
	return path;
}

static const char *proc_fd(i64 fd)
{
	static char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%lld", fd);
	return path;
}

/* Another process's fd by that process's name (main, a member, a fork child by its as); the
 * last one of that name to start. Its absence ends the case as an error, as in the engine. */
static int pid_named(const char *name)
{
	int pid = 0;
	for (int i = 0; i < 512; i++)
		if (shared->slots[i].pid && shared->slots[i].name && !strcmp(shared->slots[i].name, name))
			pid = shared->slots[i].pid;
	if (!pid)
		case_error(me->step, "no process of that name has started");
	return pid;
}

static const char *other_fd(const char *name, i64 fd)
{
	static char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd/%lld", pid_named(name), fd);
	return path;
}

/* ---- forms (issue 18): /proc/self/mem and an io_uring, made before the case's first step ---- */
/* The case's first process's /proc/self/mem, open for writing (-errno: it could not be); a fork
 * child using it reaches that process's memory, since the file holds the address space it was
 * opened on. */
static int self_mem = -ENOSYS;

static int fd_above(int fd)
{
	if (fd < 0)
		return -errno;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 900);
	close(fd);
	return high < 0 ? -errno : high;
}

static i64 mem_io(int writing, void *buf, i64 n, i64 addr)
{
	if (self_mem < 0) {
		errno = -self_mem;
		return -1;
	}
	return writing ? pwrite(self_mem, buf, (size_t)n, addr) : pread(self_mem, buf, (size_t)n, addr);
}

/* FIDEDUPERANGE's argument with its one destination */
struct dedupe {
	struct file_dedupe_range range;
	struct file_dedupe_range_info info;
};

/* One ring of four entries, restricted to fixed-buffer reads and writes as the engine's is. */
static int ring_fd = -ENOSYS;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static void ring_open(void)
{
	struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
	int fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0) {
		ring_fd = -errno;
		return;
	}
	struct io_uring_restriction r[4] = {
		{.opcode = IORING_RESTRICTION_REGISTER_OP, .register_op = IORING_REGISTER_BUFFERS},
		{.opcode = IORING_RESTRICTION_REGISTER_OP, .register_op = IORING_UNREGISTER_BUFFERS},
		{.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READ_FIXED},
		{.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITE_FIXED},
	};
	char *sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	char *cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
			PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
	sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED ||
	    syscall(__NR_io_uring_register, fd, IORING_REGISTER_RESTRICTIONS, r, 4) < 0 ||
	    syscall(__NR_io_uring_register, fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
		ring_fd = -errno;
		close(fd);
		return;
	}
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	ring_fd = fd_above(fd);
}

static int ring_buffers(void *addr, i64 length)
{
	if (ring_fd < 0) {
		errno = -ring_fd;
		return -1;
	}
	struct iovec v = {addr, (size_t)length};
	if (addr)
		return syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_BUFFERS, &v, 1);
	return syscall(__NR_io_uring_register, ring_fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
}

/* one READ_FIXED or WRITE_FIXED of buffer 0, waited for; -1 and errno from its completion */
static i64 ring_fixed(int opcode, i64 fd, i64 addr, i64 length, i64 offset)
{
	if (ring_fd < 0) {
		errno = -ring_fd;
		return -1;
	}
	unsigned tail = *sq_tail, k = tail & *sq_mask;
	sqes[k] = (struct io_uring_sqe){.opcode = opcode, .fd = fd, .addr = addr, .len = length,
					.off = offset};
	sq_array[k] = k;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	while (syscall(__NR_io_uring_enter, ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		if (errno != EINTR)
			return -1;
	unsigned head = *cq_head;
	int res = cqes[head & *cq_mask].res;
	__atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
	if (res < 0) {
		errno = -res;
		return -1;
	}
	return res;
}

static void forms_init(void)
{
	if (USES_PROC_MEM)
		self_mem = fd_above(open("/proc/self/mem", O_RDWR | O_CLOEXEC));
	if (USES_RING)
		ring_open();
}

/* ---- the top process: run the case in its own process group, reap and judge every process ---- */
static void run_case(void);
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
}

int main(int argc, char **argv)
{
	PAGE = sysconf(_SC_PAGESIZE);
	shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return 2;
	if (SCRATCH_PARENT[0]) /* the backing's folder, or the filesystem under test given */
		make_scratch(argc > 1 ? argv[1] : SCRATCH_PARENT);
	timeout_s = TIMEOUT_S;
	/* orphaned case processes come back to us, so every one is reaped and judged */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	pid_t top = fork();
	if (top == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		forms_init();
		run_case();
		_exit(EXIT_DONE);
	}
	setpgid(top, top);
	struct sigaction on_timeout = {.sa_handler = on_alarm}; /* no SA_RESTART: waitpid stops */
	sigaction(SIGALRM, &on_timeout, NULL);
	alarm(timeout_s);
	int failures, errors = 0, status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, 0)) != 0) {
		if (pid < 0) {
			if (errno == EINTR && !timed_out)
				continue;
			break;
		}
		if (WIFSIGNALED(status)) {
			int before = shared->failures;
			judge_death(pid, WTERMSIG(status), 0);
			if (shared->failures != before)
				abort_case();
		} else if (WEXITSTATUS(status) != EXIT_DONE && WEXITSTATUS(status) != EXIT_FAILED &&
			   WEXITSTATUS(status) != EXIT_ERROR && WEXITSTATUS(status) != EXIT_ABORTED) {
			say("ERROR pid %d exited with status %d before finishing its steps", pid,
			    WEXITSTATUS(status));
			errors++;
			abort_case();
		} else if (WEXITSTATUS(status) != EXIT_DONE) {
			abort_case();
		}
	}
	failures = shared->failures;
	errors += shared->errors;
	if (timed_out) {
		kill(-top, SIGKILL);
		while (waitpid(-1, &status, 0) > 0)
			;
	}
	if (scratch[0])
		nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (timed_out) {
		say("TIMEOUT after %u s", timeout_s);
		return 1;
	}
	if (errors) {
		say("ERROR");
		return 2;
	}
	say(failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
