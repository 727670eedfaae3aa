/* coh-mtime: the case's sequence. POSIX: st_mtime is marked for update at some point between a
 * store through MAP_SHARED and the next msync. Store 1 (clean page), msync, t1; store 2 (first
 * after MS_SYNC cleaned the page), t2 read but not judged; store 3 (page already dirty), msync:
 * the documented point, where mtime must be later than t2. Usage: coh_mtime FILE | memfd */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static long long mtime(int fd)
{
	struct stat st;
	fstat(fd, &st);
	return st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

static void nap(void)
{
	struct timespec t = { 0, 50 * 1000000L };
	nanosleep(&t, NULL);
}

int main(int argc, char **argv)
{
	long page = sysconf(_SC_PAGESIZE);
	int memfd = argc < 2 || strcmp(argv[1], "memfd") == 0;
	int fd = memfd ? memfd_create("mtime", 0) : open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!memfd)
		unlink(argv[1]);
	struct utsname u;
	uname(&u);
	if (ftruncate(fd, page) || fsync(fd))
		return 1;
	char *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	long long t0 = mtime(fd);
	printf("kernel %s, %s\n", u.release, memfd ? "memfd" : argv[1]);
	nap();
	m[0] = '1';
	msync(m, page, MS_SYNC);
	long long t1 = mtime(fd);
	printf("store 1, msync: mtime %s t0\n", t1 > t0 ? "later than" : "NOT later than");
	nap();
	m[1] = '2';
	nap();
	long long t2 = mtime(fd);
	printf("store 2 (no msync yet): mtime %s t1\n", t2 > t1 ? "later than" : "not later than");
	nap();
	m[2] = '3';
	msync(m, page, MS_SYNC);
	long long t3 = mtime(fd);
	printf("store 3 (dirty page), msync: mtime %s t2, %s t1\n",
	       t3 > t2 ? "later than" : "NOT later than", t3 > t1 ? "later than" : "NOT later than");
	return 0;
}
