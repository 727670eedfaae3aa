/* The truth of the core-dump cases (cases/coredump/), without the harness: in a guest (root, a
 * fresh machine) with core_pattern "core.%p" (a relative pattern: the dumping process's working
 * folder), a child maps memory of each kind, fills it, is given a coredump_filter and madvise
 * advice, and aborts; the parent reads the ELF core's program headers and prints, per mapping,
 * how many of its bytes a PT_LOAD segment covers (memsz) and holds (filesz), and whether the
 * bytes held are the ones stored. Also RLIMIT_CORE 0 and a limit smaller than the dump. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
static long page;

static void covered(int pid, const char *what, char *addr, long len) {
  char name[64];
  snprintf(name, sizeof name, "core.%d", pid);
  int fd = open(name, O_RDONLY);
  if (fd < 0) { printf("%s: no core (%s)\n", what, strerror(errno)); return; }
  struct stat st;
  fstat(fd, &st);
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
      eh.e_type != ET_CORE) { printf("%s: not an ELF core (size %ld)\n", what, (long)st.st_size); close(fd); unlink(name); return; }
  long mem = 0, file = 0, same = 0;
  for (int k = 0; k < eh.e_phnum; k++) {
    Elf64_Phdr ph;
    pread(fd, &ph, sizeof ph, eh.e_phoff + (long)k * eh.e_phentsize);
    if (ph.p_type != PT_LOAD) continue;
    unsigned long lo = (unsigned long)addr, hi = lo + len;
    unsigned long s = ph.p_vaddr, e = ph.p_vaddr + ph.p_memsz, fe = ph.p_vaddr + ph.p_filesz;
    if (e <= lo || s >= hi) continue;
    unsigned long a = s > lo ? s : lo, b = e < hi ? e : hi, fb = fe < hi ? fe : hi;
    mem += b - a;
    if (ph.p_offset + ph.p_filesz > (unsigned long)st.st_size && fb > a) {  /* truncated */
      unsigned long in_file = ph.p_offset < (unsigned long)st.st_size ? st.st_size - ph.p_offset : 0;
      if (fb > s + in_file) fb = s + in_file;
    }
    if (fb > a) {
      file += fb - a;
      char *buf = malloc(fb - a);
      pread(fd, buf, fb - a, ph.p_offset + (a - s));
      same += memcmp(buf, (char *)a, fb - a) == 0 ? (long)(fb - a) : 0;
      free(buf);
    }
  }
  printf("%s: core %ld bytes; range %ld: memsz %ld filesz %ld same %ld\n", what, (long)st.st_size,
         len, mem, file, same);
  close(fd);
  unlink(name);
}

/* fork a child that sets FILTER (-1: keep), applies ADVICE (-1: none), aborts; returns its pid */
static int dump(const char *what, int filter, char *m, long len, int advice, int *status) {
  int pid = fork();
  if (pid == 0) {
    if (filter >= 0) {
      FILE *f = fopen("/proc/self/coredump_filter", "w");
      fprintf(f, "%#x", filter);  /* read with base 0: "33" would be decimal */
      fclose(f);
    }
    if (advice >= 0 && madvise(m, len, advice) != 0) _exit(3);
    abort();
  }
  waitpid(pid, status, 0);
  printf("%s: signaled %d sig %d core %d\n", what, WIFSIGNALED(*status), WTERMSIG(*status),
         WCOREDUMP(*status));
  return pid;
}
static void kind(const char *what, char *m, long len, int filter, int advice) {
  int st;
  memset(m, 0x5a, len);
  int pid = dump(what, filter, m, len, advice, &st);
  covered(pid, what, m, len);
}
static char *file_map(const char *path, int flags, int mode, const char *head) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, mode);
  ftruncate(fd, 4 * page);
  if (head) pwrite(fd, head, strlen(head), 0);
  char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, flags, fd, 0);
  close(fd);
  return m;
}

int main(int argc, char **argv) {
  page = sysconf(_SC_PAGESIZE);
  const char *dir = argc > 1 ? argv[1] : "/run/core_probe";
  mkdir(dir, 0700);
  if (chdir(dir) != 0) { perror(dir); return 1; }
  int cp = open("/proc/sys/kernel/core_pattern", O_WRONLY);
  if (cp < 0 || write(cp, "core.%p", 7) != 7) { perror("core_pattern"); return 1; }
  close(cp);
  char f[16] = {0};
  int ff = open("/proc/self/coredump_filter", O_RDONLY);
  read(ff, f, sizeof f - 1);
  printf("default coredump_filter %s", f);
  struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_CORE, &r);
  long len = 4 * page;
  char *priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  kind("anon-private default", priv, len, -1, -1);
  kind("anon-private dontdump", priv, len, -1, MADV_DONTDUMP);
  madvise(priv, len, MADV_DONTDUMP);
  kind("anon-private dontdump-then-dodump", priv, len, -1, MADV_DODUMP);
  madvise(priv, len, MADV_DODUMP);
  kind("anon-private filter 0x32 (bit0 clear)", priv, len, 0x32, -1);
  kind("anon-shared default", shared, len, -1, -1);
  kind("anon-shared filter 0x31 (bit1 clear)", shared, len, 0x31, -1);
  char *fp = file_map("fpriv", MAP_PRIVATE, 0600, NULL);
  kind("file-private default (written)", fp, len, -1, -1);
  char *fp2 = file_map("fpriv2", MAP_PRIVATE, 0600, NULL);
  {
    int st;
    int pid = dump("file-private default (untouched)", -1, fp2, len, -1, &st);
    covered(pid, "file-private default (untouched)", fp2, len);
    pid = dump("file-private filter 0x37 (bit2, untouched)", 0x37, fp2, len, -1, &st);
    covered(pid, "file-private filter 0x37 (bit2, untouched)", fp2, len);
  }
  char *fs = file_map("fshared", MAP_SHARED, 0600, NULL);
  kind("file-shared default", fs, len, -1, -1);
  kind("file-shared filter 0x3b (bit3)", fs, len, 0x3b, -1);
  /* bit 4: the first page of a file-backed mapping at offset 0 that is an ELF header */
  char *elf = file_map("elfhead", MAP_PRIVATE, 0600, "\177ELF");
  char *noelf = file_map("noelf", MAP_PRIVATE, 0600, "notelf");
  char *exe = file_map("exefile", MAP_PRIVATE, 0700, "notelf");
  {
    int st, pid;
    const char *names[] = {"elf-header file, filter 0x33", "non-elf file, filter 0x33",
                           "executable non-elf file, filter 0x33", "elf-header file, filter 0x23"};
    char *maps[] = {elf, noelf, exe, elf};
    int filters[] = {0x33, 0x33, 0x33, 0x23};
    for (int k = 0; k < 4; k++) {
      pid = dump(names[k], filters[k], maps[k], len, -1, &st);
      covered(pid, names[k], maps[k], len);
    }
  }
  /* hugetlb: bits 5 and 6 */
  FILE *nr = fopen("/proc/sys/vm/nr_hugepages", "w");
  fprintf(nr, "4");
  fclose(nr);
  long huge = 2L << 20;
  char *hp = mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  char *hs = mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  if (hp == MAP_FAILED || hs == MAP_FAILED) printf("hugetlb: mmap failed %s\n", strerror(errno));
  else {
    kind("huge-private default", hp, huge, -1, -1);
    kind("huge-private filter 0x13 (bit5 clear)", hp, huge, 0x13, -1);
    kind("huge-shared default", hs, huge, -1, -1);
    kind("huge-shared filter 0x73 (bit6)", hs, huge, 0x73, -1);
  }
  /* RLIMIT_CORE */
  {
    int st, pid;
    r.rlim_cur = 0;
    setrlimit(RLIMIT_CORE, &r);
    pid = dump("rlimit 0", -1, priv, len, -1, &st);
    covered(pid, "rlimit 0", priv, len);
    r.rlim_cur = page;
    setrlimit(RLIMIT_CORE, &r);
    pid = dump("rlimit 1 page", -1, priv, len, -1, &st);
    covered(pid, "rlimit 1 page", priv, len);
    r.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_CORE, &r);
  }
  return 0;
}
