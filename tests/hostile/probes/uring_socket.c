/* Independent probe of the io_uring decision in runner/engine/sandbox.py: an unrestricted ring
 * makes a UDP socket with IORING_OP_SOCKET (which the seccomp filter never sees), and a ring
 * restricted as executor.c's ring_setup restricts it refuses that operation (-EACCES).
 * Prints "open RES" and "restricted RES": each the socket operation's completion result. */
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int socket_through_ring(int restricted) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = restricted ? IORING_SETUP_R_DISABLED : 0;
  int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0) return 1000;  /* no io_uring here */
  if (restricted) {
    struct io_uring_restriction r[2];
    memset(r, 0, sizeof r);
    r[0].opcode = IORING_RESTRICTION_SQE_OP; r[0].sqe_op = IORING_OP_READ_FIXED;
    r[1].opcode = IORING_RESTRICTION_SQE_OP; r[1].sqe_op = IORING_OP_WRITE_FIXED;
    syscall(__NR_io_uring_register, fd, IORING_REGISTER_RESTRICTIONS, r, 2);
    syscall(__NR_io_uring_register, fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
  }
  char *sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  char *cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
                  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
  struct io_uring_sqe *sqe = mmap(NULL, p.sq_entries * sizeof *sqe, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqe == MAP_FAILED) return 1001;
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = IORING_OP_SOCKET;
  sqe->fd = 2;  /* AF_INET */
  sqe->off = 2; /* SOCK_DGRAM */
  ((unsigned *)(sq + p.sq_off.array))[0] = 0;
  __atomic_store_n((unsigned *)(sq + p.sq_off.tail), 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return 1002;
  return ((struct io_uring_cqe *)(cq + p.cq_off.cqes))[0].res;
}

int main(void) {
  printf("open %d\n", socket_through_ring(0));
  printf("restricted %d\n", socket_through_ring(1));
  return 0;
}
