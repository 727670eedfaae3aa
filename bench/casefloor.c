/* The least a confined one-process case-run costs on this host: what the harness's case-run of
 * bench-one-process must do, from a C parent with nothing else in it. Each run: a report socket;
 * an init, pid 1 of a new PID namespace, in a mount namespace of its own with the case's mounts
 * (a fresh tmpfs root holding /dev bound and a new /proc, read-only after); the case's process,
 * which applies the Landlock rules and the seccomp filter the harness gives a case (read from
 * SPEC, runner/engine/native/confinement.py's words) and its rlimits, maps a page, stores and
 * loads it back, and reports each of its three steps; the parent reads the reports and reaps
 * the init. Written for bench/executors.py, not from executor.c: it does the same system calls,
 * none of its bookkeeping.
 * Usage: casefloor SPEC RUNS; prints the seconds of each run, one a line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int64_t i64;
static i64 *spec;
static size_t nspec;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  _exit(3);
}

/* abi, fs, net, scope, attr size, rules (rights, path), then the filter (confinement.spec) */
static void apply_spec(void) {
  size_t at = 0;
#define NEXT() (at < nspec ? spec[at++] : 0)
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
  i64 abi = NEXT();
  struct { uint64_t fs, net, scoped; } attr = {(uint64_t)NEXT(), (uint64_t)NEXT(), (uint64_t)NEXT()};
  i64 size = NEXT(), nrules = NEXT();
  int ruleset = abi >= 1 ? (int)syscall(SYS_landlock_create_ruleset, &attr, (size_t)size, 0) : -1;
  for (i64 k = 0; k < nrules; k++) {
    uint64_t rights = (uint64_t)NEXT();
    i64 len = NEXT();
    char path[4096] = "";
    memcpy(path, spec + at, (size_t)len < sizeof path ? (size_t)len : sizeof path - 1);
    at += (size_t)(len + 7) / 8;
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) rights &= (1 | 2 | 4 | (1 << 14) | (1 << 15));
    struct __attribute__((packed)) { uint64_t allowed; int32_t parent; } rule = {rights, fd};
    if (syscall(SYS_landlock_add_rule, ruleset, 1, &rule, 0) != 0) die("landlock_add_rule");
    close(fd);
  }
  if (ruleset >= 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) die("landlock");
  close(ruleset);
  i64 n = NEXT();
  struct sock_filter f[4096];
  for (i64 k = 0; k < n && k < 4096; k++) {
    uint64_t w = (uint64_t)NEXT();
    f[k] = (struct sock_filter){(uint16_t)w, (uint8_t)(w >> 16), (uint8_t)(w >> 24), (uint32_t)(w >> 32)};
  }
  struct sock_fprog prog = {(unsigned short)n, f};
  if (n > 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) die("seccomp");
#undef NEXT
}

/* the budgets a case process runs under: its address space (what it has plus 64 MiB), no core,
 * its open files */
static void rlimits(void) {
  char buf[128] = "";
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0) die("statm");
  close(fd);
  rlim_t as = (strtoull(buf, NULL, 10) << 12) + (64 << 20);
  struct rlimit r = {as, as}, none = {0, 0}, files = {256, 256};
  if (setrlimit(RLIMIT_AS, &r) || setrlimit(RLIMIT_CORE, &none) || setrlimit(RLIMIT_NOFILE, &files))
    die("setrlimit");
}

static void report(int sock, i64 step, i64 value) {
  i64 rec[4] = {2, getpid(), step, value};
  if (send(sock, rec, sizeof rec, 0) != sizeof rec) die("send");
}

static void case_process(int sock) {
  apply_spec();
  rlimits();
  volatile int *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) die("mmap");
  report(sock, 1, (i64)(uintptr_t)m);
  *m = 7;
  report(sock, 2, 0);
  report(sock, 3, *m);
  _exit(*m == 7 ? 0 : 1);
}

/* the case's view: a fresh tmpfs root with /dev bound in and a new /proc, read-only after */
static void enter_view(void) {
  if (unshare(CLONE_NEWNS) != 0) die("unshare(CLONE_NEWNS)");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) die("private");
  if (mount("floor-root", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=256,mode=755"))
    die("root");
  if (mkdir("/proc/dev", 0755) != 0 || mkdir("/proc/proc", 0555) != 0) die("mkdir");
  if (mount("/dev", "/proc/dev", NULL, MS_BIND, NULL) != 0) die("bind /dev");
  if (chdir("/proc") != 0 || chroot(".") != 0 || chdir("/") != 0) die("chroot");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die("proc");
  if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) die("ro");
}

static void init(int sock) {
  enter_view();
  pid_t p = fork();
  if (p == 0) case_process(sock);
  close(sock);
  int st;
  while (waitpid(-1, &st, 0) > 0)
    if (!WIFEXITED(st) || WEXITSTATUS(st)) _exit(1);
  _exit(0);
}

static void one_run(int own_pid_ns) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  if (unshare(CLONE_NEWPID) != 0) die("unshare(CLONE_NEWPID)");
  pid_t p = fork();
  if (p == 0) {
    close(sv[0]);
    init(sv[1]);
  }
  if (setns(own_pid_ns, CLONE_NEWPID) != 0) die("setns");
  close(sv[1]);
  i64 rec[4];
  int got = 0;
  while (recv(sv[0], rec, sizeof rec, 0) == sizeof rec) got++;
  close(sv[0]);
  int st;
  if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) || got != 3) {
    fprintf(stderr, "casefloor: the case did not pass (status %d, %d reports)\n", st, got);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: casefloor SPEC RUNS\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "rb");
  if (!f) die(argv[1]);
  static i64 words[1 << 16];
  nspec = fread(words, sizeof *words, sizeof words / sizeof *words, f);
  fclose(f);
  spec = words;
  int own_pid_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  for (int k = 0, runs = atoi(argv[2]); k < runs; k++) {
    double t0 = now();
    one_run(own_pid_ns);
    printf("%.9f\n", now() - t0);
  }
  return 0;
}
