"""Self-test pairs of the operations added for peer suites' behaviours (issue 18), in the form
of test_operations.OPERATIONS: steps before, the step, a right expectation, a wrong one, and the
failure text the wrong one must give."""

from __future__ import annotations

PRE_MEMFD = """
  - memfd_create: {name: m}
    as: fd
  - write: {fd: fd, data: "abcd"}
"""

PRE_UFFD = """
  - mmap: {length: 2 * PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: a
  - userfaultfd: {flags: O_NONBLOCK}
    as: u
"""
PRE_REGISTERED = (
    PRE_UFFD
    + """
  - uffd_register: {fd: u, addr: a, length: PAGE, mode: UFFDIO_REGISTER_MODE_MISSING}
"""
)

PEER_GAP_OPERATIONS = {
    "fallocate": (
        PRE_MEMFD,
        "fallocate: {fd: fd, mode: FALLOC_FL_PUNCH_HOLE, offset: 0, length: 4}",
        "{errno: EOPNOTSUPP}",
        "{}",
        "expected success, got errno EOPNOTSUPP",
    ),
    "brk": (
        "",
        "brk: 0",
        "{value: {gt: 0}}",
        "{value: 0}",
        "expected value 0, got success, value ",
    ),
    "let": (
        "",
        "let: 2 * PAGE + 1",
        "{value: 2 * PAGE + 1}",
        "{value: 7}",
        "expected value 7, got",
    ),
    "getrlimit": (
        "  - setrlimit: {resource: RLIMIT_NOFILE, soft: 64}\n",
        "getrlimit: RLIMIT_NOFILE",
        "{value: {soft: 64}}",
        "{value: {soft: 65}}",
        "expected value {soft: 65}, got success, value {soft: 64",
    ),
    "userfaultfd": (
        "",
        "userfaultfd: {flags: O_NONBLOCK}",
        "{value: {gt: 2}}",
        "{errno: EPERM}",
        "expected errno EPERM, got success",
    ),
    "uffd_register": (
        PRE_UFFD,
        "uffd_register: {fd: u, addr: a, length: PAGE, mode: UFFDIO_REGISTER_MODE_MISSING}",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "uffd_read": (
        PRE_REGISTERED,
        "uffd_read: u",
        "{errno: EAGAIN}",
        "{value: {event: UFFD_EVENT_PAGEFAULT}}",
        "expected value {event: 'UFFD_EVENT_PAGEFAULT'}, got errno EAGAIN",
    ),
    "uffd_copy": (
        PRE_REGISTERED,
        "uffd_copy: {fd: u, dst: a, src: a + PAGE, length: PAGE}",
        "{value: PAGE}",
        "{value: 1}",
        "expected value 1, got success, value ",
    ),
    "uffd_zeropage": (
        PRE_REGISTERED,
        "uffd_zeropage: {fd: u, addr: a, length: PAGE}",
        "{value: PAGE}",
        "{errno: EEXIST}",
        "expected errno EEXIST, got success",
    ),
}
