/* What a case costs at the least in a qemu guest: the system calls every case's confinement
 * makes and the loops of the max_map_count cases, timed with nothing else in the guest.
 * Run by bench/guestfloor.py as the guest's only command; prints one "name seconds count"
 * line per figure. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* a process that forks its child and reaps it: the least a case's init does */
static void fork_wait(void) {
  pid_t p = fork();
  if (p == 0) _exit(0);
  waitpid(p, NULL, 0);
}

/* a case's shape: an init in a new PID and mount namespace, with /proc mounted, forking the
 * case's process, which exits; the server reaps the init */
static int own_pid_ns = -1;
static void case_shape(void) {
  if (own_pid_ns < 0) own_pid_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (unshare(CLONE_NEWPID) != 0) { perror("unshare"); exit(1); }
  pid_t init = fork();
  if (init == 0) {
    if (unshare(CLONE_NEWNS) != 0) _exit(2);
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    if (mount("proc", "/proc", "proc", 0, NULL) != 0) _exit(3);
    fork_wait();
    _exit(0);
  }
  if (setns(own_pid_ns, CLONE_NEWPID) != 0) { perror("setns"); exit(1); }  /* as executor.c */
  int st;
  waitpid(init, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) { fprintf(stderr, "init: %d\n", st); exit(1); }
}

/* one max_map_count case: one-page mappings of alternating protection until ENOMEM, in a
 * process that then exits (its mappings torn down) */
static long map_until_full(void) {
  int fd[2];
  long n = 0;
  if (pipe(fd) != 0) exit(1);
  pid_t p = fork();
  if (p == 0) {
    long page = sysconf(_SC_PAGESIZE);
    for (;; n++) {
      int prot = n & 1 ? PROT_NONE : PROT_READ;
      if (mmap(NULL, page, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) break;
    }
    if (write(fd[1], &n, sizeof n) != sizeof n) _exit(1);
    _exit(errno == ENOMEM ? 0 : 1);
  }
  waitpid(p, NULL, 0);
  if (read(fd[0], &n, sizeof n) != sizeof n) exit(1);
  return n;
}

static void timed(const char *name, void (*f)(void), int count) {
  double t0 = now();
  for (int k = 0; k < count; k++) f();
  printf("%s %.6f %d\n", name, (now() - t0) / count, count);
  fflush(stdout);
}

int main(int argc, char **argv) {
  int count = argc > 1 ? atoi(argv[1]) : 200;
  timed("fork_wait", fork_wait, count);
  timed("case_shape", case_shape, count);
  double t0 = now();
  long n = map_until_full();
  printf("map_until_full %.6f %ld\n", now() - t0, n);
  return 0;
}
