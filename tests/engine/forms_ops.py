"""Self-test pairs of the forms operations (issue 18: splice and friends, /proc/self/mem,
pidfds and process_madvise, reflinks, lseek, io_uring fixed buffers, prctl), in the form of
test_operations.OPERATIONS: steps before, the step, a right expectation, a wrong one, and the
failure text the wrong one must give. They run on tmpfs (reflinks are refused there: the
refusal is what is judged; cases/reflink judges the clones on btrfs and xfs)."""

from __future__ import annotations

PRE_FILES = """
  - file: f
    data: "abcdefgh"
    size: PAGE
  - file: g
"""
PRE_PIPE = (
    PRE_FILES
    + """
  - pipe: {read: pr, write: pw}
"""
)
PRE_RO = """
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: a
"""
PRE_BUF = (
    PRE_FILES
    + """
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: a
"""
)
PRE_REGISTERED = PRE_BUF + "  - uring_register_buffers: {addr: a, length: PAGE}\n"

FORMS_OPERATIONS = {
    "splice": (
        PRE_PIPE,
        "splice: {fd_in: f, off_in: 0, fd_out: pw, length: 8}",
        "{value: 8}",
        "{value: 7}",
        "expected value 7, got success, value 8",
    ),
    "vmsplice": (
        PRE_PIPE + PRE_RO,
        "vmsplice: {fd: pw, addr: a, length: PAGE}",
        "{value: PAGE}",
        "{errno: EBADF}",
        "expected errno EBADF, got success",
    ),
    "sendfile": (
        PRE_PIPE,
        "sendfile: {fd_out: pw, fd_in: f, offset: 2, length: 4}",
        "{value: 4}",
        "{value: 5}",
        "expected value 5, got success, value 4",
    ),
    "copy_file_range": (
        PRE_FILES,
        "copy_file_range: {fd_in: f, off_in: 0, fd_out: g, off_out: 0, length: 8}",
        "{value: 8}",
        "{errno: EXDEV}",
        "expected errno EXDEV, got success",
    ),
    "proc_mem_write": (
        PRE_RO,
        'proc_mem_write: {addr: a, data: "xy"}',
        "{value: 2}",
        "{errno: EFAULT}",
        "expected errno EFAULT, got success",
    ),
    "proc_mem_read": (
        PRE_RO,
        "proc_mem_read: {addr: a, length: 2}",
        '{value: {hex: "0000"}}',
        '{value: {hex: "0001"}}',
        "expected value {hex: '0001'}, got success, value {hex 0000}",
    ),
    "pidfd_open": (
        "",
        "pidfd_open: main",
        "{value: {gt: 2}}",
        "{errno: ESRCH}",
        "expected errno ESRCH, got success",
    ),
    "process_madvise": (
        PRE_RO + "  - pidfd_open: main\n    as: p\n",
        "process_madvise: {pidfd: p, addr: a, length: PAGE, advice: MADV_COLD}",
        "{value: PAGE}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "ficlone": (
        PRE_FILES,
        "ficlone: {fd: g, fd_src: f}",
        "{errno: EOPNOTSUPP}",
        "{}",
        "expected success, got errno EOPNOTSUPP",
    ),
    "ficlonerange": (
        PRE_FILES,
        "ficlonerange: {fd: g, fd_src: f, length: PAGE}",
        "{errno: EOPNOTSUPP}",
        "{}",
        "expected success, got errno EOPNOTSUPP",
    ),
    "fideduperange": (
        PRE_FILES,
        "fideduperange: {fd_src: f, length: PAGE, fd: g}",
        "{errno: EOPNOTSUPP}",
        "{value: {status: FILE_DEDUPE_RANGE_SAME}}",
        "expected value {status: 'FILE_DEDUPE_RANGE_SAME'}, got errno EOPNOTSUPP",
    ),
    "lseek": (
        PRE_FILES,
        "lseek: {fd: f, offset: 0, whence: SEEK_END}",
        "{value: PAGE}",
        "{value: 0}",
        "expected value 0, got success, value ",
    ),
    "uring_register_buffers": (
        PRE_BUF,
        "uring_register_buffers: {addr: a, length: PAGE}",
        "{}",
        "{errno: EFAULT}",
        "expected errno EFAULT, got success",
    ),
    "uring_unregister_buffers": (
        PRE_REGISTERED,
        "uring_unregister_buffers:",
        "{}",
        "{errno: ENXIO}",
        "expected errno ENXIO, got success",
    ),
    "uring_read_fixed": (
        PRE_REGISTERED,
        "uring_read_fixed: {fd: f, addr: a, length: 8}",
        "{value: 8}",
        "{value: 7}",
        "expected value 7, got success, value 8",
    ),
    "uring_write_fixed": (
        PRE_REGISTERED,
        "uring_write_fixed: {fd: g, addr: a, length: 8, offset: 4}",
        "{value: 8}",
        "{errno: EBADF}",
        "expected errno EBADF, got success",
    ),
    "prctl": (
        "",
        "prctl: {option: PR_GET_THP_DISABLE}",
        "{value: 0}",
        "{value: 1}",
        "expected value 1, got success, value 0",
    ),
}
