/* Probe for mincore-file-cache: after write(2) of a few bytes into each of two pages and fsync,
 * does mincore count them? Where the filesystem's blocks are smaller than the page (ext4 with
 * 4 KiB blocks under arm64-16k 6.12 and arm64-64k 6.1) it says [0, 0]: the pages are cached
 * but not uptodate. arm64 4K and x86-64 6.12 say [1, 1]. Argument: a folder on that filesystem. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
static void show(const char *when, void *m, long page) {
    unsigned char v[2] = {9, 9};
    int rc = mincore(m, 2 * page, v);
    printf("%s: mincore rc=%d [%d, %d]\n", when, rc, v[0] & 1, v[1] & 1);
}
int main(int argc, char **argv) {
    long page = sysconf(_SC_PAGESIZE);
    char path[512]; snprintf(path, sizeof path, "%s/mc", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (ftruncate(fd, 2 * page)) return 2;
    if (pwrite(fd, "cached", 6, 0) != 6 || pwrite(fd, "cached", 6, page) != 6) return 3;
    char *m0 = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, fd, 0);
    show("after writes (before fsync)", m0, page);
    fsync(fd);
    char *m = mmap(NULL, 2 * page, PROT_READ, MAP_SHARED, fd, 0);
    show("after fsync, new mapping", m, page);
    show("after fsync, first mapping", m0, page);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    show("after FADV_DONTNEED", m, page);
    volatile char c = m[0]; (void)c;
    show("after a load of page 0", m, page);
    return 0;
}
