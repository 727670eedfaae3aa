/* mmapconf's native case executor: a fork server that runs compiled case programs.
 *
 * The Python front end (runner/engine/native/program.py) resolves every name, flag, condition and
 * constant of a validated case ahead and writes a compact program of 64-bit words; expressions over
 * bound results are a small stack bytecode evaluated here. This binary is exec'd once per worker
 * and forks once per case: the case's processes hold no interpreter, only their report channel.
 *
 * Channels (all file descriptors are given on the command line):
 *   control   SOCK_SEQPACKET to the harness: RUN requests in, STARTED/ENDING/FINISHED out
 *   arena     a shared memfd laid out as runner/engine/arena.py's Arena, plus one native slot
 *             per process (its open step, iteration, expected signal and bound mappings), so a
 *             process that dies still names its step
 *   program   a memfd the harness writes each program into before its RUN request
 * Each case's report socket arrives with its RUN request (SCM_RIGHTS) and goes to the case only.
 *
 * Reports are records of 64-bit words; passed steps inside a repeat are counted in the native slot,
 * not sent. Judging for control flow (stop at a failed step, end a repeat ... until) happens here
 * on compiled patterns; the harness re-judges every reported observation in Python.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <linux/io_uring.h>
#include <linux/fs.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <elf.h>
#include <ftw.h>
#include <linux/loop.h>
#include <linux/btrfs.h>
#include <pthread.h>
#include <sys/swap.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif
#ifndef SYS_mlock2
#ifdef __x86_64__
#define SYS_mlock2 325
#else
#define SYS_mlock2 284
#endif
#endif
#ifndef SYS_open_tree  /* the same number on every architecture */
#define SYS_open_tree 428
#define SYS_move_mount 429
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#define MOVE_MOUNT_F_EMPTY_PATH 4
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

typedef int64_t i64;
typedef uint64_t u64;

/* ---- shared with program.py: keep the numbers in step with it ------------------------------- */
#define MAGIC 0x31504d434e4d4d00ULL /* "\0MMNCMP1" */
enum { REC_PROC = 1, REC_END, REC_ERROR, REC_ABORTED, REC_DONE, REC_LIMIT, REC_REAPED, REC_KILLED,
       REC_THREAD };
enum { CTL_RUN = 1, CTL_STARTED, CTL_ENDING, CTL_FINISHED, CTL_WALLS, CTL_EMPTY };
enum { V_NONE, V_INT, V_BYTES, V_TEXT, V_LIST, V_MAP, V_FLOAT, V_BOOL };
enum { A_EXPR = 1, A_STR, A_BYTES, A_PACK, A_FMT };
enum { K_SUCCESS, K_ERRNO, K_SIGNAL, K_VALUE };
enum {
  P_NONE, P_INT, P_FLOAT, P_STR, P_HEX, P_DATA, P_CMP, P_MAP, P_LIST, P_FILL,
  P_CONTAINS  /* forms */
};
enum { C_EQ, C_NE, C_GT, C_GE, C_LT, C_LE };
enum {
  X_PUSH = 1, X_LOAD, X_FIELD, X_ADD, X_SUB, X_MUL, X_FDIV, X_MOD, X_SHL, X_SHR, X_OR, X_AND,
  X_XOR, X_NEG, X_POS, X_INV, X_MIN, X_MAX, X_ALIGN_UP, X_ALIGN_DOWN, X_FAIL, X_PICK
};
/* operations, in program.py's OP_CODES order */
enum {
  OP_FILE = 1, OP_OPEN, OP_CLOSE, OP_FTRUNCATE, OP_WRITE, OP_READ, OP_FSTAT, OP_FSYNC, OP_FDATASYNC,
  OP_UNLINK, OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MSYNC, OP_MADVISE, OP_MLOCK, OP_MUNLOCK, OP_MREMAP,
  OP_MINCORE, OP_LOAD, OP_STORE, OP_FORK, OP_WAIT, OP_POST, OP_WAIT_FOR, OP_KILL, OP_CACHESTAT, OP_SMAPS,
  OP_SEM_INIT, OP_SEM_POST, OP_SEM_WAIT, OP_REPEAT, OP_PIPE, OP_EVENTFD, OP_DUP, OP_REOPEN,
  OP_MEMFD_CREATE, OP_FCNTL, OP_FADVISE, OP_POSIX_MADVISE, OP_MSEAL, OP_MLOCKALL, OP_MUNLOCKALL,
  OP_SETRLIMIT, OP_SETUID, OP_CALL, OP_SLEEP, OP_PROC_MAPS, OP_PROC_STATUS,
  OP_FALLOCATE, OP_BRK, OP_LET, OP_USERFAULTFD, OP_UFFD_REGISTER, OP_UFFD_READ, OP_UFFD_COPY,
  OP_UFFD_ZEROPAGE, OP_GETRLIMIT, OP_SYNC_FILE_RANGE, OP_SYNCFS, OP_POWER_CUT,
  /* threads */
  OP_THREAD, OP_JOIN, OP_GROW_STACK,
  /* guestsetup */
  OP_CORE, OP_GETRUSAGE,
  /* forms */
  OP_SPLICE, OP_VMSPLICE, OP_SENDFILE, OP_COPY_FILE_RANGE, OP_PROC_MEM_WRITE, OP_PROC_MEM_READ,
  OP_PIDFD_OPEN, OP_PROCESS_MADVISE, OP_FICLONE, OP_FICLONERANGE, OP_FIDEDUPERANGE, OP_LSEEK,
  OP_URING_REGISTER_BUFFERS, OP_URING_UNREGISTER_BUFFERS, OP_URING_READ_FIXED,
  OP_URING_WRITE_FIXED, OP_PRCTL,
  OP_COUNT
};
#define MAX_ARGS 12
#define EXIT_DONE 0
#define EXIT_FAILED 3
#define EXIT_ABORTED 4
#define EXIT_ERROR 70

/* Arena layout: runner/engine/arena.py, then the native slots. */
#define MAX_EVENTS 256
#define SIG_SLOTS 512
#define EVENTS_OFF 0
#define ABORT_OFF (MAX_EVENTS * 4)
#define SLOTS_OFF (ABORT_OFF + 64)
#define PROCS_OFF (SLOTS_OFF + SIG_SLOTS * 24)
#define NATIVE_OFF (PROCS_OFF + 64)
#define NATIVE_PROCS 64
#define NATIVE_MAPS 48
#define IP_WANTS 6

struct sigslot { int32_t pid, signo, code, tid; u64 addr; };  /* tid: the thread that faulted */
struct nslot {             /* one per process and thread of the case, claimed at its start */
  int32_t pid, in_step;    /* pid: the thread's id (a process's own: its pid); in_step: 1 while a step runs */
  int32_t step, expect_sig;
  i64 iteration;           /* of the innermost repeat, -1 outside one */
  i64 want_addr;             /* the resolved want_addr the open step expects */
  int32_t has_si_addr, nmaps;
  i64 unsent;              /* passed steps inside loops, counted instead of sent */
  i64 maps[NATIVE_MAPS][2];
  int32_t map_bound[NATIVE_MAPS];
  int32_t depth, pad;      /* the open steps, outermost first: a repeat and the step in it */
  int32_t open[16];
  i64 fault_ip;            /* the faulting instruction, as the fault handler found it */
  i64 ip_want[IP_WANTS];   /* the open step's ip expectation, resolved: comparator operands */
  int32_t has_fault_ip, nip;
  int32_t ip_ops[IP_WANTS];
  i64 name_index;          /* the process's name in the string table; -1: a composed name */
  int32_t tgid, pad2;      /* the process the thread belongs to (its own pid for a process) */
};
struct native_head { int32_t next_slot, pad; };  /* next_slot: past the highest slot claimed */
#define ARENA_SIZE (NATIVE_OFF + 64 + NATIVE_PROCS * sizeof(struct nslot))

/* ---- values --------------------------------------------------------------------------------- */
typedef struct val {
  int t;
  i64 i;
  double f;
  size_t n;            /* bytes/text length, or item count */
  char *b;             /* bytes/text */
  struct val *items;   /* list items / map values */
  char **keys;         /* map keys */
} val;

static void out_of_memory(size_t n);
/* Per-step scratch memory, reset before each step; bound results are copied to the heap. */
static __thread char *bump;
static __thread size_t bump_used, bump_cap;
static void *scratch_alloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (bump_used + n > bump_cap) {
    size_t cap = bump_cap ? bump_cap : 1 << 20;
    while (cap < bump_used + n) cap *= 2;
    /* the old block stays allocated: values built from it may still point into it. A mapping
     * of its own marked VM_DONTDUMP: with the flags of a case's anonymous mapping it would
     * merge with one placed beside it (smaps then shows a Size 1 MiB larger). */
    char *grown = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (grown == MAP_FAILED || madvise(grown, cap, MADV_DONTDUMP) != 0) out_of_memory(n);
    bump = grown;
    bump_cap = cap;
    bump_used = 0;
  }
  void *p = bump + bump_used;
  bump_used += n;
  memset(p, 0, n);
  return p;
}
static void scratch_reset(void) { bump_used = 0; }

/* ---- the program ---------------------------------------------------------------------------- */
typedef struct { const i64 *code; i64 n; i64 text; } expr_t;
typedef struct pattern pattern;
struct pattern {
  int t;
  i64 i;
  double f;
  i64 str;       /* string index (P_STR, P_HEX, P_DATA, map key) */
  expr_t e;      /* P_STR: its expression (n == 0: not one) */
  int n;
  pattern *kids;
  i64 *ops;      /* P_CMP: comparator per kid; P_MAP: key string index per kid */
};
typedef struct {
  i64 off, size, kind, big, lo, hi, msg;  /* range [lo, hi] for integers; msg: struct's error */
  expr_t e;                               /* e.n == 0: a constant, already in the template */
} field_t;
typedef struct { i64 tmpl, size; int n; field_t *f; } layout_t;
typedef struct { int kind; i64 str; expr_t e; layout_t *lay; } arg_t;
typedef struct block block;
typedef struct step {
  i64 id, op, label, line;
  i64 fd_args;       /* a bit per fd argument (fd, fd_in, ...): the report socket is refused */
  arg_t args[MAX_ARGS];
  unsigned present;  /* bit per argument given */
  i64 bind, map_index;
  expr_t map_len;
  int kind;
  int nerrno;
  i64 errnos[16];
  i64 signo, si_code;
  int has_si_addr;
  expr_t want_addr;
  pattern *want;
  i64 nenv, env[16];  /* slots the expectation's expressions read: reported with the step */
  i64 runerror;       /* string index + 1 of the error a case that cannot run as written gets */
  int nuntil;
  i64 until[16];
  i64 var;
  int nip;                 /* a signal expectation's ip: comparators and their expressions */
  i64 ip_ops[IP_WANTS];
  expr_t ip_e[IP_WANTS];
  struct block *body;
} step_t;
struct block { int n; step_t *steps; };

static const i64 *pw;      /* program words being parsed */
static const i64 *pw_end;
static char **strs;
static i64 *strlens;
static i64 nstrs;
static i64 nslots;
static val **slots;        /* bound values; NULL: not bound */
static i64 *slot_name;
static i64 nmaps_total;
static i64 *map_name;
static block setup_block;
static i64 nprocs;
static i64 *proc_names;
static block *proc_blocks;
static i64 first_name;
static i64 max_processes;
static i64 address_space_pages;  /* RLIMIT_AS: what a process has mapped, plus this */
/* provision.core (the program's trailer): whether the case's processes may dump core, their
 * RLIMIT_CORE (-1: unlimited) and the coredump_filter they start with (-1: the kernel's) */
static i64 core_on, core_limit, core_filter = -1;
static i64 nsignames, nsicodes;
static i64 *signames;   /* pairs: number, name */
static i64 *sicodes;    /* triples: signal (0: any), code, name */

static void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  _exit(EXIT_ERROR);
}
static i64 word(void) {
  if (pw >= pw_end) fatal("mmapconf-exec: program truncated");
  return *pw++;
}
static expr_t read_expr(void) {
  expr_t e;
  e.text = word();
  e.n = word();
  if (e.n < 0 || e.n > pw_end - pw) fatal("mmapconf-exec: bad expression");
  e.code = pw;
  pw += e.n;
  return e;
}
static pattern *read_pattern(void) {
  pattern *p = calloc(1, sizeof *p);
  p->t = (int)word();
  switch (p->t) {
  case P_NONE: break;
  case P_INT: p->i = word(); break;
  case P_FLOAT: { i64 bits = word(); memcpy(&p->f, &bits, 8); break; }
  case P_STR: p->str = word(); p->e = read_expr(); break;
  case P_HEX: case P_DATA: case P_FILL: case P_CONTAINS: p->str = word(); break;
  case P_CMP: case P_MAP: case P_LIST:
    p->n = (int)word();
    if (p->n < 0 || p->n > 4096) fatal("mmapconf-exec: bad pattern");
    p->kids = calloc(p->n + 1, sizeof *p->kids);
    p->ops = calloc(p->n + 1, sizeof *p->ops);
    for (int k = 0; k < p->n; k++) {
      if (p->t != P_LIST) p->ops[k] = word();
      pattern *kid = read_pattern();
      p->kids[k] = *kid;
    }
    break;
  default: fatal("mmapconf-exec: bad pattern kind %d", p->t);
  }
  return p;
}
static layout_t *read_layout(int with_values) {
  layout_t *l = calloc(1, sizeof *l);
  l->tmpl = word();
  l->size = word();
  l->n = (int)word();
  if (l->n < 0 || l->n > 65536) fatal("mmapconf-exec: bad layout");
  l->f = calloc(l->n + 1, sizeof *l->f);
  for (int k = 0; k < l->n; k++) {
    field_t *f = &l->f[k];
    f->off = word(); f->size = word(); f->kind = word(); f->big = word();
    if (f->off < 0 || f->size < 0 || f->off + f->size > l->size) fatal("mmapconf-exec: bad field");
    if (with_values) {
      f->lo = word(); f->hi = word(); f->msg = word();
      if (word()) f->e = read_expr();
    }
  }
  return l;
}
static block *read_block(void);
static i64 nsteps_total;
static unsigned char *traced;  /* per step id: reported once already (a loop sends it once) */
static void read_step(step_t *s) {
  memset(s, 0, sizeof *s);
  s->id = word(); s->op = word(); s->label = word(); s->line = word(); s->fd_args = word();
  if (s->id < 0 || s->id > 10000000) fatal("mmapconf-exec: bad step id");
  if (s->id >= nsteps_total) nsteps_total = s->id + 1;
  i64 nargs = word();
  for (i64 k = 0; k < nargs; k++) {
    i64 key = word();
    if (key < 0 || key >= MAX_ARGS) fatal("mmapconf-exec: bad argument");
    arg_t *a = &s->args[key];
    s->present |= 1u << key;
    a->kind = (int)word();
    if (a->kind == A_EXPR) a->e = read_expr();
    else if (a->kind == A_PACK || a->kind == A_FMT) a->lay = read_layout(a->kind == A_PACK);
    else a->str = word();
  }
  s->bind = word(); s->map_index = word();
  if (s->map_index >= 0) s->map_len = read_expr();
  s->kind = (int)word();
  s->nerrno = (int)word();
  if (s->nerrno < 0 || s->nerrno > 16) fatal("mmapconf-exec: bad errnos");
  for (int k = 0; k < s->nerrno; k++) s->errnos[k] = word();
  s->signo = word(); s->si_code = word();
  s->has_si_addr = (int)word();
  if (s->has_si_addr) s->want_addr = read_expr();
  if (s->kind == K_VALUE) s->want = read_pattern();
  s->runerror = word();  /* string index + 1; 0: none */
  s->nenv = word();
  if (s->nenv < 0 || s->nenv > 16) fatal("mmapconf-exec: bad env");
  for (i64 k = 0; k < s->nenv; k++) s->env[k] = word();
  s->nuntil = (int)word();
  if (s->nuntil < 0 || s->nuntil > 16) fatal("mmapconf-exec: bad until");
  for (int k = 0; k < s->nuntil; k++) s->until[k] = word();
  s->var = word();
  s->nip = (int)word();
  if (s->nip < 0 || s->nip > IP_WANTS) fatal("mmapconf-exec: bad ip expectation");
  for (int k = 0; k < s->nip; k++) {
    s->ip_ops[k] = word();
    s->ip_e[k] = read_expr();
  }
  if (word()) s->body = read_block();
}
static block *read_block(void) {
  block *b = calloc(1, sizeof *b);
  b->n = (int)word();
  if (b->n < 0 || b->n > 100000) fatal("mmapconf-exec: bad block");
  b->steps = calloc(b->n + 1, sizeof(step_t));
  for (int k = 0; k < b->n; k++) read_step(&b->steps[k]);
  return b;
}
static void read_program(const i64 *words, size_t n) {
  pw = words;
  pw_end = words + n;
  if ((u64)word() != MAGIC) fatal("mmapconf-exec: not a program of this version");
  nstrs = word();
  if (nstrs < 0 || nstrs > 1 << 20) fatal("mmapconf-exec: bad string table");
  strs = calloc(nstrs + 1, sizeof *strs);
  strlens = calloc(nstrs + 1, sizeof *strlens);
  for (i64 k = 0; k < nstrs; k++) {
    i64 len = word();
    i64 nw = (len + 7) / 8;
    if (len < 0 || nw > pw_end - pw) fatal("mmapconf-exec: bad string");
    strs[k] = malloc(len + 1);
    memcpy(strs[k], pw, len);
    strs[k][len] = 0;
    strlens[k] = len;
    pw += nw;
  }
  nslots = word();
  slots = calloc(nslots + 1, sizeof *slots);
  slot_name = calloc(nslots + 1, sizeof *slot_name);
  for (i64 k = 0; k < nslots; k++) {
    slot_name[k] = word();
    i64 bound = word(), value = word();
    if (bound) {  /* a constant (PAGE): bound from the start, as Python's env holds it */
      slots[k] = calloc(1, sizeof(val));
      slots[k]->t = V_INT;
      slots[k]->i = value;
    }
  }
  nmaps_total = word();
  map_name = calloc(nmaps_total + 1, sizeof *map_name);
  for (i64 k = 0; k < nmaps_total; k++) map_name[k] = word();
  max_processes = word();
  address_space_pages = word();
  nsignames = word();
  if (nsignames < 0 || nsignames > 256) fatal("mmapconf-exec: bad signal table");
  signames = calloc(2 * nsignames + 1, sizeof *signames);
  for (i64 k = 0; k < 2 * nsignames; k++) signames[k] = word();
  nsicodes = word();
  if (nsicodes < 0 || nsicodes > 256) fatal("mmapconf-exec: bad si_code table");
  sicodes = calloc(3 * nsicodes + 1, sizeof *sicodes);
  for (i64 k = 0; k < 3 * nsicodes; k++) sicodes[k] = word();
  first_name = word();
  setup_block = *read_block();
  nprocs = word();
  proc_names = calloc(nprocs + 1, sizeof *proc_names);
  proc_blocks = calloc(nprocs + 1, sizeof *proc_blocks);
  for (i64 k = 0; k < nprocs; k++) {
    proc_names[k] = word();
    proc_blocks[k] = *read_block();
  }
  core_on = word();
  core_limit = word();
  core_filter = word();
  traced = calloc(nsteps_total + 1, 1);
}
static const char *S(i64 k) { return k >= 0 && k < nstrs ? strs[k] : ""; }

/* ---- the process's state -------------------------------------------------------------------- */
static char *arena;
static int report_fd = -1;
static const char *scratch_dir;  /* NULL: the memfd backing */
/* Per thread: what a thread of a case process runs (its steps, its report record, its slot) is
 * its own, so threads of one process never share a half-built record or an open step. */
static __thread char proc_name[512];
static __thread struct nslot *me;
static __thread i64 proc_name_index = -1;  /* what begin() records as the process's name */
static i64 page_size;
static int file_fds[4096];        /* by the file's name index in the string table */
static __thread int nstops;
static __thread i64 *stops[16];
static __thread int nstop_errs[16];
static __thread i64 iteration = -1;
static __thread int loop_depth;
static __thread const step_t *cur;

static int32_t *abort_word(void) { return (int32_t *)(arena + ABORT_OFF); }
static int32_t *event_word(i64 k) { return (int32_t *)(arena + EVENTS_OFF + 4 * k); }
static struct sigslot *sig_slot(int pid) {
  return (struct sigslot *)(arena + SLOTS_OFF) + (pid % SIG_SLOTS);
}
static struct native_head *native_head(void) { return (struct native_head *)(arena + NATIVE_OFF); }
static struct nslot *native_slot(int k) {
  return (struct nslot *)(arena + NATIVE_OFF + 64) + k;
}
static void futex_wake_all(int32_t *w) { syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, 0, 0, 0); }
static void abort_case(void) {
  __atomic_store_n(abort_word(), 1, __ATOMIC_SEQ_CST);
  for (int k = 0; k < MAX_EVENTS; k++) futex_wake_all(event_word(k));
}

/* ---- reports -------------------------------------------------------------------------------- */
#define REC_MAX (1 << 20)
static __thread i64 *rec;
static __thread size_t rec_n;
static __thread int rec_overflow;
static void put(i64 w) {
  if (rec_n >= REC_MAX / 8) { rec_overflow = 1; return; }
  rec[rec_n++] = w;
}
static void put_bytes(const char *b, size_t n) {
  put((i64)n);
  size_t nw = (n + 7) / 8;
  if (rec_n + nw >= REC_MAX / 8) { rec_overflow = 1; return; }
  rec[rec_n + nw - (nw ? 1 : 0)] = 0;
  memcpy(rec + rec_n, b, n);
  rec_n += nw;
}
static void put_str(const char *s) { put_bytes(s, strlen(s)); }
static void begin_rec(int type) {
  rec_n = 0;
  rec_overflow = 0;
  put(type);
  put(syscall(SYS_gettid));  /* a process's own pid; a thread's id */
}
static void send_rec(void) {
  /* a harness gone away must not kill the case by SIGPIPE before it reports its ending */
  (void)send(report_fd, rec, rec_n * 8, MSG_NOSIGNAL);
}
static void put_val(const val *v) {
  put(v->t);
  switch (v->t) {
  case V_NONE: break;
  case V_INT: case V_BOOL: put(v->i); break;
  case V_FLOAT: { i64 bits; memcpy(&bits, &v->f, 8); put(bits); break; }
  case V_BYTES: case V_TEXT: put_bytes(v->b, v->n); break;
  case V_LIST: put((i64)v->n); for (size_t k = 0; k < v->n; k++) put_val(&v->items[k]); break;
  case V_MAP:
    put((i64)v->n);
    for (size_t k = 0; k < v->n; k++) { put_str(v->keys[k]); put_val(&v->items[k]); }
    break;
  }
}
static void put_maps(void) {
  put(me->nmaps);
  for (int k = 0; k < me->nmaps; k++) {
    put(me->map_bound[k]);
    put(me->maps[k][0]);
    put(me->maps[k][1]);
  }
}

static void finish(int code) {
  if (code == EXIT_DONE) { begin_rec(REC_DONE); send_rec(); }
  _exit(code);
}
static void send_error(const step_t *s, const char *msg) {
  begin_rec(REC_ERROR);
  put(s ? s->id : -1);
  put(iteration);
  put_str(msg);
  send_rec();
}
static void run_error(const step_t *s, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  send_error(s, buf);
  finish(EXIT_ERROR);
}

static void out_of_memory(size_t n) {
  run_error(cur, "out of memory: the step's data needs %zu bytes", n);
}

/* ---- values: constructors --------------------------------------------------------------------- */
static val vint(i64 i) { val v = {0}; v.t = V_INT; v.i = i; return v; }
static val vnone(void) { val v = {0}; v.t = V_NONE; return v; }
static val vbytes(const void *b, size_t n, int t) {
  val v = {0};
  v.t = t;
  v.n = n;
  v.b = scratch_alloc(n + 1);
  memcpy(v.b, b, n);
  return v;
}
static val vmap(size_t cap) {
  val v = {0};
  v.t = V_MAP;
  v.items = scratch_alloc(cap * sizeof(val));
  v.keys = scratch_alloc(cap * sizeof(char *));
  return v;
}
static void map_put(val *m, const char *key, val item) {
  size_t len = strlen(key);
  char *k = scratch_alloc(len + 1);
  memcpy(k, key, len);
  m->keys[m->n] = k;
  m->items[m->n++] = item;
}
static val *map_get(const val *m, const char *key) {
  if (m->t != V_MAP) return NULL;
  for (size_t k = 0; k < m->n; k++)
    if (!strcmp(m->keys[k], key)) return &m->items[k];
  return NULL;
}
static void deep_copy(val *dst, const val *src) {
  *dst = *src;
  if (src->t == V_BYTES || src->t == V_TEXT) {
    dst->b = malloc(src->n + 1);
    memcpy(dst->b, src->b, src->n);
    dst->b[src->n] = 0;
  } else if (src->t == V_LIST || src->t == V_MAP) {
    dst->items = calloc(src->n + 1, sizeof(val));
    if (src->t == V_MAP) dst->keys = calloc(src->n + 1, sizeof(char *));
    for (size_t k = 0; k < src->n; k++) {
      deep_copy(&dst->items[k], &src->items[k]);
      if (src->t == V_MAP) dst->keys[k] = strdup(src->keys[k]);
    }
  }
}

/* ---- expressions ------------------------------------------------------------------------------ */
typedef struct { int failed; char msg[1024]; } eval_err;
/* Python's integers are unbounded; 128 bits hold what cases compute ((1 << 63) - 1, offsets near
 * the top of the range), and a value is wrapped to the 64-bit word when used, as ctypes does. */
typedef __int128 wide;
static wide wfloordiv(wide a, wide b) {
  wide q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}
static wide wfloormod(wide a, wide b) {
  wide m = a % b;
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}
static int eval(const expr_t *e, i64 *out, eval_err *err) {
  wide st[256];
  int sp = 0;
  err->failed = 0;
  for (i64 pc = 0; pc < e->n;) {
    i64 op = e->code[pc++];
    wide a, b, r;
    if (sp > 250) goto toolarge;
    switch (op) {
    case X_PUSH: st[sp++] = e->code[pc++]; break;
    case X_LOAD: {
      i64 slot = e->code[pc++];
      i64 has_fallback = e->code[pc++], fallback = e->code[pc++];
      val *v = slot >= 0 && slot < nslots ? slots[slot] : NULL;
      if (!v && has_fallback) { st[sp++] = fallback; break; }
      if (!v) {
        snprintf(err->msg, sizeof err->msg, "%s: '%s' is not bound", S(e->text),
                 S(slot_name[slot]));
        goto fail;
      }
      if (v->t != V_INT && v->t != V_BOOL) {
        snprintf(err->msg, sizeof err->msg, "%s: '%s' is not an integer", S(e->text),
                 S(slot_name[slot]));
        goto fail;
      }
      st[sp++] = v->i;
      break;
    }
    case X_FIELD: {
      i64 slot = e->code[pc++], attr = e->code[pc++];
      val *v = slots[slot];
      if (!v) {
        snprintf(err->msg, sizeof err->msg, "%s: '%s' is not bound", S(e->text),
                 S(slot_name[slot]));
        goto fail;
      }
      val *f = map_get(v, S(attr));
      if (!f) {
        snprintf(err->msg, sizeof err->msg, "%s.%s: %s has no field '%s'", S(slot_name[slot]),
                 S(attr), S(slot_name[slot]), S(attr));
        goto fail;
      }
      if (f->t != V_INT) {
        snprintf(err->msg, sizeof err->msg, "%s.%s is not an integer", S(slot_name[slot]),
                 S(attr));
        goto fail;
      }
      st[sp++] = f->i;
      break;
    }
    case X_FAIL:  /* the compiler knew it cannot succeed: its message */
      snprintf(err->msg, sizeof err->msg, "%s", S(e->code[pc]));
      goto fail;
    case X_NEG: st[sp - 1] = -st[sp - 1]; break;
    case X_POS: break;
    case X_INV: st[sp - 1] = ~st[sp - 1]; break;
    case X_PICK: {  /* pick(i, a, b, ...): the i-th of the choices */
      i64 n = e->code[pc++];
      wide k = st[sp - n];
      if (k < 0 || k >= n - 1) {
        snprintf(err->msg, sizeof err->msg, "pick: index %lld is outside 0..%lld", (long long)k,
                 (long long)(n - 2));
        goto fail;
      }
      r = st[sp - n + 1 + (int)k];
      sp -= (int)n;
      st[sp++] = r;
      break;
    }
    case X_MIN: case X_MAX: {
      i64 n = e->code[pc++];
      r = st[sp - n];
      for (i64 k = 1; k < n; k++) {
        wide x = st[sp - n + k];
        if (op == X_MIN ? x < r : x > r) r = x;
      }
      sp -= (int)n;
      st[sp++] = r;
      break;
    }
    default:
      b = st[--sp];
      a = st[--sp];
      switch (op) {
      case X_ADD: if (__builtin_add_overflow(a, b, &r)) goto toolarge; break;
      case X_SUB: if (__builtin_sub_overflow(a, b, &r)) goto toolarge; break;
      case X_MUL: if (__builtin_mul_overflow(a, b, &r)) goto toolarge; break;
      case X_FDIV: case X_MOD: case X_ALIGN_UP: case X_ALIGN_DOWN:
        if (b == 0) {
          snprintf(err->msg, sizeof err->msg, "%s: division by zero", S(e->text));
          goto fail;
        }
        if (b == -1 && (op == X_FDIV || op == X_ALIGN_UP)) {
          if (__builtin_sub_overflow((wide)0, a, &r)) goto toolarge;
          if (op == X_ALIGN_UP) r = a;
          break;
        }
        if (op == X_FDIV) r = wfloordiv(a, b);
        else if (op == X_MOD) r = wfloormod(a, b);
        else if (op == X_ALIGN_DOWN) { if (__builtin_mul_overflow(wfloordiv(a, b), b, &r)) goto toolarge; }
        else if (__builtin_mul_overflow(-wfloordiv(-a, b), b, &r)) goto toolarge;
        break;
      case X_SHL: case X_SHR:
        if (b < 0 || b > 256) {
          snprintf(err->msg, sizeof err->msg, "shift count %lld outside 0..256", (long long)b);
          goto fail;
        }
        if (op == X_SHR) r = b >= 127 ? (a < 0 ? -1 : 0) : a >> b;
        else if (a != 0) {
          if (b >= 127) goto toolarge;
          r = (wide)((unsigned __int128)a << b);
          if ((r >> b) != a) goto toolarge;
        } else {
          r = 0;
        }
        break;
      case X_OR: r = a | b; break;
      case X_AND: r = a & b; break;
      case X_XOR: r = a ^ b; break;
      default: fatal("mmapconf-exec: bad expression op %lld", (long long)op);
      }
      st[sp++] = r;
    }
  }
  if (sp != 1) fatal("mmapconf-exec: bad expression stack");
  *out = (i64)(u64)st[0];  /* wrapped to the machine word, as ctypes passes it */
  return 0;
toolarge:
  snprintf(err->msg, sizeof err->msg, "value too large");
fail:
  err->failed = 1;
  return -1;
}
static i64 eval_or_die(const step_t *s, const expr_t *e) {
  i64 v;
  eval_err err;
  if (eval(e, &v, &err)) run_error(s, "%s", err.msg);
  return v;
}

/* ---- judging for control flow ------------------------------------------------------------------ */
static int value_matches(const pattern *p, const val *have);
static int scalar_eq(const pattern *p, const val *have) {
  switch (p->t) {
  case P_NONE: return have->t == V_NONE;
  case P_INT:
    if (have->t == V_INT || have->t == V_BOOL) return have->i == p->i;
    if (have->t == V_FLOAT) return have->f == (double)p->i;
    return 0;
  case P_FLOAT:
    if (have->t == V_FLOAT) return have->f == p->f;
    if (have->t == V_INT || have->t == V_BOOL) return (double)have->i == p->f;
    return 0;
  case P_STR:
    if (have->t == V_INT) {
      i64 v;
      eval_err err;
      return p->e.n > 0 && eval(&p->e, &v, &err) == 0 && v == have->i;
    }
    return have->t == V_TEXT && have->n == (size_t)strlens[p->str] &&
           !memcmp(have->b, strs[p->str], have->n);
  }
  return 0;
}
static int compare(int op, const pattern *want, const val *have) {
  double a, b;
  if (want->t == P_STR && have->t == V_INT) {
    i64 v;
    eval_err err;
    if (want->e.n == 0 || eval(&want->e, &v, &err)) return 0;  /* text against a number */
    a = (double)have->i;
    b = (double)v;
    if (op == C_EQ) return have->i == v;
    if (op == C_NE) return have->i != v;
    if (op == C_GT) return have->i > v;
    if (op == C_GE) return have->i >= v;
    if (op == C_LT) return have->i < v;
    return have->i <= v;
  }
  if (want->t == P_STR && have->t == V_TEXT) {
    int c = strcmp(have->b, strs[want->str]);
    int r[] = {c == 0, c != 0, c > 0, c >= 0, c < 0, c <= 0};
    return r[op];
  }
  if ((want->t != P_INT && want->t != P_FLOAT) ||
      (have->t != V_INT && have->t != V_FLOAT && have->t != V_BOOL)) {
    if (op == C_EQ) return 0;
    if (op == C_NE) return 1;
    return 0;  /* Python: TypeError, which the comparison counts as a miss */
  }
  if (want->t == P_INT && have->t != V_FLOAT) {
    i64 x = have->i, y = want->i;
    int r[] = {x == y, x != y, x > y, x >= y, x < y, x <= y};
    return r[op];
  }
  a = have->t == V_FLOAT ? have->f : (double)have->i;
  b = want->t == P_FLOAT ? want->f : (double)want->i;
  int r[] = {a == b, a != b, a > b, a >= b, a < b, a <= b};
  return r[op];
}
static int value_matches(const pattern *p, const val *have) {
  switch (p->t) {
  case P_HEX:
    return have->t == V_BYTES && have->n == (size_t)strlens[p->str] &&
           !memcmp(have->b, strs[p->str], have->n);
  case P_DATA:
    return have->t == V_BYTES && have->n == (size_t)strlens[p->str] &&
           !memcmp(have->b, strs[p->str], have->n);
  case P_FILL: {  /* the pattern repeated whole */
    size_t pn = (size_t)strlens[p->str];
    if (have->t != V_BYTES || !have->n || !pn || have->n % pn) return 0;
    for (size_t k = 0; k < have->n; k += pn)
      if (memcmp(have->b + k, strs[p->str], pn)) return 0;
    return 1;
  }
  case P_CONTAINS:  /* text (or bytes) holding the pattern somewhere */
    return (have->t == V_TEXT || have->t == V_BYTES) &&
           memmem(have->b, have->n, strs[p->str], (size_t)strlens[p->str]) != NULL;
  case P_CMP:
    for (int k = 0; k < p->n; k++)
      if (!compare((int)p->ops[k], &p->kids[k], have)) return 0;
    return 1;
  case P_MAP:
    if (have->t != V_MAP) return 0;
    for (int k = 0; k < p->n; k++) {
      val *f = map_get(have, S(p->ops[k]));
      if (!f || !value_matches(&p->kids[k], f)) return 0;
    }
    return 1;
  case P_LIST:
    if (have->t != V_LIST || have->n != (size_t)p->n) return 0;
    for (int k = 0; k < p->n; k++)
      if (!value_matches(&p->kids[k], &have->items[k])) return 0;
    return 1;
  }
  if (have->t == V_LIST && have->n == 1) return value_matches(p, &have->items[0]);
  return scalar_eq(p, have);
}
typedef struct { val result; int err; int sig; } obs_t;
static int judge(const step_t *s, const obs_t *o) {
  if (s->kind == K_SIGNAL) return 0;  /* the step completed: the signal never came */
  if (s->kind == K_ERRNO) {
    for (int k = 0; k < s->nerrno; k++)
      if (s->errnos[k] == o->err) return 1;
    return 0;
  }
  if (o->err) return 0;
  if (s->kind == K_VALUE) return value_matches(s->want, &o->result);
  return 1;
}

/* ---- struct formats ----------------------------------------------------------------------------- */
/* Layouts come from Python's struct module (program.py): offset, size, kind and byte order of each
 * field. Kinds: 0 signed, 1 unsigned, 2 float, 3 bool, 4 text 's', 5 pascal 'p', 6 char 'c'. */
enum { F_SIGNED, F_UNSIGNED, F_FLOAT, F_BOOL, F_TEXT, F_PASCAL, F_CHAR };
static u64 get_uint(const unsigned char *p, int size, int big) {
  u64 v = 0;
  for (int k = 0; k < size; k++) v = (v << 8) | p[big ? k : size - 1 - k];
  return v;
}
static void put_uint(unsigned char *p, int size, int big, u64 v) {
  for (int k = 0; k < size; k++) p[big ? size - 1 - k : k] = (unsigned char)(v >> (8 * k));
}
static val decode_field(const unsigned char *raw, const field_t *f) {
  int size = (int)f->size, big = (int)f->big;
  const unsigned char *p = raw + f->off;
  if (f->kind == F_SIGNED || f->kind == F_UNSIGNED) {
    u64 u = get_uint(p, size, big);
    if (f->kind == F_SIGNED && size < 8 && ((u >> (8 * size - 1)) & 1)) u |= ~(u64)0 << (8 * size);
    return vint((i64)u);
  }
  if (f->kind == F_FLOAT) {
    val v = {0};
    v.t = V_FLOAT;
    u64 u = get_uint(p, size, big);
    if (size == 8) memcpy(&v.f, &u, 8);
    else { uint32_t w = (uint32_t)u; float fl; memcpy(&fl, &w, 4); v.f = fl; }
    return v;
  }
  if (f->kind == F_BOOL) { val v = vint(get_uint(p, size, big) != 0); v.t = V_BOOL; return v; }
  size_t n = size, start = 0;
  if (f->kind == F_PASCAL) { n = size ? p[0] : 0; if (size && n > (size_t)size - 1) n = size - 1; start = 1; }
  while (n > 0 && p[start + n - 1] == 0) n--;  /* Python strips trailing NULs from text */
  return vbytes(p + start, n, V_TEXT);
}
static val decode_format(const layout_t *l, const unsigned char *raw) {
  if (l->n == 1) return decode_field(raw, &l->f[0]);
  val v = {0};
  v.t = V_LIST;
  v.n = l->n;
  v.items = scratch_alloc(l->n * sizeof(val));
  for (int k = 0; k < l->n; k++) v.items[k] = decode_field(raw, &l->f[k]);
  return v;
}
/* The bytes a data argument stands for: a template with each expression field packed in. */
static size_t encode(const step_t *s, const layout_t *l, unsigned char **out) {
  unsigned char *b = scratch_alloc(l->size + 1);
  memcpy(b, strs[l->tmpl], l->size);
  for (int k = 0; k < l->n; k++) {
    const field_t *f = &l->f[k];
    if (f->e.n == 0) continue;
    i64 v = eval_or_die(s, &f->e);
    if (f->kind == F_FLOAT) {
      u64 u;
      if (f->size == 8) { double d = (double)v; memcpy(&u, &d, 8); }
      else { float fl = (float)v; uint32_t w; memcpy(&w, &fl, 4); u = w; }
      put_uint(b + f->off, (int)f->size, (int)f->big, u);
      continue;
    }
    if (f->kind == F_BOOL) v = v != 0;
    else if (v < f->lo || v > f->hi) run_error(s, "%s", S(f->msg));
    put_uint(b + f->off, (int)f->size, (int)f->big, (u64)v);
  }
  *out = b;
  return l->size;
}

/* ---- the operations ------------------------------------------------------------------------------ */
/* argument positions, as program.py numbers them: each op's arguments in ops.py's order */
#define DATA 11
typedef struct {
  i64 v[MAX_ARGS];
  unsigned has;
} args_t;
static int has(const args_t *a, int k) { return (a->has >> k) & 1; }

static obs_t ok_none(void) { obs_t o = {vnone(), 0, 0}; return o; }
static obs_t ok_int(i64 v) { obs_t o = {vint(v), 0, 0}; return o; }
static obs_t fail_errno(void) { obs_t o = {vnone(), errno, 0}; return o; }
static obs_t rc_none(long rc) { return rc == -1 ? fail_errno() : ok_none(); }
static obs_t rc_int(long rc) { return rc == -1 ? fail_errno() : ok_int(rc); }
static obs_t rc_addr(void *p) { return p == MAP_FAILED ? fail_errno() : ok_int((i64)(uintptr_t)p); }

static int scratch_path(char *buf, size_t n, const char *name) {
  return snprintf(buf, n, "%s/%s", scratch_dir, name) >= (int)n ? -1 : 0;
}
static void file_path(const step_t *s, char *buf, size_t n, i64 slot) {
  if (!scratch_dir) snprintf(buf, n, "/proc/self/fd/%d", file_fds[slot]);
  else if (scratch_path(buf, n, S(slot_name[slot]))) run_error(s, "path too long");
}
static void bind_int(i64 slot, i64 v) {
  /* a loop variable is rebound every iteration: reuse its cell (this process owns it) */
  val *x = slots[slot] && slots[slot]->t == V_INT ? slots[slot] : calloc(1, sizeof *x);
  *x = vint(v);
  slots[slot] = x;
}
static obs_t op_file(const step_t *s, const args_t *a) {
  i64 slot = s->args[0].str;
  int fd;
  if (!scratch_dir) {
    fd = (int)syscall(SYS_memfd_create, S(slot_name[slot]), 0);
  } else {
    char path[PATH_MAX];
    if (scratch_path(path, sizeof path, S(slot_name[slot]))) run_error(s, "path too long");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)a->v[2]);
  }
  if (fd < 0) return fail_errno();
  if (slot < 4096) file_fds[slot] = fd;
  bind_int(slot, fd);
  if (s->present & (1u << DATA)) {
    unsigned char *b;
    size_t n = encode(s, s->args[DATA].lay, &b);
    if (write(fd, b, n) < 0) return fail_errno();
  }
  if (has(a, 1) && ftruncate(fd, a->v[1]) < 0) return fail_errno();
  return ok_none();
}
static const char *read_only_paths[] = {"/", ".", "/proc/self/maps"};
static obs_t op_open(const step_t *s, const args_t *a) {
  char buf[PATH_MAX];
  const char *path;
  int flags = (int)a->v[2];
  if (s->args[0].kind) {
    file_path(s, buf, sizeof buf, s->args[0].str);
    path = buf;
  } else {
    path = S(s->args[1].str);
    int ro = 0;
    for (int k = 0; k < 3; k++) ro |= !strcmp(path, read_only_paths[k]);
    const long read_flags = O_RDONLY | O_DIRECTORY | O_PATH | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    if (ro && (a->v[2] & ~read_flags))
      run_error(s, "%s may only be opened for reading (O_RDONLY, O_DIRECTORY, O_PATH)", path);
    if (!strcmp(path, ".")) {
      if (!scratch_dir) run_error(s, "'.' (the scratch folder) does not exist on the memfd backing");
      path = scratch_dir;
    }
  }
  return rc_int(open(path, flags | O_CLOEXEC, (mode_t)a->v[3]));
}
static obs_t op_write(const step_t *s, const args_t *a) {
  int fd = (int)a->v[0];
  if (has(a, 2)) {
    void *p = (void *)(uintptr_t)a->v[2];
    return rc_int(has(a, 1) ? pwrite(fd, p, a->v[3], a->v[1]) : write(fd, p, a->v[3]));
  }
  unsigned char *b;
  size_t n;
  if (has(a, 3)) {
    if (a->v[3] < 0) { errno = EINVAL; run_error(s, "negative length"); }
    n = a->v[3];
    b = scratch_alloc(n + 1);
  } else {
    n = encode(s, s->args[DATA].lay, &b);
  }
  return rc_int(has(a, 1) ? pwrite(fd, b, n, a->v[1]) : write(fd, b, n));
}
static obs_t op_read(const step_t *s, const args_t *a) {
  int fd = (int)a->v[0];
  if (has(a, 3)) {
    void *p = (void *)(uintptr_t)a->v[3];
    return rc_int(has(a, 1) ? pread(fd, p, a->v[2], a->v[1]) : read(fd, p, a->v[2]));
  }
  if (a->v[2] < 0) run_error(s, "negative length");
  char *b = scratch_alloc(a->v[2] + 1);
  ssize_t n = has(a, 1) ? pread(fd, b, a->v[2], a->v[1]) : read(fd, b, a->v[2]);
  if (n < 0) return fail_errno();
  obs_t o = {vbytes(b, n, V_BYTES), 0, 0};
  return o;
}
static i64 ts_ns(struct timespec t) { return (i64)t.tv_sec * 1000000000 + t.tv_nsec; }
static obs_t op_fstat(const args_t *a) {
  struct stat st;
  if (fstat((int)a->v[0], &st) < 0) return fail_errno();
  val m = vmap(11);
  map_put(&m, "size", vint(st.st_size));
  map_put(&m, "blocks", vint(st.st_blocks));
  map_put(&m, "mode", vint(st.st_mode));
  map_put(&m, "nlink", vint(st.st_nlink));
  map_put(&m, "ino", vint(st.st_ino));
  map_put(&m, "uid", vint(st.st_uid));
  map_put(&m, "gid", vint(st.st_gid));
  map_put(&m, "blksize", vint(st.st_blksize));
  map_put(&m, "atime_ns", vint(ts_ns(st.st_atim)));
  map_put(&m, "mtime_ns", vint(ts_ns(st.st_mtim)));
  map_put(&m, "ctime_ns", vint(ts_ns(st.st_ctim)));
  obs_t o = {m, 0, 0};
  return o;
}
static obs_t op_mincore(const step_t *s, const args_t *a) {
  void *addr = (void *)(uintptr_t)a->v[0];
  size_t len = (size_t)a->v[1];
  if (has(a, 2)) {
    if (mincore(addr, len, (unsigned char *)(uintptr_t)a->v[2]) < 0) return fail_errno();
    val l = {0};
    l.t = V_LIST;
    obs_t o = {l, 0, 0};
    return o;
  }
  size_t pages = (len + page_size - 1) / page_size;
  if (pages > (1u << 24)) run_error(s, "mincore: %zu pages are more than a case may ask for", pages);
  unsigned char *vec = scratch_alloc(pages + 1);
  if (mincore(addr, len, vec) < 0) return fail_errno();
  val l = {0};
  l.t = V_LIST;
  l.n = pages;
  l.items = scratch_alloc(pages * sizeof(val) + 1);
  for (size_t k = 0; k < pages; k++) l.items[k] = vint(vec[k] & 1);
  obs_t o = {l, 0, 0};
  return o;
}
static obs_t op_load(const step_t *s, const args_t *a) {
  const void *addr = (const void *)(uintptr_t)a->v[0];
  if (s->present & (1u << 2)) {
    const layout_t *l = s->args[2].lay;
    unsigned char *b = scratch_alloc(l->size + 1);
    memcpy(b, addr, l->size);  /* a real CPU load: it faults as a C program's would */
    obs_t o = {decode_format(l, b), 0, 0};
    return o;
  }
  i64 n = has(a, 1) ? a->v[1] : 1;
  if (n < 0) run_error(s, "load: negative length %lld", (long long)n);
  char *b = scratch_alloc(n + 1);
  memcpy(b, addr, n);
  obs_t o = {vbytes(b, n, V_BYTES), 0, 0};
  return o;
}
static obs_t op_store(const step_t *s, const args_t *a) {
  unsigned char *b;
  size_t n = encode(s, s->args[DATA].lay, &b);
  memcpy((void *)(uintptr_t)a->v[0], b, n);
  return ok_none();
}
static const char *signal_name(int sig, char *buf) {
  for (i64 k = 0; k < nsignames; k++)
    if (signames[2 * k] == sig) return S(signames[2 * k + 1]);
  sprintf(buf, "%d", sig);
  return buf;
}
static const char *si_code_name(int sig, int code, char *buf) {
  for (int pass = 0; pass < 2; pass++)
    for (i64 k = 0; k < nsicodes; k++)
      if (sicodes[3 * k] == (pass ? 0 : sig) && sicodes[3 * k + 1] == code)
        return S(sicodes[3 * k + 2]);
  sprintf(buf, "%d", code);
  return buf;
}
static obs_t op_wait(const args_t *a) {
  int st;
  pid_t pid = (pid_t)a->v[0];
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return fail_errno();
  /* the harness never sees how a child reaped here ended: the reaper tells it */
  begin_rec(REC_REAPED);
  put(pid);
  put(WIFSIGNALED(st));
  put(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  send_rec();
  val m = vmap(4);
  char buf[32];
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    const char *name = signal_name(sig, buf);
    map_put(&m, "signal", vbytes(name, strlen(name), V_TEXT));
    if (core_on) map_put(&m, "core", vint(WCOREDUMP(st) ? 1 : 0));  /* provision.core's */
    struct sigslot *slot = sig_slot(pid);
    if (slot->pid == pid && slot->signo == sig) {
      const char *code = si_code_name(sig, slot->code, buf);
      map_put(&m, "si_code", vbytes(code, strlen(code), V_TEXT));
      map_put(&m, "si_addr", vint((i64)slot->addr));
    }
  } else {
    map_put(&m, "exit", vint(WEXITSTATUS(st)));
  }
  obs_t o = {m, 0, 0};
  return o;
}
static obs_t killed(pid_t pid, int sig) {
  /* before the signal: kill(0, SIGKILL) ends the sender too */
  begin_rec(REC_KILLED);
  put(pid);
  put(sig);
  send_rec();
  return rc_none(kill(pid, sig));
}
static obs_t op_kill(const step_t *s, const args_t *a) {
  pid_t pid = (pid_t)a->v[0], group = getpgrp();
  if (pid > 0) {
    pid_t g = getpgid(pid);
    if (g < 0) return fail_errno();
    if (g == group) return killed(pid, (int)a->v[1]);
  } else if (pid == 0 || pid == -group) {
    return killed(pid, (int)a->v[1]);
  }
  run_error(s, "kill: pid %d is not a process of this case", pid);
  return ok_none();
}
static obs_t op_cachestat(const args_t *a) {
  u64 range[2] = {(u64)a->v[1], (u64)a->v[2]};
  u64 out[5] = {0};
  void *r = has(a, 4) ? (void *)(uintptr_t)a->v[4] : range;
  void *c = has(a, 5) ? (void *)(uintptr_t)a->v[5] : out;
  if (syscall(SYS_cachestat, (int)a->v[0], r, c, (unsigned)a->v[3]) < 0) return fail_errno();
  static const char *names[] = {"nr_cache", "nr_dirty", "nr_writeback", "nr_evicted",
                                "nr_recently_evicted"};
  val m = vmap(5);
  for (int k = 0; k < 5; k++) map_put(&m, names[k], vint((i64)out[k]));
  obs_t o = {m, 0, 0};
  return o;
}
/* /proc files are read whole: they are small, and a partial line must never be parsed */
static char *read_proc(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  for (;;) {
    if (n + 4096 > cap) b = realloc(b, cap *= 2);
    ssize_t r = read(fd, b + n, cap - n - 1);
    if (r <= 0) break;
    n += r;
  }
  close(fd);
  b[n] = 0;
  *len = n;
  return b;
}
static int all_digits(const char *p, size_t n) {
  if (!n) return 0;
  for (size_t k = 0; k < n; k++)
    if (p[k] < '0' || p[k] > '9') return 0;
  return 1;
}
static val text_val(const char *p, size_t n) { return vbytes(p, n, V_TEXT); }
static void strip(const char **p, size_t *n) {
  while (*n && (**p == ' ' || **p == '\t')) (*p)++, (*n)--;
  while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\n')) (*n)--;
}
/* ---- core: what a core the kernel wrote holds (guestsetup) ---- */
/* The core of process PID of the case: core.PID in the scratch folder (runner/vm/guestrun.py's
 * CORE_PATTERN). A case process could have written that file itself, so it is read as hostile:
 * every offset and size checked against the file, at most CORE_PHDRS program headers. */
#define CORE_PHDRS 65535
#define CORE_READ_MAX (256 << 10)  /* the most bytes `data` returns (docs/case-format.md, `core`): a report holds at most 1 MiB */
#define CORE_RANGE_MAX (1LL << 40)
typedef struct {
  u64 lo, hi;  /* the range asked about */
  u64 mapped, dumped;
  char *data;  /* the bytes held, in address order (NULL: a range too long to return them) */
} core_range;
/* the part of PH's memory inside R, and of that what the file holds (SIZE: the file's) */
static int core_segment(int fd, const Elf64_Phdr *ph, u64 size, core_range *r) {
  u64 start = ph->p_vaddr, end;
  if (__builtin_add_overflow(start, ph->p_memsz, &end)) return -1;
  if (end <= r->lo || start >= r->hi) return 0;
  u64 a = start > r->lo ? start : r->lo, b = end < r->hi ? end : r->hi;
  r->mapped += b - a;
  u64 held = ph->p_filesz < ph->p_memsz ? ph->p_filesz : ph->p_memsz;
  if (ph->p_offset > size) held = 0;
  else if (held > size - ph->p_offset) held = size - ph->p_offset;  /* a truncated core */
  u64 fb = start + held < b ? start + held : b;
  if (fb <= a) return 0;
  if (fb - a > r->hi - r->lo - r->dumped) return -1;  /* overlapping segments: not the kernel's */
  if (r->data) {
    ssize_t n = pread(fd, r->data + r->dumped, fb - a, (off_t)(ph->p_offset + (a - start)));
    if (n != (ssize_t)(fb - a)) return -1;
  }
  r->dumped += fb - a;
  return 0;
}
static int core_read(int fd, core_range *r) {
  struct stat st;
  Elf64_Ehdr eh;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_CORE ||
      eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum >= CORE_PHDRS)
    return -1;
  u64 size = (u64)st.st_size, table;
  if (eh.e_phoff > size || __builtin_mul_overflow((u64)eh.e_phnum, sizeof(Elf64_Phdr), &table) ||
      table > size - eh.e_phoff)
    return -1;
  for (u64 k = 0; k < eh.e_phnum; k++) {
    Elf64_Phdr ph;
    if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + k * sizeof ph)) != (ssize_t)sizeof ph) return -1;
    /* the kernel writes them in address order, which keeps the bytes held in that order too */
    if (ph.p_type == PT_LOAD && core_segment(fd, &ph, size, r) != 0) return -1;
  }
  return 0;
}
static obs_t op_core(const step_t *s, const args_t *a) {
  i64 pid = a->v[0], len = a->v[2];
  if (len < 0 || len > CORE_RANGE_MAX) run_error(s, "core: a length of 0..%lld bytes", CORE_RANGE_MAX);
  if (!scratch_dir) run_error(s, "core: the case has no scratch folder for a core to land in");
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/core.%lld", scratch_dir, (long long)pid) >= (int)sizeof path)
    run_error(s, "core: the scratch folder's path is too long");
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail_errno();
  core_range r = {(u64)a->v[1], 0, 0, 0, len <= CORE_READ_MAX ? scratch_alloc((size_t)len + 1) : NULL};
  struct stat st;
  int bad = __builtin_add_overflow(r.lo, (u64)len, &r.hi) || fstat(fd, &st) != 0 ||
            core_read(fd, &r) != 0;
  close(fd);
  if (bad) {
    errno = ENOEXEC;  /* not an ELF core this executor can read */
    return fail_errno();
  }
  val m = vmap(4);
  map_put(&m, "mapped", vint((i64)r.mapped));
  map_put(&m, "dumped", vint((i64)r.dumped));
  if (r.data) map_put(&m, "data", vbytes(r.data, r.dumped, V_BYTES));
  map_put(&m, "size", vint((i64)st.st_size));
  obs_t o = {m, 0, 0};
  return o;
}
static obs_t op_getrusage(void) {
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return fail_errno();
  val m = vmap(2);
  map_put(&m, "minflt", vint((i64)u.ru_minflt));
  map_put(&m, "majflt", vint((i64)u.ru_majflt));
  obs_t o = {m, 0, 0};
  return o;
}
static obs_t op_smaps(const args_t *a) {
  size_t len;
  char *b = read_proc("/proc/self/smaps", &len);
  if (!b) return fail_errno();
  u64 addr = (u64)a->v[0];
  val m = vmap(64);
  int found = 0;
  for (char *line = b; *line;) {
    char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    char *sp = memchr(line, ' ', n);
    size_t head = sp ? (size_t)(sp - line) : n;
    int is_range = memchr(line, '-', head) && !memchr(line, ':', head);
    if (is_range) {
      if (found) break;
      unsigned long long s0, e0;
      if (sscanf(line, "%llx-%llx", &s0, &e0) == 2 && s0 <= addr && addr < e0) {
        found = 1;
        map_put(&m, "start", vint((i64)s0));
        map_put(&m, "end", vint((i64)e0));
      }
    } else if (found && m.n < 64) {
      char *colon = memchr(line, ':', n);
      if (colon) {
        char key[128];
        size_t kl = colon - line < 127 ? (size_t)(colon - line) : 127;
        memcpy(key, line, kl);
        key[kl] = 0;
        const char *rest = colon + 1;
        size_t rl = n - (colon + 1 - line);
        strip(&rest, &rl);
        const char *sp2 = memchr(rest, ' ', rl);
        size_t first = sp2 ? (size_t)(sp2 - rest) : rl;
        if (all_digits(rest, first)) map_put(&m, key, vint(strtoll(rest, NULL, 10)));
        else map_put(&m, key, text_val(rest, rl));
      }
    }
    line += n + (nl ? 1 : 0);
  }
  free(b);
  if (!found) { errno = EFAULT; return fail_errno(); }
  obs_t o = {m, 0, 0};
  return o;
}
static obs_t op_proc_maps(const step_t *s, const args_t *a) {
  size_t len;
  char *b = read_proc("/proc/self/maps", &len);
  if (!b) return fail_errno();
  u64 addr = (u64)a->v[0];
  const char *want_path = has(a, 1) ? S(s->args[1].str) : NULL;  /* [stack]: found by name */
  for (char *line = b; *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    unsigned long long s0, e0, off, inode;
    char perms[8], dev[32];
    int pos = 0;
    if (sscanf(line, "%llx-%llx %7s %llx %31s %llu%n", &s0, &e0, perms, &off, dev, &inode,
               &pos) == 6) {
      const char *path = line + pos;
      size_t pl = strlen(path);
      strip(&path, &pl);
      int hit = want_path ? pl == strlen(want_path) && !memcmp(path, want_path, pl)
                          : s0 <= addr && addr < e0;
      if (!hit) goto next_line;
      val m = vmap(7);
      map_put(&m, "start", vint((i64)s0));
      map_put(&m, "end", vint((i64)e0));
      map_put(&m, "perms", text_val(perms, strlen(perms)));
      map_put(&m, "offset", vint((i64)off));
      map_put(&m, "dev", text_val(dev, strlen(dev)));
      map_put(&m, "inode", vint((i64)inode));
      map_put(&m, "path", text_val(path, pl));
      free(b);
      obs_t o = {m, 0, 0};
      return o;
    }
  next_line:
    if (!nl) break;
    line = nl + 1;
  }
  free(b);
  errno = EFAULT;
  return fail_errno();
}
static obs_t op_proc_status(void) {
  size_t len;
  char *b = read_proc("/proc/self/status", &len);
  if (!b) return fail_errno();
  val m = vmap(32);
  for (char *line = b; *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    char *colon = strchr(line, ':');
    if (!strncmp(line, "Vm", 2) && colon && m.n < 32) {
      *colon = 0;
      map_put(&m, line, vint(strtoll(colon + 1, NULL, 10)));
    }
    if (!nl) break;
    line = nl + 1;
  }
  free(b);
  obs_t o = {m, 0, 0};
  return o;
}
static int harness_limit(int res) {
  return res == RLIMIT_AS || res == RLIMIT_CORE || res == RLIMIT_NPROC;
}
static obs_t op_setrlimit(const step_t *s, const args_t *a) {
  struct rlimit old, now;
  int res = (int)a->v[0];
  if (getrlimit(res, &old) < 0) return fail_errno();
  now.rlim_cur = (rlim_t)a->v[1];
  now.rlim_max = has(a, 2) ? (rlim_t)a->v[2] : old.rlim_max;
  if (harness_limit(res) && old.rlim_max != RLIM_INFINITY &&
      (now.rlim_max == RLIM_INFINITY || now.rlim_max > old.rlim_max))
    run_error(s, "setrlimit may lower the harness's limits, not raise them");
  return rc_none(setrlimit(res, &now));
}
static obs_t op_setuid(const args_t *a) {
  if (setgroups(0, NULL) < 0) return fail_errno();
  if (setgid((gid_t)(has(a, 1) ? a->v[1] : a->v[0])) < 0) return fail_errno();
  return rc_none(setuid((uid_t)a->v[0]));
}
static obs_t op_sleep(const args_t *a) {
  struct timespec t = {a->v[0] / 1000, (a->v[0] % 1000) * 1000000};
  while (nanosleep(&t, &t) < 0 && errno == EINTR) {}
  return ok_none();
}
/* The data is stored: say so on stderr (the guest's job folder, which the host polls; its
 * CLOCK_MONOTONIC too) and wait for the host to cut the power. Nothing after it is reached. */
static obs_t op_power_cut(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  char buf[64];
  int n = snprintf(buf, sizeof buf, "\nMMAPCONF-STORED %lld\n", (long long)ts_ns(t));
  if (write(2, buf, (size_t)n) < 0) _exit(EXIT_FAILED);
  for (;;) pause();
}
static obs_t op_sem_wait(const args_t *a) {
  while (sem_wait((sem_t *)(uintptr_t)a->v[0]) < 0)
    if (errno != EINTR) return fail_errno();
  return ok_none();
}
static obs_t op_pipe(const step_t *s) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return fail_errno();
  bind_int(s->args[0].str, fds[0]);
  bind_int(s->args[1].str, fds[1]);
  return ok_none();
}

/* The pid of the case's process of that name (main, a member of processes, a fork child by its
 * `as`), as this process's PID namespace numbers it: the one the case started last. */
static pid_t pid_of(const step_t *s, i64 name) {
  pid_t pid = 0;
  for (int k = 0; k < NATIVE_PROCS; k++) {
    struct nslot *n = native_slot(k);
    if (n->pid && n->name_index == name) pid = n->pid;
  }
  if (!pid) run_error(s, "no process named %s has started", S(name));
  return pid;
}

/* userfaultfd(2) and its ioctls: the API handshake comes with the descriptor */
static obs_t op_userfaultfd(const args_t *a) {
  int fd = (int)syscall(SYS_userfaultfd, (int)a->v[0] | O_CLOEXEC);
  if (fd < 0) return fail_errno();
  struct uffdio_api api = {.api = UFFD_API, .features = 0};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return fail_errno();
  }
  return ok_int(fd);
}
static obs_t op_uffd_register(const args_t *a) {
  struct uffdio_register r = {.range = {(u64)a->v[1], (u64)a->v[2]}, .mode = (u64)a->v[3]};
  return rc_none(ioctl((int)a->v[0], UFFDIO_REGISTER, &r));
}
static obs_t op_uffd_read(const args_t *a) {
  struct uffd_msg msg;
  ssize_t n;
  while ((n = read((int)a->v[0], &msg, sizeof msg)) < 0 && errno == EINTR) {}
  if (n < 0) return fail_errno();
  val m = vmap(3);
  map_put(&m, "event", vint(msg.event));
  map_put(&m, "address", vint(msg.event == UFFD_EVENT_PAGEFAULT ? (i64)msg.arg.pagefault.address : 0));
  map_put(&m, "flags", vint(msg.event == UFFD_EVENT_PAGEFAULT ? (i64)msg.arg.pagefault.flags : 0));
  obs_t o = {m, 0, 0};
  return o;
}
static obs_t op_uffd_copy(const args_t *a) {
  struct uffdio_copy c = {.dst = (u64)a->v[1], .src = (u64)a->v[2], .len = (u64)a->v[3]};
  if (ioctl((int)a->v[0], UFFDIO_COPY, &c) < 0) return fail_errno();
  return ok_int(c.copy);
}
static obs_t op_uffd_zeropage(const args_t *a) {
  struct uffdio_zeropage z = {.range = {(u64)a->v[1], (u64)a->v[2]}};
  if (ioctl((int)a->v[0], UFFDIO_ZEROPAGE, &z) < 0) return fail_errno();
  return ok_int(z.zeropage);
}

/* threads: grow_stack. Real frames, each touching its own bytes, down to an address: what a
 * recursive function does to the stack it runs on (LTP mmap18's MAP_GROWSDOWN thread stack). */
#define GROW_STACK_MAX (64 << 20)
static __attribute__((noinline)) i64 descend(i64 to, int depth) {
  volatile char frame[512];
  frame[0] = (char)depth;
  i64 here = (i64)(uintptr_t)frame;
  if (here <= to) return here;
  i64 low = descend(to, depth + 1);
  frame[1] = frame[0];  /* used after the call: no tail call, every frame stays on the stack */
  return low;
}
static obs_t op_grow_stack(const step_t *s, const args_t *a) {
  char here;
  i64 sp = (i64)(uintptr_t)&here;
  if (a->v[0] < sp - GROW_STACK_MAX)
    run_error(s, "grow_stack: 0x%llx is more than 64 MiB below the stack (0x%llx)",
              (unsigned long long)a->v[0], (unsigned long long)sp);
  return ok_int(descend(a->v[0], 0));
}

#define P(k) ((void *)(uintptr_t)a->v[k])
#define L(k) ((size_t)a->v[k])
/* ---- forms (issue 18): splice and friends, /proc/self/mem, pidfds, reflinks, io_uring -------- */
#ifndef SYS_pidfd_open  /* the same numbers on every architecture */
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
static loff_t *offset_arg(const args_t *a, int k, loff_t *at) {
  if (!has(a, k)) return NULL;  /* not given: the descriptor's own position */
  *at = a->v[k];
  return at;
}
static obs_t op_splice(const args_t *a) {
  loff_t in, out;
  return rc_int(splice((int)a->v[0], offset_arg(a, 1, &in), (int)a->v[2], offset_arg(a, 3, &out),
                       L(4), (unsigned)a->v[5]));
}
static obs_t op_vmsplice(const args_t *a) {
  struct iovec v = {P(1), L(2)};
  return rc_int(vmsplice((int)a->v[0], &v, 1, (unsigned)a->v[3]));
}
static obs_t op_sendfile(const args_t *a) {
  off_t at = has(a, 2) ? (off_t)a->v[2] : 0;
  return rc_int(sendfile((int)a->v[0], (int)a->v[1], has(a, 2) ? &at : NULL, L(3)));
}
static obs_t op_copy_file_range(const args_t *a) {
  loff_t in, out;
  return rc_int(copy_file_range((int)a->v[0], offset_arg(a, 1, &in), (int)a->v[2],
                                offset_arg(a, 3, &out), L(4), (unsigned)a->v[5]));
}

/* /proc/self/mem of the case's first process, opened for writing before the confinement (which
 * lets no process write under /proc): mem_open binds the address space at open, so a fork child
 * that uses it reaches its first process's memory, not its own. -errno: it could not be opened. */
static int self_mem = -1;
#define HIGH_FD 900  /* the executor's own descriptors sit above the case's */
static int high_fd(int fd) {
  if (fd < 0) return -errno;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);
  close(fd);
  return high < 0 ? -errno : high;
}
static obs_t op_proc_mem(const step_t *s, const args_t *a, int writing) {
  if (self_mem < 0) { errno = -self_mem; return fail_errno(); }
  if (!writing) {
    if (a->v[1] < 0) run_error(s, "negative length");
    char *b = scratch_alloc(a->v[1] + 1);
    ssize_t n = pread(self_mem, b, L(1), (off_t)a->v[0]);
    if (n < 0) return fail_errno();
    obs_t o = {vbytes(b, n, V_BYTES), 0, 0};
    return o;
  }
  unsigned char *b;
  size_t n = encode(s, s->args[DATA].lay, &b);
  return rc_int(pwrite(self_mem, b, n, (off_t)a->v[0]));
}
static obs_t op_pidfd_open(const step_t *s, const args_t *a) {
  pid_t pid = has(a, 0) ? pid_of(s, s->args[0].str) : getpid();
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);  /* a pidfd is close-on-exec already */
  return rc_int(fd);
}
static obs_t op_process_madvise(const args_t *a) {
  struct iovec v = {P(1), L(2)};
  return rc_int(syscall(SYS_process_madvise, (int)a->v[0], &v, 1, (int)a->v[3], (unsigned)a->v[4]));
}
static obs_t op_ficlonerange(const args_t *a) {
  struct file_clone_range r = {.src_fd = a->v[1], .src_offset = (u64)a->v[2],
                               .src_length = (u64)a->v[3], .dest_offset = (u64)a->v[4]};
  return rc_none(ioctl((int)a->v[0], FICLONERANGE, &r));
}
static obs_t op_fideduperange(const args_t *a) {
  struct { struct file_dedupe_range r; struct file_dedupe_range_info info; } d;
  memset(&d, 0, sizeof d);
  d.r.src_offset = (u64)a->v[1];
  d.r.src_length = (u64)a->v[2];
  d.r.dest_count = 1;
  d.info.dest_fd = a->v[3];
  d.info.dest_offset = (u64)a->v[4];
  if (ioctl((int)a->v[0], FIDEDUPERANGE, &d) < 0) return fail_errno();
  val m = vmap(2);
  map_put(&m, "status", vint(d.info.status));  /* < 0: that range's -errno */
  map_put(&m, "bytes_deduped", vint((i64)d.info.bytes_deduped));
  obs_t o = {m, 0, 0};
  return o;
}

/* The case's one io_uring, made before the confinement (whose filter refuses io_uring_setup) and
 * restricted by the kernel to fixed-buffer reads and writes and to (un)registering buffers: a
 * ring could otherwise do what the filter refuses (IORING_OP_SOCKET makes a UDP socket). */
static struct {
  int fd;  /* -errno: none could be made */
  unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
} ring = {-ENOSYS, 0, 0, 0, 0, 0, 0, 0, 0};
static int ring_setup(void) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_R_DISABLED;
  int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0) return -errno;
  struct io_uring_restriction r[4];
  memset(r, 0, sizeof r);
  r[0].opcode = IORING_RESTRICTION_REGISTER_OP; r[0].register_op = IORING_REGISTER_BUFFERS;
  r[1].opcode = IORING_RESTRICTION_REGISTER_OP; r[1].register_op = IORING_UNREGISTER_BUFFERS;
  r[2].opcode = IORING_RESTRICTION_SQE_OP; r[2].sqe_op = IORING_OP_READ_FIXED;
  r[3].opcode = IORING_RESTRICTION_SQE_OP; r[3].sqe_op = IORING_OP_WRITE_FIXED;
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  char *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
  void *sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED ||
      syscall(__NR_io_uring_register, fd, IORING_REGISTER_RESTRICTIONS, r, 4) < 0 ||
      syscall(__NR_io_uring_register, fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
    int err = errno;
    close(fd);  /* the mappings stay: the case has not started, nothing measures them yet */
    return -err;
  }
  ring.sq_tail = (unsigned *)(sq + p.sq_off.tail);
  ring.sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  ring.sq_array = (unsigned *)(sq + p.sq_off.array);
  ring.cq_head = (unsigned *)(cq + p.cq_off.head);
  ring.cq_tail = (unsigned *)(cq + p.cq_off.tail);
  ring.cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  ring.sqes = sqes;
  ring.cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  return high_fd(fd);
}
static obs_t op_uring_register(const args_t *a, int registering) {
  if (ring.fd < 0) { errno = -ring.fd; return fail_errno(); }
  struct iovec v = {registering ? P(0) : NULL, registering ? L(1) : 0};
  return rc_none(syscall(__NR_io_uring_register, ring.fd,
                         registering ? IORING_REGISTER_BUFFERS : IORING_UNREGISTER_BUFFERS,
                         registering ? &v : NULL, registering ? 1 : 0));
}
/* one fixed-buffer read or write with buffer 0, waited for: its result is the completion's */
static obs_t op_uring_fixed(const args_t *a, int opcode) {
  if (ring.fd < 0) { errno = -ring.fd; return fail_errno(); }
  unsigned tail = *ring.sq_tail, k = tail & *ring.sq_mask;
  struct io_uring_sqe *q = &ring.sqes[k];
  memset(q, 0, sizeof *q);
  q->opcode = (uint8_t)opcode;
  q->fd = (int)a->v[0];
  q->addr = (u64)a->v[1];
  q->len = (unsigned)a->v[2];
  q->off = (u64)a->v[3];
  q->buf_index = 0;
  ring.sq_array[k] = k;
  __atomic_store_n(ring.sq_tail, tail + 1, __ATOMIC_RELEASE);
  long n;
  while ((n = syscall(__NR_io_uring_enter, ring.fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0)) < 0 &&
         errno == EINTR) {}
  if (n < 0) return fail_errno();
  unsigned head = *ring.cq_head;
  if (head == __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE)) { errno = EAGAIN; return fail_errno(); }
  int res = ring.cqes[head & *ring.cq_mask].res;
  __atomic_store_n(ring.cq_head, head + 1, __ATOMIC_RELEASE);
  if (res < 0) { errno = -res; return fail_errno(); }
  return ok_int(res);
}
static int program_uses(const block *b, i64 op) {
  for (int k = 0; b && k < b->n; k++)
    if (b->steps[k].op == op || program_uses(b->steps[k].body, op)) return 1;
  return 0;
}
static int case_uses(i64 op) {
  if (program_uses(&setup_block, op)) return 1;
  for (i64 k = 0; k < nprocs; k++)
    if (program_uses(&proc_blocks[k], op)) return 1;
  return 0;
}
/* what must be made before the confinement, and only for a case that uses it */
static void before_confine(void) {
  if (case_uses(OP_PROC_MEM_WRITE) || case_uses(OP_PROC_MEM_READ))
    self_mem = high_fd(open("/proc/self/mem", O_RDWR | O_CLOEXEC));
  if (case_uses(OP_URING_REGISTER_BUFFERS) || case_uses(OP_URING_READ_FIXED) ||
      case_uses(OP_URING_WRITE_FIXED) || case_uses(OP_URING_UNREGISTER_BUFFERS))
    ring.fd = ring_setup();
}
static const long prctl_options[] = {PR_SET_THP_DISABLE, PR_GET_THP_DISABLE, 65 /* PR_SET_MDWE */,
                                     66 /* PR_GET_MDWE */, 0x53564d41 /* PR_SET_VMA */};
static obs_t op_prctl(const step_t *s, const args_t *a) {
  int allowed = 0;
  for (size_t k = 0; k < sizeof prctl_options / sizeof *prctl_options; k++)
    allowed |= a->v[0] == prctl_options[k];
  if (!allowed) run_error(s, "prctl option %lld is not one the case language offers", (long long)a->v[0]);
  unsigned long arg5 = has(a, 5) ? (unsigned long)(uintptr_t)S(s->args[5].str) : (unsigned long)a->v[4];
  return rc_int(prctl((int)a->v[0], (unsigned long)a->v[1], (unsigned long)a->v[2],
                      (unsigned long)a->v[3], arg5));
}

static obs_t perform_op(const step_t *s, const args_t *a) {
  switch (s->op) {
  case OP_FILE: return op_file(s, a);
  case OP_OPEN: return op_open(s, a);
  case OP_CLOSE: return rc_none(close((int)a->v[0]));
  case OP_FTRUNCATE: return rc_none(ftruncate((int)a->v[0], a->v[1]));
  case OP_WRITE: return op_write(s, a);
  case OP_READ: return op_read(s, a);
  case OP_FSTAT: return op_fstat(a);
  case OP_FSYNC: return rc_none(fsync((int)a->v[0]));
  case OP_FDATASYNC: return rc_none(fdatasync((int)a->v[0]));
  case OP_UNLINK: {
    if (!scratch_dir) run_error(s, "unlink has no meaning on the memfd backing: limit the case's backings");
    char path[PATH_MAX];
    file_path(s, path, sizeof path, s->args[0].str);
    return rc_none(unlink(path));
  }
  case OP_MMAP:
    return rc_addr(mmap(P(5), L(0), (int)a->v[1], (int)a->v[2], (int)a->v[3], (off_t)a->v[4]));
  case OP_MUNMAP: return rc_none(munmap(P(0), L(1)));
  case OP_MPROTECT: return rc_none(mprotect(P(0), L(1), (int)a->v[2]));
  case OP_MSYNC: return rc_none(msync(P(0), L(1), (int)a->v[2]));
  case OP_MADVISE: return rc_none(madvise(P(0), L(1), (int)a->v[2]));
  case OP_MLOCK:
    if (a->v[2]) return rc_none(syscall(SYS_mlock2, P(0), L(1), (int)a->v[2]));
    return rc_none(mlock(P(0), L(1)));
  case OP_MUNLOCK: return rc_none(munlock(P(0), L(1)));
  /* The system call itself: through glibc's variadic mremap() the static aarch64 build's
   * DONTUNMAP call with an unaligned new_address succeeded, as if the kernel never saw it. */
  case OP_MREMAP:
    return rc_addr((void *)syscall(SYS_mremap, P(0), L(1), L(2), (long)a->v[3], P(4)));
  case OP_MINCORE: return op_mincore(s, a);
  case OP_LOAD: return op_load(s, a);
  case OP_STORE: return op_store(s, a);
  case OP_WAIT: return op_wait(a);
  case OP_KILL: return op_kill(s, a);
  case OP_CACHESTAT: return op_cachestat(a);
  case OP_SMAPS: return op_smaps(a);
  case OP_SEM_INIT: return rc_none(sem_init((sem_t *)P(0), (int)a->v[1], (unsigned)a->v[2]));
  case OP_SEM_POST: return rc_none(sem_post((sem_t *)P(0)));
  case OP_SEM_WAIT: return op_sem_wait(a);
  case OP_PIPE: return op_pipe(s);
  case OP_EVENTFD: return rc_int(syscall(SYS_eventfd2, (unsigned)a->v[0], (int)a->v[1]));
  case OP_DUP: return rc_int(fcntl((int)a->v[0], F_DUPFD_CLOEXEC, 0));
  case OP_REOPEN: {
    char path[64];
    if (has(a, 2)) {  /* another process's fd, by that process's name */
      pid_t pid = pid_of(s, s->args[2].str);
      snprintf(path, sizeof path, "/proc/%d/fd/%lld", (int)pid, (long long)a->v[0]);
      return rc_int(open(path, (int)a->v[1] | O_CLOEXEC, 0777));
    }
    snprintf(path, sizeof path, "/proc/self/fd/%lld", (long long)a->v[0]);
    return rc_int(open(path, (int)a->v[1] | O_CLOEXEC, 0777));
  }
  case OP_MEMFD_CREATE:  /* name_addr: a raw pointer where the name goes (NULL: EFAULT) */
    return rc_int(syscall(SYS_memfd_create, has(a, 2) ? (const char *)P(2) : S(s->args[0].str),
                          (unsigned)a->v[1]));
  case OP_FCNTL: return rc_int(fcntl((int)a->v[0], (int)a->v[1], (unsigned long)a->v[2]));
  case OP_FADVISE: return ok_int(posix_fadvise((int)a->v[0], a->v[1], a->v[2], (int)a->v[3]));
  case OP_POSIX_MADVISE: return ok_int(posix_madvise(P(0), L(1), (int)a->v[2]));
  case OP_MSEAL: return rc_none(syscall(SYS_mseal, P(0), L(1), (unsigned long)a->v[2]));
  case OP_MLOCKALL: return rc_none(mlockall((int)a->v[0]));
  case OP_MUNLOCKALL: return rc_none(munlockall());
  case OP_SETRLIMIT: return op_setrlimit(s, a);
  case OP_SETUID: return op_setuid(a);
  case OP_CALL: return ok_int(((int (*)(void))P(0))());
  case OP_SLEEP: return op_sleep(a);
  case OP_PROC_MAPS: return op_proc_maps(s, a);
  case OP_PROC_STATUS: return op_proc_status();
  case OP_FALLOCATE: return rc_none(fallocate((int)a->v[0], (int)a->v[1], a->v[2], a->v[3]));
  /* the system call, not glibc's brk(): it returns the break, the old one when it refuses */
  case OP_BRK: return ok_int((i64)syscall(SYS_brk, P(0)));
  case OP_LET: return ok_int(a->v[0]);
  case OP_USERFAULTFD: return op_userfaultfd(a);
  case OP_UFFD_REGISTER: return op_uffd_register(a);
  case OP_UFFD_READ: return op_uffd_read(a);
  case OP_UFFD_COPY: return op_uffd_copy(a);
  case OP_UFFD_ZEROPAGE: return op_uffd_zeropage(a);
  case OP_GETRLIMIT: {
    struct rlimit r;
    if (getrlimit((int)a->v[0], &r) < 0) return fail_errno();
    val m = vmap(2);
    map_put(&m, "soft", vint((i64)r.rlim_cur));
    map_put(&m, "hard", vint((i64)r.rlim_max));
    obs_t o = {m, 0, 0};
    return o;
  }
  case OP_SYNC_FILE_RANGE:
    return rc_none(sync_file_range((int)a->v[0], a->v[1], a->v[2], (unsigned)a->v[3]));
  case OP_SYNCFS: return rc_none(syncfs((int)a->v[0]));
  case OP_POWER_CUT: return op_power_cut();
  case OP_GROW_STACK: return op_grow_stack(s, a);
  case OP_CORE: return op_core(s, a);
  case OP_GETRUSAGE: return op_getrusage();
  case OP_SPLICE: return op_splice(a);
  case OP_VMSPLICE: return op_vmsplice(a);
  case OP_SENDFILE: return op_sendfile(a);
  case OP_COPY_FILE_RANGE: return op_copy_file_range(a);
  case OP_PROC_MEM_WRITE: return op_proc_mem(s, a, 1);
  case OP_PROC_MEM_READ: return op_proc_mem(s, a, 0);
  case OP_PIDFD_OPEN: return op_pidfd_open(s, a);
  case OP_PROCESS_MADVISE: return op_process_madvise(a);
  case OP_FICLONE: return rc_none(ioctl((int)a->v[0], FICLONE, (int)a->v[1]));
  case OP_FICLONERANGE: return op_ficlonerange(a);
  case OP_FIDEDUPERANGE: return op_fideduperange(a);
  case OP_LSEEK: return rc_int(lseek((int)a->v[0], (off_t)a->v[1], (int)a->v[2]));
  case OP_URING_REGISTER_BUFFERS: return op_uring_register(a, 1);
  case OP_URING_UNREGISTER_BUFFERS: return op_uring_register(a, 0);
  case OP_URING_READ_FIXED: return op_uring_fixed(a, IORING_OP_READ_FIXED);
  case OP_URING_WRITE_FIXED: return op_uring_fixed(a, IORING_OP_WRITE_FIXED);
  case OP_PRCTL: return op_prctl(s, a);
  }
  run_error(s, "operation %lld is not known to this executor", (long long)s->op);
  return ok_none();
}

/* ---- steps ----------------------------------------------------------------------------------------- */
static int run_block(const block *b);
static void begin(const char *parent);
static obs_t do_thread(const step_t *s, const args_t *a);
static obs_t do_join(const step_t *s);
static void release_thread(void);

static void bind_value(const step_t *s, const val *result) {
  val *x = calloc(1, sizeof *x);
  deep_copy(x, result);
  slots[s->bind] = x;
  if (s->map_index >= 0 && s->map_index < NATIVE_MAPS) {
    int k = (int)s->map_index;
    me->maps[k][0] = result->i;
    me->maps[k][1] = eval_or_die(s, &s->map_len);
    me->map_bound[k] = 1;
  }
}
static void send_end(const step_t *s, const args_t *a, i64 want_addr, const obs_t *o, int ok,
                     int ends_loop) {
  begin_rec(REC_END);
  put(s->id);
  put(iteration);
  put(ok);
  put(ends_loop);
  put(o->err);
  size_t at = rec_n;
  put_val(&o->result);
  if (rec_overflow || rec_n * 8 > 200000) {  /* too large to report: say so, as Python does */
    char msg[96];
    snprintf(msg, sizeof msg, "<%zu bytes, too large to report>", rec_overflow ? (size_t)REC_MAX : (rec_n - at) * 8);
    rec_n = at;
    rec_overflow = 0;
    val t = {0};
    t.t = V_TEXT;
    t.b = msg;
    t.n = strlen(msg);
    put(-1);  /* marks a result the harness cannot re-judge */
    put_val(&t);
  }
  int nint = 0;
  for (int k = 0; k < MAX_ARGS; k++) nint += has(a, k) && s->args[k].kind == A_EXPR;
  put(nint);
  for (int k = 0; k < MAX_ARGS; k++)
    if (has(a, k) && s->args[k].kind == A_EXPR) { put(k); put(a->v[k]); }
  put(s->has_si_addr);
  put(want_addr);
  put(s->nenv);
  for (i64 k = 0; k < s->nenv; k++) {
    val *v = slots[s->env[k]];
    put(s->env[k]);
    put(v != NULL);
    if (v) put_val(v);
  }
  put_maps();
  send_rec();
}
static int in_until(int err) {
  if (!nstops || !err) return 0;
  for (int k = 0; k < nstop_errs[nstops - 1]; k++)
    if (stops[nstops - 1][k] == err) return 1;
  return 0;
}
static obs_t do_fork(const step_t *s) {
  pid_t pid = fork();
  if (pid < 0) return fail_errno();
  if (pid > 0) return ok_int(pid);
  proc_name_index = s->bind >= 0 ? slot_name[s->bind] : -1;
  if (s->bind >= 0) snprintf(proc_name, sizeof proc_name, "%s", S(slot_name[s->bind]));
  else {
    char parent[sizeof proc_name];
    memcpy(parent, proc_name, sizeof parent);
    snprintf(proc_name, sizeof proc_name, "%.200s.%s", parent, S(s->label));
  }
  nstops = 0;  /* a loop of the parent is not the child's to end */
  loop_depth = 0;
  iteration = -1;
  begin(NULL);
  run_block(s->body);
  finish(EXIT_DONE);
  return ok_none();
}
static obs_t do_repeat(const step_t *s, const args_t *a) {
  obs_t o = ok_none();
  if (s->nuntil) {
    stops[nstops] = (i64 *)s->until;
    nstop_errs[nstops++] = s->nuntil;
  }
  i64 saved = iteration;
  loop_depth++;
  for (i64 i = 0; i < a->v[0]; i++) {
    if (s->var >= 0) bind_int(s->var, i);
    iteration = i;
    int end = run_block(s->body);
    if (end) { o = ok_int(i); o.err = end; break; }
  }
  loop_depth--;
  iteration = saved;
  if (s->nuntil) nstops--;
  return o;
}
static obs_t do_event(const step_t *s, const args_t *a) {
  int32_t *w = event_word(a->v[0]);
  if (s->op == OP_POST) {
    __atomic_store_n(w, 1, __ATOMIC_SEQ_CST);
    futex_wake_all(w);
    return ok_none();
  }
  while (!__atomic_load_n(w, __ATOMIC_SEQ_CST)) {
    if (__atomic_load_n(abort_word(), __ATOMIC_SEQ_CST)) {
      begin_rec(REC_ABORTED);
      put(s->id);
      send_rec();
      finish(EXIT_ABORTED);
    }
    struct timespec t = {0, 50 * 1000 * 1000};
    syscall(SYS_futex, w, FUTEX_WAIT, 0, &t, 0, 0);
  }
  return ok_none();
}
static int run_step(const step_t *s) {
  scratch_reset();
  cur = s;
  args_t a = {{0}, 0};
  for (int k = 0; k < MAX_ARGS; k++) {
    if (!((s->present >> k) & 1)) continue;
    a.has |= 1u << k;
    if (s->args[k].kind == A_EXPR) a.v[k] = eval_or_die(s, &s->args[k].e);
  }
  /* writing (or dup'ing) it would let a plain case forge its own step reports */
  for (int k = 0; k < MAX_ARGS; k++)
    if (((s->fd_args >> k) & 1) && has(&a, k) && a.v[k] == report_fd)
      run_error(s, "fd %lld belongs to the harness, not to the case", (long long)report_fd);
  i64 want_addr = s->has_si_addr ? eval_or_die(s, &s->want_addr) : 0;
  me->step = (int32_t)s->id;
  me->iteration = iteration;
  me->expect_sig = s->kind == K_SIGNAL ? (int32_t)s->signo : 0;
  me->want_addr = want_addr;
  me->has_si_addr = s->has_si_addr;
  for (int k = 0; k < s->nip; k++) {
    me->ip_want[k] = eval_or_die(s, &s->ip_e[k]);
    me->ip_ops[k] = (int32_t)s->ip_ops[k];
  }
  me->nip = s->nip;
  int depth = me->depth;
  if (depth < 16) me->open[depth] = (int32_t)s->id;
  me->depth = depth + 1;
  __atomic_store_n(&me->in_step, 1, __ATOMIC_SEQ_CST);
  if (s->runerror) run_error(s, "%s", S(s->runerror - 1));
  obs_t o;
  errno = 0;
  if (s->op == OP_FORK) o = do_fork(s);
  else if (s->op == OP_REPEAT) o = do_repeat(s, &a);
  else if (s->op == OP_POST || s->op == OP_WAIT_FOR) o = do_event(s, &a);
  else if (s->op == OP_THREAD) o = do_thread(s, &a);
  else if (s->op == OP_JOIN) o = do_join(s);
  else o = perform_op(s, &a);
  /* a fork or repeat ran other steps: their step is not this one any more */
  me->step = (int32_t)s->id;
  int ends_loop = in_until(o.err);
  int ok = ends_loop || judge(s, &o);
  if (ok && s->bind >= 0 && o.result.t != V_NONE) bind_value(s, &o.result);
  me->depth = depth;
  __atomic_store_n(&me->in_step, depth > 0, __ATOMIC_SEQ_CST);
  if (depth > 0) me->step = me->open[depth - 1 < 16 ? depth - 1 : 15];
  me->expect_sig = 0;
  /* inside a loop, a passed step is reported the first time it passes, then only counted */
  if (!ok || ends_loop || loop_depth == 0 || !traced[s->id]) {
    traced[s->id] = 1;
    send_end(s, &a, want_addr, &o, ok, ends_loop);
  } else {
    me->unsent++;
  }
  release_thread();
  if (!ok) {
    abort_case();
    finish(EXIT_FAILED);
  }
  return ends_loop ? o.err : 0;
}
static int run_block(const block *b) {
  for (int k = 0; k < b->n; k++) {
    int end = run_step(&b->steps[k]);
    if (end) return end;
  }
  return 0;
}

/* ---- a process's start: limits, dispositions, fault capture, confinement ---------------------------- */
static i64 fault_ip(const void *ctx) {
  const ucontext_t *uc = ctx;
#if defined(__x86_64__)
  return (i64)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
  return (i64)uc->uc_mcontext.pc;
#else
  (void)uc;
  return 0;
#endif
}
static void on_fault(int sig, siginfo_t *si, void *ctx) {
  if (me) {
    me->fault_ip = fault_ip(ctx);
    me->has_fault_ip = 1;
  }
  struct sigslot *s = sig_slot(getpid());
  s->signo = sig;
  s->code = si->si_code;
  s->addr = (u64)(uintptr_t)si->si_addr;
  s->tid = (int32_t)syscall(SYS_gettid);
  s->pid = getpid();
}
static void limit_address_space(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  rlim_t limit = ((rlim_t)strtoull(buf, NULL, 10) + (rlim_t)address_space_pages) * page_size;
  struct rlimit r;
  getrlimit(RLIMIT_AS, &r);
  /* a fork child keeps its parent's budget: the limit is per case process tree */
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < limit) limit = r.rlim_cur;
  if (r.rlim_max != RLIM_INFINITY && r.rlim_max < limit) limit = r.rlim_max;
  r.rlim_cur = r.rlim_max = limit;
  setrlimit(RLIMIT_AS, &r);
}

static const i64 *confine_spec;  /* from the RUN request */
static i64 confine_words;
static int confined;
static void confine(void) {
  const i64 *p = confine_spec, *end = confine_spec + confine_words;
#define NEXT() (p < end ? *p++ : 0)
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  i64 abi = NEXT();
  struct { u64 fs, net, scoped; } attr;
  attr.fs = (u64)NEXT();
  attr.net = (u64)NEXT();
  attr.scoped = (u64)NEXT();
  i64 size = NEXT(), nrules = NEXT();
  int ruleset = abi >= 1 ? (int)syscall(SYS_landlock_create_ruleset, &attr, (size_t)size, 0) : -1;
  for (i64 k = 0; k < nrules; k++) {
    u64 rights = (u64)NEXT();
    i64 len = NEXT();
    i64 nw = (len + 7) / 8;
    if (len < 0 || nw > end - p) fatal("mmapconf-exec: bad confinement");
    char path[PATH_MAX];
    if (len >= PATH_MAX) { p += nw; continue; }
    memcpy(path, p, len);
    path[len] = 0;
    p += nw;
    if (ruleset < 0) continue;
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) continue;  /* nothing there to allow */
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) rights &= (1 | 2 | 4 | (1 << 14) | (1 << 15));
    struct __attribute__((packed)) { u64 allowed; int32_t parent; } rule = {rights, fd};
    if (syscall(SYS_landlock_add_rule, ruleset, 1, &rule, 0) != 0)
      fatal("mmapconf-exec: landlock_add_rule %s: %s", path, strerror(errno));
    close(fd);
  }
  if (ruleset >= 0) {
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
      fatal("mmapconf-exec: landlock_restrict_self: %s", strerror(errno));
    close(ruleset);
  }
  i64 ninsn = NEXT();
  if (ninsn > 0 && ninsn <= 4096 && ninsn <= end - p) {
    struct sock_filter *f = calloc(ninsn, sizeof *f);
    for (i64 k = 0; k < ninsn; k++) {
      u64 w = (u64)*p++;
      f[k].code = (uint16_t)w;
      f[k].jt = (uint8_t)(w >> 16);
      f[k].jf = (uint8_t)(w >> 24);
      f[k].k = (uint32_t)(w >> 32);
    }
    struct sock_fprog prog = {(unsigned short)ninsn, f};
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
  }
#undef NEXT
  confined = 1;
}

/* A native slot for the calling process or thread, counted against the case's limit; past it
 * every process of the case is killed. */
static struct nslot *claim_slot(const char *what) {
  int claimed = sem_trywait((sem_t *)(arena + PROCS_OFF)) == 0;
  int32_t tid = (int32_t)syscall(SYS_gettid);
  for (int k = 0; claimed && k < NATIVE_PROCS; k++) {
    struct nslot *s = native_slot(k);
    int32_t free_pid = 0;  /* a slot a joined thread gave back is free again */
    if (!__atomic_compare_exchange_n(&s->pid, &free_pid, tid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
      continue;
    s->tgid = getpid();
    int32_t high = __atomic_load_n(&native_head()->next_slot, __ATOMIC_SEQ_CST);
    while (high < k + 1 && !__atomic_compare_exchange_n(&native_head()->next_slot, &high, k + 1, 0,
                                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
    s->name_index = -1;
    s->iteration = -1;
    s->depth = 0;
    s->nmaps = (int32_t)(nmaps_total < NATIVE_MAPS ? nmaps_total : NATIVE_MAPS);
    return s;
  }
  /* root ignores RLIMIT_NPROC: the case counts its processes and, past the limit, ends them */
  char msg[160];
  snprintf(msg, sizeof msg, "more than %lld %s in one case: every process of the case was killed",
           (long long)max_processes, what);
  begin_rec(REC_LIMIT);
  put_str(proc_name);
  put_str(msg);
  send_rec();
  abort_case();
  kill(0, SIGKILL);
  _exit(EXIT_ERROR);
}
static i64 deadline_ns;
static i64 now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ts_ns(t);
}
/* provision.core: the case's first process sets what every later one inherits (a fork child
 * keeps a limit its parent lowered); the filter is written before Landlock forbids /proc */
static void allow_core(void) {
  if (confined) return;
  rlim_t n = core_limit < 0 ? RLIM_INFINITY : (rlim_t)core_limit;
  struct rlimit core = {n, n};
  setrlimit(RLIMIT_CORE, &core);
  if (core_filter < 0) return;
  char text[32];
  int len = snprintf(text, sizeof text, "%#llx", (unsigned long long)core_filter);
  int fd = open("/proc/self/coredump_filter", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, (size_t)len) != len)
    fatal("mmapconf-exec: coredump_filter: %s", strerror(errno));
  close(fd);
}
static void begin(const char *parent) {
  if (core_on) {
    allow_core();
  } else {
    struct rlimit core = {0, 0};
    setrlimit(RLIMIT_CORE, &core);
    /* a core_pattern pipe ignores RLIMIT_CORE: a non-dumpable process is dumped by nothing */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  }
  limit_address_space();
  static const int defaults[] = {SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGXFSZ, SIGALRM};
  for (size_t k = 0; k < sizeof defaults / sizeof *defaults; k++) signal(defaults[k], SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  /* SA_ONSTACK: a thread runs the handler on its own signal stack (a stack that cannot grow) */
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  if (!confined) before_confine();
  if (!confined) confine();  /* once per case: its other processes inherit the confinement */
  i64 left = (deadline_ns - now_ns() + 999999999) / 1000000000;
  alarm((unsigned)(left < 1 ? 1 : left) + 2);  /* a backstop for a harness that died */
  begin_rec(REC_PROC);
  put(parent != NULL);
  put_str(proc_name);
  put_str(parent ? parent : "");
  send_rec();
  struct nslot *parent_slot = me;
  me = claim_slot("processes");
  if (parent_slot) {  /* a fork child starts with the mappings its parent had bound */
    memcpy(me->maps, parent_slot->maps, sizeof me->maps);
    memcpy(me->map_bound, parent_slot->map_bound, sizeof me->map_bound);
  }
  me->name_index = proc_name_index;
}

static void case_main(void) {
  snprintf(proc_name, sizeof proc_name, "%s", S(first_name));
  proc_name_index = first_name;
  begin(NULL);
  run_block(&setup_block);
  if (!strcmp(S(first_name), "main")) {
    run_block(&proc_blocks[0]);
    finish(EXIT_DONE);
  }
  for (i64 k = 0; k < nprocs; k++) {
    pid_t pid = fork();
    if (pid < 0) run_error(NULL, "fork: %s", strerror(errno));
    if (pid == 0) {
      snprintf(proc_name, sizeof proc_name, "%s", S(proc_names[k]));
      proc_name_index = proc_names[k];
      /* the member starts with its own bindings' view: what setup bound, nothing more */
      begin("setup");
      run_block(&proc_blocks[k]);
      finish(EXIT_DONE);
    }
  }
  finish(EXIT_DONE);
}

/* ---- threads: a `thread` step starts its steps on a new thread of the process, `join` waits -------
 * Each thread has its own slot on the shared page (so a death still names the thread and its
 * step), its own report record (one send per record: the socket keeps records whole), its own
 * scratch memory and signal stack. Synchronous SIGSEGV/SIGBUS go to the faulting thread; its
 * handler records its thread id beside the siginfo. A thread is joined by the thread that
 * started it (the validator holds a case to that); a failed step or an error in any thread ends
 * the whole process, as it would end a single-threaded one. */
#define MAX_THREADS 16                /* running at once, per starting thread */
#define THREAD_STACK (2 << 20)        /* a thread's own stack, unless the case gives one */
#define ALTSTACK_SIZE (64 << 10)
#define THREAD_SCRATCH (1 << 20)
/* What a thread needs (its report record, its scratch memory, its signal stack), in one block
 * from the heap under the program break, made by the starting thread and freed at the join: in
 * the mmap area it would land in the gaps a case keeps free (below a MAP_GROWSDOWN stack), and
 * a thread's own would outlive it. */
#define THREAD_BUNDLE (REC_MAX + THREAD_SCRATCH + ALTSTACK_SIZE)
static char *thread_bundle(void) {
  mallopt(M_MMAP_THRESHOLD, 2 * THREAD_BUNDLE);
  char *b = malloc(THREAD_BUNDLE);
  mallopt(M_MMAP_THRESHOLD, 128 << 10);  /* glibc's default */
  return b;
}
struct thread_start {
  const step_t *step;
  i64 name;
  char parent[512];
  i64 maps[NATIVE_MAPS][2];           /* the starting thread's bound mappings */
  int32_t map_bound[NATIVE_MAPS];
  char *bundle;                       /* rec, then scratch, then the signal stack */
  struct nslot *slot;                 /* the thread's, set before `started` */
  int32_t started, go;                /* go: the `thread` step is reported, its steps may run */
  pthread_t th;
};
static __thread struct thread_start *threads[MAX_THREADS];
static __thread struct thread_start *starting;  /* started by the step being reported */
static void futex_wait_for(int32_t *w) {
  while (!__atomic_load_n(w, __ATOMIC_SEQ_CST)) {
    struct timespec wait = {0, 50 * 1000 * 1000};
    syscall(SYS_futex, w, FUTEX_WAIT, 0, &wait, 0, 0);
  }
}
static void release_thread(void) {
  if (!starting) return;
  __atomic_store_n(&starting->go, 1, __ATOMIC_SEQ_CST);
  futex_wake_all(&starting->go);
  starting = NULL;
}
static void *thread_main(void *arg) {
  struct thread_start *t = arg;
  rec = (i64 *)t->bundle;
  bump = t->bundle + REC_MAX;
  bump_cap = THREAD_SCRATCH;
  snprintf(proc_name, sizeof proc_name, "%.200s/%s", t->parent, S(t->name));
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_sp = t->bundle + REC_MAX + THREAD_SCRATCH;
  ss.ss_size = ALTSTACK_SIZE;
  sigaltstack(&ss, NULL);
  me = claim_slot("processes and threads");
  memcpy(me->maps, t->maps, sizeof me->maps);
  memcpy(me->map_bound, t->map_bound, sizeof me->map_bound);
  t->slot = me;
  begin_rec(REC_THREAD);
  put(getpid());
  put_str(proc_name);
  put_str(t->parent);
  send_rec();
  __atomic_store_n(&t->started, 1, __ATOMIC_SEQ_CST);
  futex_wake_all(&t->started);
  futex_wait_for(&t->go);  /* the trace shows the thread step ended before the thread's steps */
  run_block(t->step->body);
  begin_rec(REC_DONE);
  send_rec();
  return NULL;
}
static obs_t do_thread(const step_t *s, const args_t *a) {
  int k = 0;
  while (k < MAX_THREADS && threads[k]) k++;
  if (k == MAX_THREADS) run_error(s, "more than %d threads running at once from one thread", MAX_THREADS);
  struct thread_start *t = calloc(1, sizeof *t);
  char *bundle = thread_bundle();
  if (!t || !bundle) out_of_memory(sizeof *t + THREAD_BUNDLE);
  t->step = s;
  t->name = s->args[0].str;
  t->bundle = bundle;
  snprintf(t->parent, sizeof t->parent, "%s", proc_name);
  memcpy(t->maps, me->maps, sizeof t->maps);
  memcpy(t->map_bound, me->map_bound, sizeof t->map_bound);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  int err = has(a, 1) ? pthread_attr_setstack(&attr, (void *)(uintptr_t)a->v[1], (size_t)a->v[2])
                      : pthread_attr_setstacksize(&attr, THREAD_STACK);
  if (!err) err = pthread_create(&t->th, &attr, thread_main, t);
  pthread_attr_destroy(&attr);
  if (err) {
    free(bundle);
    free(t);
    errno = err;
    return fail_errno();
  }
  futex_wait_for(&t->started);
  threads[k] = t;
  starting = t;
  return ok_none();
}
static obs_t do_join(const step_t *s) {
  int k = 0;
  while (k < MAX_THREADS && !(threads[k] && threads[k]->name == s->args[0].str)) k++;
  if (k == MAX_THREADS) {  /* its thread step failed (pthread_join's errno for no such thread) */
    errno = ESRCH;
    return fail_errno();
  }
  struct thread_start *t = threads[k];
  int err = pthread_join(t->th, NULL);
  if (err) {
    errno = err;
    return fail_errno();
  }
  /* what the thread bound is the process's now; its slot and its place in the count are free */
  struct nslot *gone = t->slot;
  me->unsent += gone->unsent;
  for (int m = 0; m < NATIVE_MAPS; m++)
    if (gone->map_bound[m]) {
      me->maps[m][0] = gone->maps[m][0];
      me->maps[m][1] = gone->maps[m][1];
      me->map_bound[m] = 1;
    }
  memset((char *)gone + sizeof gone->pid, 0, sizeof *gone - sizeof gone->pid);
  __atomic_store_n(&gone->pid, 0, __ATOMIC_SEQ_CST);
  sem_post((sem_t *)(arena + PROCS_OFF));
  free(t->bundle);
  free(t);
  threads[k] = NULL;
  return ok_none();
}

/* ---- the fork server -------------------------------------------------------------------------------- */
static int control_fd;
static void leave_cgroups(void);
static void ctl_send(i64 a, i64 b, i64 c) {
  i64 msg[3] = {a, b, c};
  if (send(control_fd, msg, sizeof msg, MSG_NOSIGNAL) < 0) {  /* the harness is gone */
    leave_cgroups();
    _exit(0);
  }
}
static int unexpected(pid_t pid, int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status) != 0;
  /* a process dies with all its threads: any of them may be the step that expected it */
  for (int k = 0; k < NATIVE_PROCS; k++) {
    struct nslot *s = native_slot(k);
    if ((s->pid == pid || s->tgid == pid) && s->in_step && s->expect_sig == WTERMSIG(status)) return 0;
  }
  return 1;
}
static void close_all_but(int keep) {
  if (keep > 3) syscall(SYS_close_range, 3, keep - 1, 0);
  if (syscall(SYS_close_range, keep + 1, ~0U, 0) != 0)
    for (int fd = keep + 1; fd < 4096; fd++) close(fd);
}
#define CHANNEL_FD 3  /* where a case process holds its report socket (the language refuses it) */
static void case_child(int fd, const char *scratch, i64 *program, size_t words) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  /* the case holds its report channel and nothing else of the harness */
  if (fd != CHANNEL_FD) {
    dup2(fd, CHANNEL_FD);
    fd = CHANNEL_FD;
  }
  close_all_but(fd);
  report_fd = fd;
  scratch_dir = scratch[0] ? scratch : NULL;
  read_program(program, words);
  /* The processes the case may start, each claiming a slot (claim_slot): counted from here, in
   * the case's first process before any step, so that the harness writes nothing in the arena */
  if (sem_init((sem_t *)(arena + PROCS_OFF), 1, (unsigned)max_processes) != 0)
    fatal("mmapconf-exec: sem_init: %s", strerror(errno));
  /* Everything the executor will need is allocated before the first step: an allocation later
   * would land in the address space the case measures (a hole below MAP_GROWSDOWN, the last of
   * vm.max_map_count). */
  scratch_alloc(1);
  /* a case's threads share the process's one malloc arena: one per thread would reserve 64 MiB
   * of the address space the case measures (and budgets with RLIMIT_AS) for each */
  mallopt(M_ARENA_MAX, 1);
  case_main();
}

/* ---- the case's walls (runner/engine/confine.py): its init, PID namespace, read-only view ------ */
/* Set once per server (CTL_WALLS): whether each case gets a PID namespace, and the template mount
 * namespace (the whole tree read-only, nodev, nosuid, /dev reduced) with the root its builder had
 * there (a chroot in a qemu guest). The server is in the case cgroups already: its inits are born
 * there. */
static int walls_pid_ns = -1;  /* -1: none; else our own PID namespace, to go back to after a fork */
static int walls_template = -1, walls_root = -1;
enum { VIEW_NONE, VIEW_PLAIN, VIEW_BIND, VIEW_FRESH };
struct view {              /* per case, from its RUN request */
  i64 mode;                /* PLAIN: the template as it is; BIND: the scratch folder bound writable
                              into it; FRESH: a fresh filesystem at point holding the scratch folder */
  char point[PATH_MAX], fstype[32], data[128];
};
static int req_str(const i64 **p, const i64 *end, char *out, size_t cap) {
  if (*p >= end) return -1;
  i64 len = *(*p)++;
  i64 nw = (len + 7) / 8;
  if (len < 0 || (size_t)len >= cap || nw > end - *p) return -1;
  memcpy(out, *p, (size_t)len);
  out[len] = 0;
  *p += nw;
  return 0;
}
static int make_dirs(const char *path, mode_t mode) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *q = buf + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    *q = '/';
  }
  return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}
/* The init's own mount namespace: a private copy of the template, the scratch folder the one
 * writable place, /proc for the case's PID namespace. NULL, or what failed. */
static const char *enter_view(const struct view *v, const char *scratch) {
  static char why[PATH_MAX + 64];
  if (v->mode == VIEW_NONE) return NULL;
#define FAIL(what) do { snprintf(why, sizeof why, "%s: %s", what, strerror(errno)); return why; } while (0)
  int tree = -1;
  if (v->mode == VIEW_BIND) {  /* taken before leaving the harness's view, where it is writable */
    tree = (int)syscall(SYS_open_tree, AT_FDCWD, scratch, OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
    if (tree < 0) FAIL("open_tree of the scratch folder");
  }
  if (setns(walls_template, CLONE_NEWNS) != 0) FAIL("setns to the template");
  /* setns moved our root to the namespace's own root: back to the root its builder had */
  if (fchdir(walls_root) != 0 || chroot(".") != 0) FAIL("chroot to the template's root");
  if (unshare(CLONE_NEWNS) != 0) FAIL("unshare(CLONE_NEWNS)");
  /* The case's root: a fresh tmpfs holding only what cases use (the reduced /dev, /proc, the way
   * to its scratch folder), so that no name of the host's can be listed from it (`open: {path:
   * /}` needs Landlock's READ_DIR on /). Made on /proc, a folder every view has; entered with
   * chroot, which seccomp refuses the case. */
  if (mount("mmapconf-root", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=256,mode=755") != 0)
    FAIL("mount of the case's root");
  if (mkdir("/proc/dev", 0755) != 0 || mkdir("/proc/proc", 0555) != 0) FAIL("mkdir in the case's root");
  if (mount("/dev", "/proc/dev", NULL, MS_BIND, NULL) != 0) FAIL("bind of /dev");
  if (chdir("/proc") != 0 || chroot(".") != 0 || chdir("/") != 0) FAIL("chroot to the case's root");
  if (tree >= 0 && (make_dirs(scratch, 0700) != 0 ||
                    syscall(SYS_move_mount, tree, "", AT_FDCWD, scratch, MOVE_MOUNT_F_EMPTY_PATH) != 0))
    FAIL("move_mount of the scratch folder");
  if (tree >= 0) close(tree);
  if (v->mode == VIEW_FRESH) {
    char source[48];
    snprintf(source, sizeof source, "mmapconf-%s", v->fstype);
    if (mount(source, v->point, v->fstype, MS_NOSUID | MS_NODEV, v->data) != 0) FAIL("mount");
    if (make_dirs(scratch, 0700) != 0) FAIL("mkdir of the scratch folder");
  }
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) FAIL("mount /proc");
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0)
    FAIL("read-only remount of the case's root");
  if (chdir(scratch[0] ? scratch : "/") != 0) FAIL("chdir");  /* "." of the case language */
#undef FAIL
  return NULL;
}
/* stdin from /dev/null; stdout and stderr into the harness's bounded capture pipe */
static void standard_fds(int out) {
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  dup2(null, 0);
  close(null);
  dup2(out, 1);
  dup2(out, 2);
  close(out);
}
/* The case's init: executor code, pid 1 of the case's PID namespace, never a case process. It
 * enters the case's view, forks the case's first process, then only reaps: every process of the
 * case that ends (an orphan included, whatever its session) is relayed to the harness. When it
 * dies the kernel kills every process left in the namespace. */
static void case_init(int fd, int out, const struct view *v, const char *scratch, i64 *program,
                      size_t words) {
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  signal(SIGTERM, SIG_DFL);
  setpgid(0, 0);
  if (walls_pid_ns < 0) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);  /* orphans come back to us */
  standard_fds(out);
  int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);  /* the case goes first */
  if (adj < 0 || write(adj, "1000", 4) != 4) fatal("mmapconf-exec: oom_score_adj: %s", strerror(errno));
  close(adj);
  const char *why = enter_view(v, scratch);
  if (why) {  /* a case never runs less confined than the environment reports */
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof msg, "the case could not be confined: %s", why);
    report_fd = fd;
    send_error(NULL, msg);
    _exit(EXIT_ERROR);
  }
  pid_t first = fork();
  if (first == 0) case_child(fd, scratch, program, words);
  close(fd);
  if (first < 0) fatal("mmapconf-exec: fork: %s", strerror(errno));
  for (;;) {
    int status;
    pid_t got = waitpid(-1, &status, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      break;  /* the namespace is empty */
    }
    if (unexpected(got, status)) abort_case();
    ctl_send(CTL_ENDING, got, status);
  }
  /* Pid 1 with no child left: its namespace is empty, every process of the case has ended and
   * been relayed. Said before the init's own exit, which tears the namespace down: the harness
   * may judge the case meanwhile (the server still reaps us before its next case). */
  if (walls_pid_ns >= 0) ctl_send(CTL_EMPTY, 0, 0);
  _exit(0);
}
/* Where the server goes back to before it exits (cgroup.procs files of the cgroups it came from):
 * a dead process stays in its cgroup until it is reaped, and a server whose harness died is
 * reaped by whatever init adopts it (on some machines never), which would keep the case cgroups
 * busy for good. It also kills its case's init first, which dies only once the case is empty. */
static char leave_to[4][PATH_MAX];
static int nleave;
static volatile pid_t current_init;
static volatile sig_atomic_t harness_gone;
static void on_harness_gone(int sig) {
  (void)sig;
  harness_gone = 1;
  if (current_init > 0) kill(current_init, SIGKILL);
}
static void leave_cgroups(void) {
  for (int k = 0; k < nleave; k++) {
    int fd = open(leave_to[k], O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && write(fd, "0", 1) != 1) {}  /* nothing more to do on the way out */
    if (fd >= 0) close(fd);
  }
}
static void take_walls(const i64 *req, size_t n, const int *fds, int nfds) {
  /* WALLS: pid_ns, then optionally a count and that many cgroup.procs paths to go back to; with
   * it (SCM_RIGHTS) the template mount namespace and its root, or nothing */
  if (n < 2 || (nfds != 0 && nfds != 2)) fatal("mmapconf-exec: bad walls");
  const i64 *p = req + 3, *end = req + n;
  i64 count = n >= 3 ? req[2] : 0;
  if (count < 0 || count > 4) fatal("mmapconf-exec: bad walls");
  for (nleave = 0; nleave < count; nleave++)
    if (req_str(&p, end, leave_to[nleave], sizeof leave_to[nleave])) fatal("mmapconf-exec: bad walls");
  walls_pid_ns = req[1] ? open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC) : -1;
  if (req[1] && walls_pid_ns < 0) fatal("mmapconf-exec: our PID namespace: %s", strerror(errno));
  if (nfds == 2) {
    walls_template = fds[0];
    walls_root = fds[1];
  }
}
static void serve_one(i64 *req, size_t n, const int *fds, int nfds, int prog_fd) {
  /* RUN: timeout_ns, program words, scratch (string), view (mode, point, fstype, data), then the
   * confinement spec (the rest); with it the case's report socket, its output pipe, its arena */
  if (n < 4 || req[0] != CTL_RUN || nfds != 3) fatal("mmapconf-exec: bad request");
  int fd = fds[0], out = fds[1];
  i64 timeout = req[1], words = req[2], slen = req[3];
  if (words <= 0 || words > (64 << 20) / 8 || slen < 0 || slen >= PATH_MAX ||
      4 + (slen + 7) / 8 > (i64)n)
    fatal("mmapconf-exec: bad request");
  char scratch[PATH_MAX];
  memcpy(scratch, req + 4, slen);
  scratch[slen] = 0;
  const i64 *p = req + 4 + (slen + 7) / 8, *end = req + n;
  static struct view v;
  if (p >= end) fatal("mmapconf-exec: bad request");
  v.mode = *p++;
  if (req_str(&p, end, v.point, sizeof v.point) || req_str(&p, end, v.fstype, sizeof v.fstype) ||
      req_str(&p, end, v.data, sizeof v.data) || v.mode < VIEW_NONE || v.mode > VIEW_FRESH ||
      (v.mode != VIEW_NONE && walls_template < 0))
    fatal("mmapconf-exec: bad request");
  confine_spec = p;
  confine_words = end - p;
  arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[2], 0);
  if (arena == MAP_FAILED) fatal("mmapconf-exec: arena: %s", strerror(errno));
  close(fds[2]);
  i64 *program = malloc(words * 8);
  if (pread(prog_fd, program, words * 8, 0) != words * 8) fatal("mmapconf-exec: short program");
  /* no memset: the arena is a new memfd for each case (the harness's, the batch's), zeros
   * already; writing them would only allocate every page of it */
  deadline_ns = now_ns() + timeout;
  /* the next fork is pid 1 of a new PID namespace: the case's init */
  int err = walls_pid_ns >= 0 && unshare(CLONE_NEWPID) != 0 ? errno : 0;
  pid_t pid = err ? -1 : fork();
  if (pid == 0) case_init(fd, out, &v, scratch, program, (size_t)words);
  current_init = pid;
  if (pid < 0 && !err) err = errno;
  /* the kernel makes a new PID namespace only from the one we are in: go back to it */
  if (walls_pid_ns >= 0 && setns(walls_pid_ns, CLONE_NEWPID) != 0)
    fatal("mmapconf-exec: setns back to our PID namespace: %s", strerror(errno));
  free(program);
  close(fd);
  close(out);
  if (pid < 0) {
    munmap(arena, ARENA_SIZE);
    ctl_send(CTL_FINISHED, -1, err);
    return;
  }
  setpgid(pid, pid);  /* also in the init: whichever runs first wins the race */
  ctl_send(CTL_STARTED, pid, 0);
  int status = 0;
  if (harness_gone) kill(pid, SIGKILL);  /* gone between the fork and our noting the init */
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  current_init = 0;
  /* without a PID namespace, orphans that left the group come back to us: never leave zombies */
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
  munmap(arena, ARENA_SIZE);
  ctl_send(CTL_FINISHED, pid, status);
}

/* ---- batch mode: a qemu guest's whole run, with no harness in the guest ------------------------------
 * `mmapconf-exec --batch IN OUT` (runner/vm/batch.py writes IN and reads OUT, both files in the
 * folder the host shares with the guest, both streams of records of 64-bit words: a kind, a word
 * count, then the words). IN: a facts query, then one case after another, then an end; it may still
 * be growing while it is read (the host compiles while the guest runs). OUT: the facts, then each
 * case's result as it ends. Each case runs on the fork server exactly as under the harness: this
 * process execs the server once and plays the harness's part (runner/engine/native/server.py):
 * the RUN request, the deadline, the kill, the collection of records and endings. Around each case
 * it makes what the harness would make: the scratch folder, the provision's mount and files; and
 * undoes them after, whatever the outcome. With -n N (the facts query's last word) N lanes, each
 * with a fork server of its own, run N cases at once, as the harness's -n N workers would. */
enum { B_FACTS = 1, B_CASE, B_END, B_RESULT, B_DONE };
#define B_MAGIC 0x31484342434d4d00ULL /* "\0MMCBCH1" */
#define B_MAX_RECORDS 10000 /* execute.MAX_RECORDS */
#define B_GRACE_NS 2000000000LL
#define B_IDLE_NS 600000000000LL /* no more input for this long: the host is gone */

/* Whether a record is framed as execute.py's _Reader decodes it: a known kind, every length
 * within the record, nothing after it. The guest ends a case on the first one that is not (the
 * host would only find out once the case had run to its end or its timeout). */
typedef struct { const i64 *w; size_t n, at; } rframe;
static int rf_word(rframe *f) { return f->at < f->n ? (f->at++, 1) : 0; }
static i64 rf_get(rframe *f) { return f->w[f->at++]; }
static int rf_raw(rframe *f) {
  if (f->at >= f->n) return 0;
  i64 len = rf_get(f);
  if (len < 0 || (u64)len > (f->n - f->at) * 8) return 0;
  f->at += ((size_t)len + 7) / 8;
  return 1;
}
static int rf_count(rframe *f, i64 *n) {
  if (f->at >= f->n) return 0;
  *n = rf_get(f);
  if (*n < 0) *n = 0;  /* Python's range() of a negative count: nothing */
  return 1;
}
static int rf_value(rframe *f, int depth) {
  if (depth > 200 || f->at >= f->n) return 0;
  i64 t = rf_get(f), n;
  switch (t) {
    case V_NONE: case -1: return 1;
    case V_INT: case V_BOOL: case V_FLOAT: return rf_word(f);
    case V_BYTES: case V_TEXT: return rf_raw(f);
    case V_LIST:
      if (!rf_count(f, &n)) return 0;
      for (i64 k = 0; k < n; k++) if (!rf_value(f, depth + 1)) return 0;
      return 1;
    case V_MAP:
      if (!rf_count(f, &n)) return 0;
      for (i64 k = 0; k < n; k++) if (!rf_raw(f) || !rf_value(f, depth + 1)) return 0;
      return 1;
  }
  return 0;
}
static int rf_words(rframe *f, size_t k) {
  if (f->n - f->at < k) return 0;
  f->at += k;
  return 1;
}
static int rf_end(rframe *f) {  /* execute.py's _Reader._end */
  i64 n;
  if (!rf_words(f, 5) || f->at >= f->n) return 0;
  if (f->w[f->at] == -1 && !rf_word(f)) return 0;  /* too large: the executor's text follows */
  if (!rf_value(f, 0) || !rf_count(f, &n)) return 0;
  for (i64 k = 0; k < n; k++) if (!rf_words(f, 2)) return 0;
  if (!rf_words(f, 2) || !rf_count(f, &n)) return 0;
  for (i64 k = 0; k < n; k++) {
    if (!rf_words(f, 2)) return 0;
    if (f->w[f->at - 1] && !rf_value(f, 0)) return 0;
  }
  if (!rf_count(f, &n)) return 0;
  for (i64 k = 0; k < n; k++) if (!rf_words(f, 3)) return 0;
  return 1;
}
static int record_framed(const char *buf, size_t bytes) {
  if (bytes % 8 || bytes < 16) return 0;
  rframe f = {(const i64 *)buf, bytes / 8, 2};
  int ok;
  switch (f.w[0]) {
    case REC_PROC: ok = rf_words(&f, 1) && rf_raw(&f) && rf_raw(&f); break;
    case REC_THREAD: ok = rf_words(&f, 1) && rf_raw(&f) && rf_raw(&f); break;
    case REC_END: ok = rf_end(&f); break;
    case REC_ERROR: ok = rf_words(&f, 2) && rf_raw(&f); break;
    case REC_ABORTED: ok = rf_words(&f, 1); break;
    case REC_DONE: ok = 1; break;
    case REC_LIMIT: ok = rf_raw(&f) && rf_raw(&f); break;
    case REC_REAPED: ok = rf_words(&f, 3); break;
    case REC_KILLED: ok = rf_words(&f, 2); break;
    default: ok = 0;
  }
  return ok && f.at == f.n;
}

typedef struct { char *b; size_t n, cap; } bbuf;
static void bb_grow(bbuf *o, size_t more) {
  if (o->n + more <= o->cap) return;
  size_t cap = o->cap ? o->cap : 1 << 16;
  while (cap < o->n + more) cap *= 2;
  char *b = realloc(o->b, cap);
  if (!b) fatal("mmapconf-exec: out of memory (batch output)");
  o->b = b;
  o->cap = cap;
}
static void bb_word(bbuf *o, i64 w) { bb_grow(o, 8); memcpy(o->b + o->n, &w, 8); o->n += 8; }
static void bb_bytes(bbuf *o, const void *p, size_t n) {
  bb_word(o, (i64)n);
  bb_grow(o, n + 8);
  memcpy(o->b + o->n, p, n);
  memset(o->b + o->n + n, 0, (8 - n % 8) % 8);
  o->n += n + (8 - n % 8) % 8;
}
static void bb_str(bbuf *o, const char *s) { bb_bytes(o, s, strlen(s)); }
static void bb_kv(bbuf *o, const char *k, const char *v) {
  size_t n = strlen(k) + strlen(v) + 2;
  bb_grow(o, n);
  o->n += (size_t)sprintf(o->b + o->n, "%s\t%s\n", k, v);
}

static int b_in = -1, b_out = -1;
static void b_read(void *p, size_t n) {  /* exactly n bytes of IN, waiting while it grows */
  char *c = p;
  i64 idle_since = now_ns();
  while (n) {
    ssize_t r = read(b_in, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fatal("mmapconf-exec: batch input: %s", strerror(errno));
    if (r == 0) {
      if (now_ns() - idle_since > B_IDLE_NS) fatal("mmapconf-exec: batch input ended early");
      usleep(5000);
      continue;
    }
    c += r;
    n -= (size_t)r;
    idle_since = now_ns();
  }
}
static void b_write(const bbuf *o) {
  size_t at = 0;
  while (at < o->n) {
    ssize_t w = write(b_out, o->b + at, o->n - at);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fatal("mmapconf-exec: batch output: %s", strerror(errno));
    at += (size_t)w;
  }
}
/* the payload of one input record, read as words */
static const i64 *bp, *bp_end;
static i64 b_word(void) {
  if (bp >= bp_end) fatal("mmapconf-exec: a short batch record");
  return *bp++;
}
static char *b_text(size_t *len) {  /* a copy, NUL-terminated */
  i64 n = b_word();
  i64 nw = (n + 7) / 8;
  if (n < 0 || nw > bp_end - bp) fatal("mmapconf-exec: a bad string in the batch");
  char *s = malloc((size_t)n + 1);
  memcpy(s, bp, (size_t)n);
  s[n] = 0;
  bp += nw;
  if (len) *len = (size_t)n;
  return s;
}

/* -- the walls the harness sets up once per worker (runner/engine/confine.py), made here in a
 * guest, where no harness runs: cgroup v1 pids and memory hierarchies (the guest's init mounts
 * none), a cgroup of each per lane, its fork server in them, so that every process of a case is
 * born there -- */
#define B_PIDS_MAX (32 + 2)       /* confine.PIDS_MAX: the case's init, its processes, one more */
#define B_CASE_MEMORY (1LL << 30) /* confine.CASE_MEMORY */
static const char *const b_controllers[2] = {"pids", "memory"};
static char b_cgroups[2][128];  /* mmapconf's folder in each hierarchy; "" without */
static int b_walls, b_lane_no;
static int b_put(const char *dir, const char *file, const char *value) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  int ok = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);
  if (fd >= 0) close(fd);
  return ok ? 0 : -1;
}
/* The template mount namespace (confine._make_template): the whole tree read-only, nosuid,
 * nodev; /dev a read-only tmpfs holding only the four devices of the case language, with mount
 * points for the tmpfs and hugetlbfs mounts it hides (a scratch folder there gets a fresh one);
 * kept by fd, with the root its builder had there (a chroot in a guest). */
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442  /* the same number on every architecture */
#endif
static int b_template = -1, b_template_root = -1;
static void b_mounts(int (*each)(const char *, const char *, void *), void *ctx);
static char b_hidden[8][256];
static int b_nhidden;
static int b_hides(const char *point, const char *fstype, void *ctx) {
  bbuf *text = ctx;
  if (strncmp(point, "/dev/", 5) || (strcmp(fstype, "tmpfs") && strcmp(fstype, "hugetlbfs")) ||
      b_nhidden >= 8 || strlen(point) >= sizeof b_hidden[0])
    return 0;
  for (int k = 0; k < b_nhidden; k++)
    if (!strcmp(b_hidden[k], point)) return 0;  /* a mount stacked on another */
  snprintf(b_hidden[b_nhidden++], sizeof b_hidden[0], "%s", point);
  char v[300];
  snprintf(v, sizeof v, "%s=%s", point, fstype);
  bb_kv(text, "wall_hidden", v);
  return 0;
}
static int b_build_template(void) {
  struct { u64 set, clr, propagation, userns_fd; } attr = {1 | 2 | 4 /* RDONLY NOSUID NODEV */, 0, 0, 0};
  static const int minors[4] = {3, 5, 8, 9};
  static const char *const names[4] = {"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"};
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      syscall(SYS_mount_setattr, AT_FDCWD, "/", AT_RECURSIVE, &attr, sizeof attr) != 0 ||
      mount("mmapconf-dev", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755") != 0)
    return -1;
  for (int k = 0; k < 4; k++)
    if (mknod(names[k], S_IFCHR | 0666, makedev(1, minors[k])) != 0) return -1;
  for (int k = 0; k < b_nhidden; k++)
    if (make_dirs(b_hidden[k], 01777) != 0) return -1;
  return mount(NULL, "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL);
}
static void b_make_template(bbuf *text) {
  b_mounts(b_hides, text);
  int ready[2], go[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return;
  pid_t pid = fork();
  if (pid == 0) {  /* builds it, and stays until we hold it */
    close(ready[0]);
    close(go[1]);
    char ok = b_build_template() == 0 ? '1' : '0', c;
    if (write(ready[1], &ok, 1) != 1 || read(go[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  char ok = 0;
  if (pid > 0 && read(ready[0], &ok, 1) == 1 && ok == '1') {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
    b_template = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%d/root", (int)pid);
    b_template_root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  close(ready[0]);
  close(go[1]);
  if (pid > 0) waitpid(pid, NULL, 0);
  if (b_template >= 0 && b_template_root >= 0) {
    bb_kv(text, "wall_template", "1");
  } else {
    bb_kv(text, "wall_problem", "no mount namespace: the template view could not be built");
    if (b_template >= 0) close(b_template);
    b_template = -1;
  }
}
static i64 b_pid_ns;  /* whether each case gets a PID namespace of its own */
static void b_walls_setup(bbuf *text) {
  int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);  /* confine._probe_pid_ns */
  b_pid_ns = own >= 0 && unshare(CLONE_NEWPID) == 0 && setns(own, CLONE_NEWPID) == 0;
  if (own >= 0) close(own);
  if (b_pid_ns) bb_kv(text, "wall_pid_ns", "1");
  b_make_template(text);
  if (!b_walls) return;  /* only in a guest: never over a host's own /sys/fs/cgroup */
  const char *top = "/sys/fs/cgroup";
  char why[PATH_MAX + 64] = "";
  if (mount("mmapconf-cgroup", top, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") != 0)
    snprintf(why, sizeof why, "mount tmpfs %s: %s", top, strerror(errno));
  for (int k = 0; k < 2 && !why[0]; k++) {
    char dir[64];
    snprintf(dir, sizeof dir, "%s/%s", top, b_controllers[k]);
    if (mkdir(dir, 0755) != 0 ||
        mount("cgroup", dir, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, b_controllers[k]) != 0) {
      snprintf(why, sizeof why, "mount cgroup -o %s %s: %s", b_controllers[k], dir, strerror(errno));
      break;
    }
    snprintf(b_cgroups[k], sizeof b_cgroups[k], "%s/mmapconf", dir);
    if (mkdir(b_cgroups[k], 0755) != 0) snprintf(why, sizeof why, "mkdir %s: %s", dir, strerror(errno));
  }
  if (why[0]) {
    b_cgroups[0][0] = b_cgroups[1][0] = 0;
    bb_kv(text, "wall_problem", why);
  } else {
    bb_kv(text, "wall_cgroup", b_cgroups[0]);
    bb_kv(text, "wall_cgroup", b_cgroups[1]);
  }
}
/* how many processes the OOM killer took in this lane's memory cgroup (confine.memory_failures) */
static i64 b_oom_kills(void) {
  char path[320], line[128];
  if (!b_cgroups[1][0]) return 0;
  snprintf(path, sizeof path, "%s/lane-%d/memory.oom_control", b_cgroups[1], b_lane_no);
  FILE *f = fopen(path, "r");
  i64 n = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "oom_kill ", 9)) n = strtoll(line + 9, NULL, 10);
  fclose(f);
  return n;
}
/* A lane's server in cgroups of its own (a lane's cases are one at a time, as a worker's) */
static void b_host(pid_t server) {
  char pid[32], dir[320], limit[32];
  snprintf(pid, sizeof pid, "%d", (int)server);
  for (int k = 0; k < 2; k++) {
    if (!b_cgroups[k][0]) continue;
    snprintf(dir, sizeof dir, "%s/lane-%d", b_cgroups[k], b_lane_no);
    mkdir(dir, 0755);
    int ok;
    if (k == 0) {  /* the server is one task of it */
      snprintf(limit, sizeof limit, "%d", B_PIDS_MAX + 1);
      ok = b_put(dir, "pids.max", limit) == 0;
    } else {
      snprintf(limit, sizeof limit, "%lld", B_CASE_MEMORY);
      ok = b_put(dir, "memory.limit_in_bytes", limit) == 0;
      b_put(dir, "memory.memsw.limit_in_bytes", limit);  /* only with swap accounting */
    }
    if (!ok || b_put(dir, "cgroup.procs", pid) != 0)
      fatal("mmapconf-exec: the case cgroup %s: %s", dir, strerror(errno));
  }
}

/* -- the facts the host plans with: uname, page size, what the kernel has -- */
/* each mount of /proc/self/mountinfo: EACH(point, fstype, ctx) until it returns nonzero */
static void b_mounts(int (*each)(const char *, const char *, void *), void *ctx) {
  FILE *f = fopen("/proc/self/mountinfo", "r");
  char line[4096], point[PATH_MAX], fstype[256];
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    char *sep = strstr(line, " - ");
    if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1) continue;
    if (sscanf(sep + 3, "%255s", fstype) == 1 && each(point, fstype, ctx)) break;
  }
  fclose(f);
}
struct b_holder { const char *path; char best[PATH_MAX], fstype[256]; };
static int b_holds(const char *point, const char *fstype, void *ctx) {  /* the deepest wins */
  struct b_holder *h = ctx;
  size_t len = strlen(point);
  int inside = !strcmp(point, "/") ||
               (!strncmp(h->path, point, len) && (h->path[len] == '/' || !h->path[len]));
  if (inside && len >= strlen(h->best)) {
    snprintf(h->best, sizeof h->best, "%s", point);
    snprintf(h->fstype, sizeof h->fstype, "%s", fstype);
  }
  return 0;
}
static int b_hugetlbfs(const char *point, const char *fstype, void *ctx) {
  if (strcmp(fstype, "hugetlbfs") || access(point, W_OK) != 0) return 0;
  snprintf(ctx, PATH_MAX, "%s", point);
  return 1;
}
static void b_facts(void) {
  bbuf o = {0}, text = {0};
  struct utsname u;
  char v[PATH_MAX + 64];
  uname(&u);
  bb_kv(&text, "release", u.release);
  bb_kv(&text, "version", u.version);
  bb_kv(&text, "machine", u.machine);
  snprintf(v, sizeof v, "%ld", sysconf(_SC_PAGESIZE));
  bb_kv(&text, "page_size", v);
  snprintf(v, sizeof v, "%d", (int)geteuid());
  bb_kv(&text, "uid", v);
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */);
  snprintf(v, sizeof v, "%ld", abi < 0 ? 0 : abi);
  bb_kv(&text, "landlock_abi", v);
  bb_kv(&text, "loop_control", access("/dev/loop-control", F_OK) == 0 ? "1" : "0");
  v[0] = 0;
  b_mounts(b_hugetlbfs, v);
  bb_kv(&text, "hugetlbfs", v);
  size_t flen = 0;
  char *fsl = read_proc("/proc/filesystems", &flen);
  for (char *p = fsl ? strtok(fsl, "\n") : NULL; p; p = strtok(NULL, "\n")) {
    char *name = strrchr(p, '\t');
    bb_kv(&text, "filesystem", name ? name + 1 : p);
  }
  for (i64 k = 0, n = b_word(); k < n; k++) {  /* syscalls: ENOSYS means the kernel lacks it */
    char *name = b_text(NULL);
    long nr = (long)b_word();
    errno = 0;
    long rc = syscall(nr, -1L, 0L, 0L, 0L, 0L, 0L);
    bb_kv(&text, "syscall", "");
    text.n--;  /* "syscall\tNAME=0|1\n" */
    snprintf(v, sizeof v, "%s=%d\n", name, !(rc == -1 && errno == ENOSYS));
    bb_grow(&text, strlen(v));
    memcpy(text.b + text.n, v, strlen(v));
    text.n += strlen(v);
    free(name);
  }
  for (i64 k = 0, n = b_word(); k < n; k++) {  /* sysctls, by their /proc/sys path */
    char *key = b_text(NULL), path[PATH_MAX];
    snprintf(path, sizeof path, "/proc/sys/%s", key);
    for (char *c = path + 10; *c; c++) if (*c == '.') *c = '/';
    size_t len = 0;
    char *val = read_proc(path, &len);
    if (val) {
      while (len && (val[len - 1] == '\n' || val[len - 1] == ' ')) val[--len] = 0;
      for (char *c = val; *c; c++) if (*c == '\n' || *c == '\t') *c = ' ';
      snprintf(v, sizeof v, "%s=%s", key, val);
      bb_kv(&text, "sysctl", v);
    }
    free(key);
  }
  for (i64 k = 0, n = b_word(); k < n; k++) {  /* the filesystem each path is on */
    struct b_holder h = {b_text(NULL), "", ""};
    b_mounts(b_holds, &h);
    snprintf(v, sizeof v, "%s=%s", h.path, h.fstype);
    bb_kv(&text, "fstype", v);
    free((char *)h.path);
  }
  b_walls = bp + 1 < bp_end && bp[1];  /* after the lanes: whether to make the walls */
  b_walls_setup(&text);
  bb_word(&o, B_FACTS);
  bb_word(&o, 0);
  bb_bytes(&o, text.b, text.n);
  ((i64 *)o.b)[1] = (i64)(o.n / 8 - 2);
  b_write(&o);
  free(o.b);
  free(text.b);
}

/* -- the fork server, exec'd once; this process is its harness -- */
static pid_t b_server = -1;
static int b_control = -1, b_prog_fd = -1;
static const char *b_self;
/* a request to the fork server, with NFDS descriptors (SCM_RIGHTS) */
static ssize_t b_request(const void *buf, size_t n, const int *fds, int nfds) {
  char cbuf[CMSG_SPACE(4 * sizeof(int))];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {(void *)buf, n};
  struct msghdr mh = {0};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds > 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
  }
  return sendmsg(b_control, &mh, MSG_NOSIGNAL);
}
static void b_start_server(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    fatal("mmapconf-exec: socketpair: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) fatal("mmapconf-exec: fork: %s", strerror(errno));
  if (pid == 0) {
    char a[16], c[16];
    fcntl(sv[1], F_SETFD, 0);
    fcntl(b_prog_fd, F_SETFD, 0);
    snprintf(a, sizeof a, "%d", sv[1]);
    snprintf(c, sizeof c, "%d", b_prog_fd);
    execl(b_self, b_self, a, "-1", c, "mmapconf guest batch", (char *)NULL);  /* no arena: each case brings its own */
    _exit(127);
  }
  close(sv[1]);
  b_control = sv[0];
  b_server = pid;
  b_host(pid);  /* before its first case: every init is born in the case cgroups */
  /* server.py's ForkServer: whether a PID namespace, and the template view */
  i64 walls[2] = {CTL_WALLS, b_pid_ns};
  int fds[2] = {b_template, b_template_root};
  if (b_request(walls, sizeof walls, fds, b_template >= 0 ? 2 : 0) < 0)
    fatal("mmapconf-exec: the fork server: %s", strerror(errno));
}
static void b_stop_server(void) {
  if (b_server < 0) return;
  close(b_control);
  kill(b_server, SIGKILL);
  waitpid(b_server, NULL, 0);
  b_server = -1;
}

/* -- what the harness makes around a case -- */
static int b_flags(const char *path, int clear_only) {  /* clear (or read) FS_IMMUTABLE/APPEND */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  int flags = 0, rc = ioctl(fd, 0x80086601 /* FS_IOC_GETFLAGS */, &flags);
  if (rc == 0 && clear_only && (flags & 0x30)) {
    flags &= ~0x30;
    rc = ioctl(fd, 0x40086602 /* FS_IOC_SETFLAGS */, &flags);
  }
  close(fd);
  return rc;
}
static int b_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  int rc = type == FTW_DP ? rmdir(path) : unlink(path);
  if (rc != 0 && errno == EPERM) {  /* immutable or append-only: a case running as root set it */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = 0;
    b_flags(path, 1);
    b_flags(parent, 1);
    rc = type == FTW_DP ? rmdir(path) : unlink(path);
  }
  return rc != 0 && errno != ENOENT ? errno : 0;
}
static void b_remove_tree(const char *path, char *left, size_t n) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  int rc = nftw(path, b_remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
  if (rc != 0 || lstat(path, &st) == 0)
    snprintf(left, n, "scratch folder left behind: %s: %s", path, strerror(rc > 0 ? rc : errno));
}
static int b_loop_attach(const char *image, char *dev, size_t n) {
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return -1;
  int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
  close(ctl);
  if (nr < 0) return -1;
  snprintf(dev, n, "/dev/loop%d", nr);
  int loop = -1;
  for (int tries = 0; loop < 0 && tries < 200; tries++) {  /* devtmpfs makes the node shortly */
    loop = open(dev, O_RDWR | O_CLOEXEC);
    if (loop < 0) usleep(5000);
  }
  int img = open(image, O_RDWR | O_CLOEXEC);
  if (loop < 0 || img < 0 || ioctl(loop, LOOP_SET_FD, img) != 0) {
    int e = errno;
    if (loop >= 0) close(loop);
    if (img >= 0) close(img);
    errno = e;
    return -1;
  }
  struct loop_info64 info;
  memset(&info, 0, sizeof info);
  info.lo_flags = LO_FLAGS_AUTOCLEAR;  /* freed when the last user goes: keep it open to mount */
  ioctl(loop, LOOP_SET_STATUS64, &info);
  close(img);
  return loop;
}

typedef struct {
  char *name;
  i64 flags;
} b_file;
typedef struct {  /* a /proc/sys file written for the case, and what it held before */
  char *path, *value;
  i64 check;  /* the value read back must be the one written */
  char old[4096];
  int set;
} b_sysctl;
typedef struct {
  char *scratch, *fstype, *image, *data, *point;
  i64 mflags, nfiles, image_size, nmkfs;
  char *mkfs[16];  /* the image's mkfs command, the image's path last */
  b_file files[64];
  int mounted, made_image;
  char folder[PATH_MAX];
  /* machine-wide (guestsetup): sysctls (core_pattern among them) and a swap area */
  b_sysctl sysctls[16];
  i64 nsysctls, swap_size, exclusive;
  char *swap_image;
  char swap_dev[64];
  int swap_made, swap_on;
  /* power cuts (pcnative): DEVICE, a block device mounted at point (a judge boot's disk) with
   * the case's folder WITHIN it, there already; MARK_DEV, the cut boot's marker (marker.py) */
  char *device, *within, *mark_dev, *mark_nonce;
  i64 mark_off;
  int marked;
  char tail[16];  /* the end of the case's output so far: "stored" may come split in two */
} b_setup;
/* Every btrfs device not mounted forgotten (`btrfs device scan --forget`): the judge boot's
 * disks are copies of one filesystem, with one fsid, and the kernel would mount the device it
 * registered first for the next one's. */
static void b_btrfs_forget(void) {
  struct btrfs_ioctl_vol_args all;
  memset(&all, 0, sizeof all);  /* no name: every unmounted device */
  int ctl = open("/dev/btrfs-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return;  /* no btrfs device registered yet: the mount says what is wrong */
  ioctl(ctl, BTRFS_IOC_FORGET_DEV, &all);
  close(ctl);
}
/* The cut boot's marker (runner/vm/durability/marker.py reads it): one block of "MMAPCONF-MARK",
 * the boot's nonce and this clock, each on a line, then zeros, written O_DIRECT without O_SYNC
 * past the filesystem, so that blklogwrites logs it after every write completed before it and
 * no flush is sent (no disk model moves). 0, or the errno. */
#define B_MARK_BLOCK 4096
static int b_write_marker(const char *dev, i64 off, const char *nonce) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  char *blk = mmap(NULL, B_MARK_BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (blk == MAP_FAILED) return errno;
  snprintf(blk, B_MARK_BLOCK, "MMAPCONF-MARK\n%s\n%lld\n", nonce, (long long)ts_ns(t));
  int fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC), e = 0;
  ssize_t w = fd >= 0 ? pwrite(fd, blk, B_MARK_BLOCK, off) : -1;
  if (w != B_MARK_BLOCK) e = w < 0 ? errno : EIO;
  if (fd >= 0) close(fd);
  munmap(blk, B_MARK_BLOCK);
  return e;
}
#define B_STORED "MMAPCONF-STORED" /* op_power_cut's */
/* The cut boot: the case's output passed on to our stderr (the host watches it), its "stored"
 * only once the marker is on the disk. -1 when the marker write failed (ERR says why). */
static int b_pass_output(b_setup *s, const char *chunk, size_t len, char *err, size_t n) {
  if (!s->mark_dev[0]) return 0;
  if (!s->marked) {
    size_t have = strlen(s->tail), keep = sizeof B_STORED - 2;
    char window[sizeof s->tail + (1 << 14)];
    memcpy(window, s->tail, have);
    memcpy(window + have, chunk, len);
    if (memmem(window, have + len, B_STORED, sizeof B_STORED - 1)) {
      s->marked = 1;
      int e = b_write_marker(s->mark_dev, s->mark_off, s->mark_nonce);
      if (e) {
        snprintf(err, n, "the marker write failed: %s: %s", s->mark_dev, strerror(e));
        dprintf(2, "\nmmapconf: %s\n", err);
        return -1;
      }
    } else {
      size_t from = have + len > keep ? have + len - keep : 0;
      memmove(s->tail, window + from, have + len - from);
      s->tail[have + len - from] = 0;
    }
  }
  for (size_t done = 0; done < len;) {
    ssize_t w = write(2, chunk + done, len - done);
    if (w <= 0) break;
    done += (size_t)w;
  }
  return 0;
}
/* a sparse image of SIZE bytes at s->image, formatted by s->mkfs (the host's tool: the guest
 * runs in the host's root), on the guest's own tmpfs: a loop device over 9p pays a round trip
 * to the host for every block */
static void b_make_image(b_setup *s, char *err, size_t n) {
  int fd = open(s->image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, s->image_size) != 0) {
    snprintf(err, n, "set-up: cannot make the image %s: %s", s->image, strerror(errno));
    if (fd >= 0) close(fd);
    return;
  }
  close(fd);
  s->made_image = 1;
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    execv(s->mkfs[0], s->mkfs);
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
    snprintf(err, n, "set-up: %s %s: wait status %d", s->mkfs[0], s->image, status);
}
static void b_make(b_setup *s, char *err, size_t n) {
  s->folder[0] = 0;
  if (s->scratch[0]) {
    if (mkdir(s->scratch, 0700) != 0) {
      snprintf(err, n, "set-up: cannot make the scratch folder %s: %s", s->scratch, strerror(errno));
      return;
    }
    snprintf(s->folder, sizeof s->folder, "%s", s->scratch);
  }
  if (s->fstype[0]) {
    const char *source = "mmapconf";
    char dev[64];
    int loop = -1;
    if (mkdir(s->point, 0700) != 0) {
      snprintf(err, n, "set-up: cannot make the mount point %s: %s", s->point, strerror(errno));
      return;
    }
    if (s->device[0]) {
      source = s->device;
      if (!strcmp(s->fstype, "btrfs")) b_btrfs_forget();
    } else if (s->image[0]) {
      b_make_image(s, err, n);
      if (err[0]) return;
      if ((loop = b_loop_attach(s->image, dev, sizeof dev)) < 0) {
        snprintf(err, n, "set-up: cannot attach %s to a loop device: %s", s->image, strerror(errno));
        return;
      }
      source = dev;
    }
    int rc = mount(source, s->point, s->fstype, (unsigned long)s->mflags, s->data), e = errno;
    if (loop >= 0) close(loop);  /* the mount holds it now */
    if (rc != 0) {
      snprintf(err, n, "set-up: mount -t %s -o %s %s: %s", s->fstype, s->data, s->point, strerror(e));
      return;
    }
    s->mounted = 1;
    if (s->within[0]) {  /* a judged disk: its folder as the cut boot left it, mode and all */
      snprintf(s->folder, sizeof s->folder, "%s/%s", s->point, s->within);
      struct stat st;
      int found = stat(s->folder, &st) == 0;
      if (!found || !S_ISDIR(st.st_mode))
        snprintf(err, n, "set-up: the case's folder %s is not on the disk: %s", s->within,
                 found ? "not a folder" : strerror(errno));
      return;
    }
    chmod(s->point, 01777);  /* as a scratch folder is: the case may drop root */
    snprintf(s->folder, sizeof s->folder, "%s", s->point);
  }
}
static void b_make_file(b_setup *s, const char *name, const char *data, size_t len, i64 mode,
                        i64 size, i64 flags, char *err, size_t n) {
  char path[PATH_MAX];
  if (err[0]) return;
  if (!s->folder[0]) {
    snprintf(err, n, "set-up: provision.files needs a folder (memfd has none)");
    return;
  }
  snprintf(path, sizeof path, "%s/%s", s->folder, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
  if (fd < 0 || write(fd, data, len) != (ssize_t)len || (size >= 0 && ftruncate(fd, size) != 0)) {
    snprintf(err, n, "set-up: cannot make %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return;
  }
  close(fd);
  chmod(path, (mode_t)mode);  /* the umask does not decide what the case asked for */
  if (flags) {
    int have = 0;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int ok = fd >= 0 && ioctl(fd, 0x80086601, &have) == 0;
    have |= (int)flags;
    ok = ok && ioctl(fd, 0x40086602, &have) == 0;
    if (!ok) snprintf(err, n, "set-up: cannot set inode flags %#llx on %s: %s", (long long)flags, path, strerror(errno));
    if (fd >= 0) close(fd);
  }
}
/* -- machine-wide set-up (guestsetup): made after the case's folder, undone before it -- */
/* Lanes share the machine: a case with machine-wide set-up runs alone (b_lanes's lock). */
static pthread_rwlock_t *b_lock;
static int b_read_text(const char *path, char *out, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, out, cap - 1);
  close(fd);
  if (n < 0) return -1;
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) n--;
  out[n] = 0;
  return 0;
}
static int b_write_text(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t len = (ssize_t)strlen(value), w = write(fd, value, (size_t)len);
  int e = errno;
  close(fd);
  errno = e;
  return w == len ? 0 : -1;
}
static void b_set_sysctl(b_sysctl *c, char *err, size_t n) {
  char now[4096];
  if (b_read_text(c->path, c->old, sizeof c->old) != 0 || b_write_text(c->path, c->value) != 0) {
    snprintf(err, n, "set-up: %s=%s: %s", c->path, c->value, strerror(errno));
    return;
  }
  c->set = 1;
  if (c->check && (b_read_text(c->path, now, sizeof now) != 0 || strcmp(now, c->value)))
    snprintf(err, n, "set-up: %s=%s: the kernel set %s", c->path, c->value, now);
}
/* whether DEV is an active swap area (/proc/swaps: its first column) */
static int b_swap_active(const char *dev) {
  size_t len = 0, dl = strlen(dev);
  char *text = read_proc("/proc/swaps", &len);
  int on = 0;
  for (char *line = text; line && *line && !on;) {
    on = !strncmp(line, dev, dl) && (line[dl] == ' ' || line[dl] == '\t');
    char *nl = strchr(line, '\n');
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  return on;
}
/* a swap area of S->swap_size bytes: a file on the guest's tmpfs (swapon refuses a tmpfs file
 * itself: no bmap), with a version-1 swap header (mkswap's), on a loop device */
static void b_make_swap(b_setup *s, char *err, size_t n) {
  int fd = open(s->swap_image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  char *head = calloc(1, (size_t)page_size);
  uint32_t *info = (uint32_t *)(head + 1024);  /* after the boot block: union swap_header */
  info[0] = 1;                                          /* version */
  info[1] = (uint32_t)(s->swap_size / page_size - 1);   /* last_page */
  memcpy(head + page_size - 10, "SWAPSPACE2", 10);
  int ok = fd >= 0 && ftruncate(fd, s->swap_size) == 0 && pwrite(fd, head, page_size, 0) == page_size;
  free(head);
  if (fd >= 0) {
    s->swap_made = 1;
    close(fd);
  }
  if (!ok) {
    snprintf(err, n, "set-up: cannot make the swap file %s: %s", s->swap_image, strerror(errno));
    return;
  }
  int loop = b_loop_attach(s->swap_image, s->swap_dev, sizeof s->swap_dev);
  if (loop < 0) {
    snprintf(err, n, "set-up: cannot attach %s to a loop device: %s", s->swap_image, strerror(errno));
    return;
  }
  int rc = swapon(s->swap_dev, 0), e = errno;
  close(loop);  /* the swap area holds it now; autoclear frees it after swapoff */
  if (rc != 0) {
    snprintf(err, n, "set-up: swapon %s: %s", s->swap_dev, strerror(e));
    return;
  }
  s->swap_on = 1;
  if (!b_swap_active(s->swap_dev))
    snprintf(err, n, "set-up: swapon %s: not in /proc/swaps after it", s->swap_dev);
}
static void b_make_machine(b_setup *s, char *err, size_t n) {
  for (i64 k = 0; k < s->nsysctls && !err[0]; k++) b_set_sysctl(&s->sysctls[k], err, n);
  if (s->swap_image[0] && !err[0]) b_make_swap(s, err, n);
}
static void b_undo_machine(b_setup *s, char *left, size_t n) {
  if (s->swap_on && (swapoff(s->swap_dev) != 0 || b_swap_active(s->swap_dev)))
    snprintf(left, n, "swap area left on: %s: %s", s->swap_dev, strerror(errno));
  if (s->swap_made) unlink(s->swap_image);
  for (i64 k = s->nsysctls - 1; k >= 0; k--) {
    b_sysctl *c = &s->sysctls[k];
    char now[4096];
    if (!c->set) continue;
    if (b_write_text(c->path, c->old) != 0 ||
        (c->check && (b_read_text(c->path, now, sizeof now) != 0 || strcmp(now, c->old))))
      snprintf(left, n, "%s not put back to %s: %s", c->path, c->old, strerror(errno));
  }
}
static void b_undo(b_setup *s, char *left, size_t n) {
  for (i64 k = 0; k < s->nfiles; k++) {
    char path[PATH_MAX];
    if (!s->files[k].flags || !s->folder[0]) continue;
    snprintf(path, sizeof path, "%s/%s", s->folder, s->files[k].name);
    b_flags(path, 1);
  }
  if (s->mounted && umount2(s->point, 0) != 0 && umount2(s->point, MNT_DETACH) != 0)
    snprintf(left, n, "mount left behind: %s: %s", s->point, strerror(errno));
  if (s->fstype[0]) rmdir(s->point);
  if (s->made_image) unlink(s->image);  /* its loop device went with the mount (autoclear) */
  if (s->scratch[0] && !left[0]) b_remove_tree(s->scratch, left, n);
}

/* -- one case: the harness's part of server.py's ForkServer.run -- */
static void b_case(void) {
  bbuf out = {0}, recs = {0};
  b_setup s;
  memset(&s, 0, sizeof s);
  char err[2 * PATH_MAX] = "", left[2 * PATH_MAX] = "";
  i64 index = b_word(), timeout = b_word();
  s.scratch = b_text(NULL);
  s.fstype = b_text(NULL);
  s.image = b_text(NULL);
  s.image_size = b_word();
  s.nmkfs = b_word();
  if (s.nmkfs < 0 || s.nmkfs > 15) fatal("mmapconf-exec: a bad mkfs command in the batch");
  for (i64 k = 0; k < s.nmkfs; k++) s.mkfs[k] = b_text(NULL);
  s.mflags = b_word();
  s.data = b_text(NULL);
  s.point = b_text(NULL);
  s.device = b_text(NULL);
  s.within = b_text(NULL);
  s.mark_dev = b_text(NULL);
  s.mark_off = b_word();
  s.mark_nonce = b_text(NULL);
  if (s.mark_dev[0]) sync();  /* what the guest's mount wrote is on the disk before the case */
  i64 t0 = now_ns();
  if (b_lock) pthread_rwlock_rdlock(b_lock);
  b_make(&s, err, sizeof err);
  s.nfiles = b_word();
  if (s.nfiles < 0 || s.nfiles > 64) fatal("mmapconf-exec: too many provision files");
  for (i64 k = 0; k < s.nfiles; k++) {
    size_t len = 0;
    s.files[k].name = b_text(NULL);
    char *data = b_text(&len);
    i64 mode = b_word(), size = b_word();
    s.files[k].flags = b_word();
    b_make_file(&s, s.files[k].name, data, len, mode, size, s.files[k].flags, err, sizeof err);
    free(data);
  }
  s.nsysctls = b_word();
  if (s.nsysctls < 0 || s.nsysctls > 16) fatal("mmapconf-exec: too many provision sysctls");
  for (i64 k = 0; k < s.nsysctls; k++) {
    s.sysctls[k].path = b_text(NULL);
    s.sysctls[k].value = b_text(NULL);
    s.sysctls[k].check = b_word();
    if (strncmp(s.sysctls[k].path, "/proc/sys/", 10) || strstr(s.sysctls[k].path, ".."))
      fatal("mmapconf-exec: a sysctl outside /proc/sys in the batch");
  }
  s.swap_image = b_text(NULL);
  s.swap_size = b_word();
  if (s.swap_image[0] && (s.swap_size < 16 * page_size || s.swap_size > (1LL << 32)))
    fatal("mmapconf-exec: a bad swap size in the batch");
  s.exclusive = b_word();
  if (b_lock && s.exclusive) {  /* alone on the machine: wait for the other lanes' cases */
    pthread_rwlock_unlock(b_lock);
    pthread_rwlock_wrlock(b_lock);
  }
  if (!err[0]) b_make_machine(&s, err, sizeof err);
  i64 nprog = b_word();
  if (nprog <= 0 || nprog > bp_end - bp) fatal("mmapconf-exec: a bad program in the batch");
  const i64 *prog = bp;
  bp += nprog;
  i64 nconf = bp_end - bp;  /* the rest: the confinement spec */
  int timed_out = 0, records = 0, killed = 0, nend = 0;
  i64 endings[2 * NATIVE_PROCS * 4], init_status = 0, kept = 0, dropped = 0;
  bbuf output = {0};
  char refused[128] = "";
  /* a fresh shared page for each case, as the harness gives (nothing of one reaches the next) */
  int arena_fd = (int)syscall(SYS_memfd_create, "mmapconf-arena", MFD_CLOEXEC);
  if (arena_fd < 0 || ftruncate(arena_fd, ARENA_SIZE) != 0)
    fatal("mmapconf-exec: memfd: %s", strerror(errno));
  arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, arena_fd, 0);
  if (arena == MAP_FAILED) fatal("mmapconf-exec: arena: %s", strerror(errno));
  i64 oom_before = b_oom_kills();
  if (!err[0]) {
    const char *scratch = s.folder;
    if (pwrite(b_prog_fd, prog, (size_t)nprog * 8, 0) != nprog * 8)
      fatal("mmapconf-exec: program memfd: %s", strerror(errno));
    /* RUN: timeout, program words, scratch, then the view and the confinement spec the host
     * wrote (the rest of the record); with it the report socket, output pipe and arena */
    size_t slen = strlen(scratch), sw = (slen + 7) / 8;
    size_t nreq = 4 + sw + (size_t)nconf;
    i64 *req = calloc(nreq, 8);
    req[0] = CTL_RUN;
    req[1] = timeout;
    req[2] = nprog;
    req[3] = (i64)slen;
    memcpy(req + 4, scratch, slen);
    memcpy(req + 4 + sw, bp, (size_t)nconf * 8);
    int sv[2], po[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(po, O_CLOEXEC) != 0)
      fatal("mmapconf-exec: socketpair: %s", strerror(errno));
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    int fds[3] = {sv[1], po[1], arena_fd};
    if (b_request(req, nreq * 8, fds, 3) < 0) snprintf(err, sizeof err, "the native fork server exited");
    close(sv[1]);
    close(po[1]);
    free(req);
    i64 deadline = now_ns() + timeout, kill_at = 0;
    pid_t init = 0;
    int finished = err[0] != 0, reports_open = 1, output_open = 1;
    char *buf = malloc(REC_MAX + 8);
#define B_KILL() do { if (!kill_at) kill_at = now_ns(); if (init > 0) { killed = 1; kill(-init, SIGKILL); kill(init, SIGKILL); } } while (0)
    while (!finished) {
      i64 now = now_ns();
      if (!kill_at && now >= deadline) {
        timed_out = 1;
        B_KILL();
      }
      if (kill_at && now > kill_at + B_GRACE_NS) {
        snprintf(err, sizeof err, "the native fork server did not reap a killed case");
        break;
      }
      i64 wait = (kill_at ? kill_at + B_GRACE_NS : deadline) - now;
      struct pollfd pf[3] = {{b_control, POLLIN, 0}, {reports_open ? sv[0] : -1, POLLIN, 0},
                             {output_open ? po[0] : -1, POLLIN, 0}};
      if (poll(pf, 3, (int)(wait / 1000000 + 1)) < 0 && errno != EINTR) break;
      while (reports_open) {  /* every record queued (server.py's _drain) */
        struct iovec riov = {buf, REC_MAX};
        struct msghdr rmh = {0};
        rmh.msg_iov = &riov;
        rmh.msg_iovlen = 1;
        ssize_t r = recvmsg(sv[0], &rmh, MSG_DONTWAIT);
        if (r < 0) break;
        if (r == 0) {  /* every case process closed it: polling it again would spin */
          reports_open = 0;
          break;
        }
        kept += r;
        if (refused[0]) continue;
        if (rmh.msg_flags & MSG_TRUNC)
          snprintf(refused, sizeof refused, "a report of more than %d bytes", REC_MAX);
        else if (kept > (64LL << 20))
          snprintf(refused, sizeof refused, "more than 64 MiB of reports");
        if (refused[0]) {
          B_KILL();
          continue;
        }
        bb_bytes(&recs, buf, (size_t)r);
        records++;
        i64 kind = r >= 8 ? ((i64 *)buf)[0] : 0;
        if (!record_framed(buf, (size_t)r)) {  /* the host's decoder names what is wrong */
          snprintf(refused, sizeof refused, "a malformed report (%zd bytes)", r);
          B_KILL();
        } else if (kind == REC_LIMIT || records > B_MAX_RECORDS) {
          B_KILL();  /* the harness ends it */
        }
      }
      while (output_open) {  /* the first 64 KiB of what the case printed, the rest counted */
        char chunk[1 << 14];
        ssize_t r = read(po[0], chunk, sizeof chunk);
        if (r < 0) break;
        if (r == 0) {
          output_open = 0;
          break;
        }
        size_t room = output.n < (64 << 10) ? (64 << 10) - output.n : 0;
        size_t take = (size_t)r < room ? (size_t)r : room;
        if (b_pass_output(&s, chunk, take, err, sizeof err) != 0) B_KILL();  /* what is kept */
        bb_grow(&output, take);
        memcpy(output.b + output.n, chunk, take);
        output.n += take;
        dropped += r - (i64)take;
      }
      if (pf[0].revents) {
        i64 msg[3];
        ssize_t r = recv(b_control, msg, sizeof msg, 0);
        if (r != sizeof msg) {
          snprintf(err, sizeof err, "the native fork server exited");
          break;
        }
        if (msg[0] == CTL_STARTED) {  /* a case's first reports can come before its pid */
          init = (pid_t)msg[1];
          if (kill_at) B_KILL();
        } else if (msg[0] == CTL_ENDING && nend < (int)(sizeof endings / sizeof *endings) / 2) {
          endings[2 * nend] = msg[1];
          endings[2 * nend + 1] = msg[2];
          nend++;
        } else if (msg[0] == CTL_FINISHED) {
          finished = 1;
          if (msg[1] < 0)
            snprintf(err, sizeof err, "the native fork server could not fork: %s", strerror((int)msg[2]));
          else if (msg[2] && !killed)
            init_status = msg[2];
        }
      }
    }
    for (;;) {  /* what is left once every process has ended */
      ssize_t r = recv(sv[0], buf, REC_MAX, MSG_DONTWAIT);
      if (r <= 0 || refused[0]) break;
      bb_bytes(&recs, buf, (size_t)r);
      records++;
    }
#undef B_KILL
    free(buf);
    close(sv[0]);
    close(po[0]);
    if (err[0] && strncmp(err, "the native fork server could not fork", 37)) {
      /* a broken server: the next case gets a new one */
      if (init > 0) kill(-init, SIGKILL);
      b_stop_server();
      b_start_server();
    }
  }
  char machine_left[PATH_MAX] = "";
  b_undo_machine(&s, machine_left, sizeof machine_left);
  if (b_lock) pthread_rwlock_unlock(b_lock);
  b_undo(&s, left, sizeof left);
  if (machine_left[0]) {
    size_t have = strlen(left);
    snprintf(left + have, sizeof left - have, "%s%s", have ? "; " : "", machine_left);
  }
  i64 took = now_ns() - t0;
  bb_word(&out, B_RESULT);
  bb_word(&out, 0);
  bb_word(&out, index);
  bb_word(&out, timed_out);
  bb_word(&out, took);
  bb_str(&out, err);
  bb_str(&out, left);
  bb_word(&out, nend);
  for (int k = 0; k < 2 * nend; k++) bb_word(&out, endings[k]);
  /* the page up to its last claimed native slot: the host reads it as zeros beyond */
  i64 used = native_head()->next_slot;
  used = used < 0 ? 0 : used > NATIVE_PROCS ? NATIVE_PROCS : used;
  bb_bytes(&out, arena, NATIVE_OFF + 64 + (size_t)used * sizeof(struct nslot));
  munmap(arena, ARENA_SIZE);
  close(arena_fd);
  bb_word(&out, init_status);
  bb_word(&out, b_oom_kills() > oom_before);  /* the case reached its memory limit */
  bb_bytes(&out, output.b ? output.b : "", output.n);
  bb_word(&out, dropped);
  bb_str(&out, refused);
  bb_word(&out, records);
  bb_grow(&out, recs.n);
  memcpy(out.b + out.n, recs.b, recs.n);
  out.n += recs.n;
  ((i64 *)out.b)[1] = (i64)(out.n / 8 - 2);
  b_write(&out);
  free(out.b);
  free(recs.b);
  free(output.b);
  for (i64 k = 0; k < s.nfiles; k++) free(s.files[k].name);
  for (i64 k = 0; k < s.nsysctls; k++) {
    free(s.sysctls[k].path);
    free(s.sysctls[k].value);
  }
  free(s.swap_image);
  free(s.scratch);
  free(s.fstype);
  free(s.image);
  for (i64 k = 0; k < s.nmkfs; k++) free(s.mkfs[k]);
  free(s.data);
  free(s.point);
  free(s.device);
  free(s.within);
  free(s.mark_dev);
  free(s.mark_nonce);
}

/* the next record of IN into *payload; its kind */
static i64 b_next(i64 **payload) {
  i64 head[2];
  b_read(head, sizeof head);
  if (head[1] < 0 || head[1] > (256 << 20) / 8) fatal("mmapconf-exec: a bad batch record");
  *payload = realloc(*payload, (size_t)(head[1] + 1) * 8);
  b_read(*payload, (size_t)head[1] * 8);
  bp = *payload;
  bp_end = *payload + head[1];
  return head[0];
}
static void b_lane_setup(void) {  /* one fork server, with its own program memfd */
  b_prog_fd = (int)syscall(SYS_memfd_create, "mmapconf-program", MFD_CLOEXEC);
  if (b_prog_fd < 0) fatal("mmapconf-exec: memfd: %s", strerror(errno));
  b_start_server();
}
/* One lane: the cases it claims from the shared count CLAIM (every case when it is NULL), in the
 * order of IN; a lane claims its next case only once it is idle, so a long case holds one lane. */
static void b_lane(i64 *claim) {
  i64 *payload = NULL, seen = -1;
  i64 want = claim ? __atomic_fetch_add(claim, 1, __ATOMIC_SEQ_CST) : 0;
  b_lane_setup();
  for (;;) {
    i64 kind = b_next(&payload);
    if (kind == B_END) break;
    if (kind != B_CASE) fatal("mmapconf-exec: a batch record of kind %lld", (long long)kind);
    if (++seen != want && claim) continue;
    b_case();
    want = claim ? __atomic_fetch_add(claim, 1, __ATOMIC_SEQ_CST) : seen + 1;
  }
  b_stop_server();
  free(payload);
}
/* LANES lanes in processes of their own, each sending its results through a pipe; this process
 * writes each whole result to OUT as it comes */
static void b_lanes(const char *in, i64 lanes, off_t start) {
  i64 *claim = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (claim == MAP_FAILED) fatal("mmapconf-exec: mmap: %s", strerror(errno));
  /* beside the claim count: shared by each case, held alone by one with machine-wide set-up
   * (a writer waiting keeps new readers out, so it is not starved) */
  b_lock = (pthread_rwlock_t *)(claim + 8);
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(b_lock, &attr);
  struct pollfd pf[16];
  bbuf got[16];
  memset(got, 0, sizeof got);
  for (i64 k = 0; k < lanes; k++) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) fatal("mmapconf-exec: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) fatal("mmapconf-exec: fork: %s", strerror(errno));
    if (pid == 0) {
      b_lane_no = (int)k;
      for (i64 j = 0; j < k; j++) close(pf[j].fd);
      close(fds[0]);
      close(b_out);
      b_out = fds[1];
      prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      b_in = open(in, O_RDONLY | O_CLOEXEC);  /* its own read position */
      if (b_in < 0 || lseek(b_in, start, SEEK_SET) != start) fatal("mmapconf-exec: %s", in);
      b_lane(claim);
      _exit(0);
    }
    close(fds[1]);
    pf[k].fd = fds[0];
    pf[k].events = POLLIN;
  }
  for (i64 open_lanes = lanes; open_lanes > 0;) {
    if (poll(pf, (nfds_t)lanes, -1) < 0 && errno != EINTR) fatal("mmapconf-exec: poll");
    for (i64 k = 0; k < lanes; k++) {
      if (pf[k].fd < 0 || !pf[k].revents) continue;
      bb_grow(&got[k], 1 << 16);
      ssize_t r = read(pf[k].fd, got[k].b + got[k].n, 1 << 16);
      if (r <= 0) {
        close(pf[k].fd);
        pf[k].fd = -1;
        open_lanes--;
        continue;
      }
      got[k].n += (size_t)r;
      for (;;) {  /* every whole record it holds */
        if (got[k].n < 16) break;
        size_t len = 16 + 8 * (size_t)((i64 *)got[k].b)[1];
        if (got[k].n < len) break;
        bbuf whole = {got[k].b, len, len};
        b_write(&whole);
        memmove(got[k].b, got[k].b + len, got[k].n - len);
        got[k].n -= len;
      }
    }
  }
  while (wait(NULL) > 0) {}
}
static int batch_main(const char *self, const char *in, const char *out) {
  b_self = self;
  signal(SIGPIPE, SIG_IGN);
  b_in = open(in, O_RDONLY | O_CLOEXEC);
  b_out = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (b_in < 0 || b_out < 0) fatal("mmapconf-exec: %s: %s", b_in < 0 ? in : out, strerror(errno));
  page_size = sysconf(_SC_PAGESIZE);
  u64 magic;
  b_read(&magic, 8);
  if (magic != B_MAGIC) fatal("mmapconf-exec: %s is not a batch of this version", in);
  i64 *payload = NULL;
  if (b_next(&payload) != B_FACTS) fatal("mmapconf-exec: a batch that does not begin with facts");
  b_facts();
  i64 lanes = bp < bp_end ? *bp : 1;  /* how many cases at once: the run's -n */
  if (lanes < 1 || lanes > 16) fatal("mmapconf-exec: %lld lanes", (long long)lanes);
  off_t start = lseek(b_in, 0, SEEK_CUR);
  if (lanes == 1) b_lane(NULL);
  else b_lanes(in, lanes, start);
  free(payload);
  bbuf o = {0};
  bb_word(&o, B_DONE);
  bb_word(&o, 0);
  b_write(&o);
  return 0;
}
int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--batch")) return batch_main(argv[0], argv[2], argv[3]);
  if (argc < 4) {
    fprintf(stderr, "usage: %s CONTROL_FD ARENA_FD PROGRAM_FD [HARNESS] (started by mmapconf)\n",
            argv[0]);
    return 2;
  }
  control_fd = atoi(argv[1]);
  int arena_fd = atoi(argv[2]), prog_fd = atoi(argv[3]);
  setpgid(0, 0);  /* the operator's ^C is for the harness, which ends us */
  struct sigaction gone;
  memset(&gone, 0, sizeof gone);
  gone.sa_handler = on_harness_gone;  /* no SA_RESTART: a blocking call returns EINTR */
  sigaction(SIGTERM, &gone, NULL);
  prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
  if (getppid() == 1) return 0;
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  page_size = sysconf(_SC_PAGESIZE);
  if (arena_fd >= 0) close(arena_fd);  /* each case brings a fresh arena of its own */
  rec = malloc(REC_MAX);
  size_t cap = 1 << 16;
  i64 *req = malloc(cap);
  for (;;) {
    char cbuf[CMSG_SPACE(3 * sizeof(int))];
    struct iovec iov = {req, cap};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(control_fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || harness_gone) {
      leave_cgroups();
      return 0;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    int fds[3], nfds = 0;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
    }
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) fatal("mmapconf-exec: a truncated request");
    if (req[0] == CTL_WALLS) take_walls(req, (size_t)n / 8, fds, nfds);
    else serve_one(req, (size_t)n / 8, fds, nfds, prog_fd);
  }
}
