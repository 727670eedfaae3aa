/* The truth of the swap cases (cases/swap/), without the harness: in a guest (root, a fresh
 * machine), a swap area on a loop device over a file in a tmpfs, then what MADV_PAGEOUT,
 * MADV_COLD and MADV_WILLNEED do to anonymous pages, private and shared. Prints one line per
 * observation: smaps Swap: (kB), mincore's vector, major faults on touching, whether the data
 * came back. Undoes the swap area at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/swap.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#define MADV_PAGEOUT 21
#endif
#define PAGES 8

static long page;

static long smaps_swap(void *addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[256];
  int in = 0;
  long kb = -1;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
      in = lo == (unsigned long)addr;
    else if (in && sscanf(line, "Swap: %ld kB", &kb) == 1)
      break;
  }
  if (f) fclose(f);
  return kb;
}
static long majflt(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_majflt;
}
static void vec(const char *what, char *m) {
  unsigned char v[PAGES];
  if (mincore(m, PAGES * page, v) != 0) { printf("%s mincore errno %d\n", what, errno); return; }
  printf("%s mincore ", what);
  for (int k = 0; k < PAGES; k++) printf("%d", v[k] & 1);
  printf("\n");
}
static void fill(char *m) { for (long k = 0; k < PAGES * page; k++) m[k] = (char)(k * 7 + 1); }
static int same(char *m) {
  for (long k = 0; k < PAGES * page; k++) if (m[k] != (char)(k * 7 + 1)) return 0;
  return 1;
}
static void touch(const char *what, char *m) {
  long before = majflt();
  int ok = same(m);
  printf("%s touch majflt %ld data %s\n", what, majflt() - before, ok ? "same" : "DIFFERENT");
}
static void one(const char *kind, int flags) {
  char what[64];
  char *m = mmap(NULL, PAGES * page, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
  fill(m);
  snprintf(what, sizeof what, "%s filled", kind);
  printf("%s swap %ld kB\n", what, smaps_swap(m));
  printf("%s cold rc %d", kind, madvise(m, PAGES * page, MADV_COLD));
  printf(" swap %ld kB\n", smaps_swap(m));
  snprintf(what, sizeof what, "%s cold", kind);
  touch(what, m);
  printf("%s pageout rc %d", kind, madvise(m, PAGES * page, MADV_PAGEOUT));
  printf(" swap %ld kB\n", smaps_swap(m));
  snprintf(what, sizeof what, "%s pageout", kind);
  vec(what, m);
  usleep(300000);
  snprintf(what, sizeof what, "%s pageout+300ms", kind);
  vec(what, m);
  touch(what, m);
  printf("%s after touch swap %ld kB\n", kind, smaps_swap(m));
  /* a page whose copy on swap is clean: PAGEOUT frees it at once */
  madvise(m, PAGES * page, MADV_PAGEOUT);
  usleep(300000);
  snprintf(what, sizeof what, "%s pageout2 no willneed", kind);
  vec(what, m);
  touch(what, m);
  /* WILLNEED on swapped-out pages (LTP madvise06): read back before the touch */
  madvise(m, PAGES * page, MADV_PAGEOUT);
  usleep(300000);
  snprintf(what, sizeof what, "%s pageout2+300ms", kind);
  vec(what, m);
  printf("%s willneed rc %d\n", kind, madvise(m, PAGES * page, MADV_WILLNEED));
  usleep(300000);
  snprintf(what, sizeof what, "%s willneed+300ms", kind);
  vec(what, m);
  printf("%s willneed swap %ld kB\n", kind, smaps_swap(m));
  touch(what, m);
  munmap(m, PAGES * page);
}

int main(void) {
  page = sysconf(_SC_PAGESIZE);
  const char *img = "/run/swap_probe.img";
  long size = 16L << 20;
  int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, size) != 0) { perror(img); return 1; }
  char *hdr = calloc(1, page);
  uint32_t *info = (uint32_t *)(hdr + 1024);
  info[0] = 1;                              /* version */
  info[1] = (uint32_t)(size / page - 1);    /* last_page */
  memcpy(hdr + page - 10, "SWAPSPACE2", 10);
  if (pwrite(fd, hdr, page, 0) != page) { perror("header"); return 1; }
  fsync(fd);
  int rc = swapon(img, 0);
  printf("swapon of the tmpfs file itself: rc %d errno %d (%s)\n", rc, errno, strerror(errno));
  int ctl = open("/dev/loop-control", O_RDWR);
  int n = ioctl(ctl, LOOP_CTL_GET_FREE);
  char dev[32];
  snprintf(dev, sizeof dev, "/dev/loop%d", n);
  int lfd = open(dev, O_RDWR);
  if (lfd < 0 || ioctl(lfd, LOOP_SET_FD, fd) != 0) { perror(dev); return 1; }
  if (swapon(dev, 0) != 0) { perror("swapon loop"); return 1; }
  char buf[512];
  FILE *s = fopen("/proc/swaps", "r");
  while (fgets(buf, sizeof buf, s)) printf("/proc/swaps: %s", buf);
  fclose(s);
  one("private", MAP_PRIVATE);
  one("shared", MAP_SHARED);
  printf("swapoff rc %d\n", swapoff(dev));
  printf("loop clr rc %d\n", ioctl(lfd, LOOP_CLR_FD, 0));
  unlink(img);
  return 0;
}
