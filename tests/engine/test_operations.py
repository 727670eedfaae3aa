"""Every operation of the contract: one case that must pass, and a wrong expectation that must
fail with a message naming the step, what was expected and what was observed."""

from __future__ import annotations

import textwrap

import pytest
from forms_ops import FORMS_OPERATIONS
from peer_gap_ops import PEER_GAP_OPERATIONS

PRE_FILE = """
  - file: f
    data: "abcdefgh"
    size: PAGE
"""
PRE_MAP = (
    PRE_FILE
    + """
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED, fd: f}
    as: m
"""
)
PRE_ANON = """
  - mmap: {length: 4 * PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: a
"""

# op: (steps before, the step under test, a right expectation, a wrong one, failure text)
OPERATIONS = {
    "file": ("", "file: f", "{}", "{errno: EEXIST}", "expected errno EEXIST, got success"),
    "open": (
        PRE_FILE,
        "open: {file: f, flags: O_RDONLY}",
        "{value: {gt: 2}}",
        "{errno: ENOENT}",
        "expected errno ENOENT, got success",
    ),
    "close": (PRE_FILE, "close: f", "{}", "{errno: EBADF}", "expected errno EBADF, got success"),
    "ftruncate": (
        PRE_FILE,
        "ftruncate: {fd: f, length: -1}",
        "{errno: EINVAL}",
        "{}",
        "expected success, got errno EINVAL",
    ),
    "write": (
        PRE_FILE,
        "write: {fd: f, offset: 2, data: XY}",
        "{value: 2}",
        "{value: 3}",
        "expected value 3, got success, value 2",
    ),
    "read": (
        PRE_FILE,
        "read: {fd: f, offset: 1, length: 3}",
        "{value: {data: bcd}}",
        "{value: {hex: '626364ff'}}",
        "expected value {hex: '626364ff'}",
    ),
    "fstat": (
        PRE_FILE,
        "fstat: f",
        "{value: {size: PAGE}}",
        "{value: {size: 8}}",
        "expected value {size: 8}",
    ),
    "fsync": (PRE_FILE, "fsync: f", "{}", "{errno: EIO}", "expected errno EIO, got success"),
    "fdatasync": (
        PRE_FILE,
        "fdatasync: 9999",
        "{errno: EBADF}",
        "{}",
        "expected success, got errno EBADF",
    ),
    "unlink": (PRE_FILE, "unlink: f", "{}", "{errno: ENOENT}", "expected errno ENOENT"),
    "mmap": (
        "",
        "mmap: {length: 0, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}",
        "{errno: EINVAL}",
        "{}",
        "expected success, got errno EINVAL",
    ),
    "munmap": (
        PRE_ANON,
        "munmap: {addr: a + 1, length: PAGE}",
        "{errno: EINVAL}",
        "{}",
        "expected success, got errno EINVAL",
    ),
    "mprotect": (
        PRE_ANON,
        "mprotect: {addr: a, length: PAGE, prot: PROT_READ}",
        "{}",
        "{errno: EACCES}",
        "expected errno EACCES, got success",
    ),
    "msync": (
        PRE_MAP,
        "msync: {addr: m, length: PAGE, flags: MS_SYNC|MS_ASYNC}",
        "{errno: EINVAL}",
        "{}",
        "main step 3 (msync): expected success, got errno EINVAL",
    ),
    "madvise": (
        PRE_ANON,
        "madvise: {addr: a, length: PAGE, advice: MADV_DONTNEED}",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "mlock": (
        PRE_ANON,
        "mlock: {addr: a, length: PAGE}",
        "{}",
        "{errno: ENOMEM}",
        "expected errno ENOMEM, got success",
    ),
    "munlock": (
        PRE_ANON,
        "munlock: {addr: a, length: PAGE}",
        "{}",
        "{errno: ENOMEM}",
        "expected errno ENOMEM, got success",
    ),
    "mremap": (
        PRE_ANON,
        "mremap: {addr: a, old_length: 4 * PAGE, new_length: PAGE}",
        "{value: a}",
        "{errno: ENOMEM}",
        "expected errno ENOMEM, got success",
    ),
    "mincore": (
        PRE_ANON + "  - store: {addr: a, data: x}\n",
        "mincore: {addr: a, length: 2 * PAGE}",
        "{value: [1, 0]}",
        "{value: [0, 0]}",
        "expected value [0, 0], got success, value [1, 0]",
    ),
    "load": (
        PRE_ANON,
        "load: {addr: a, format: '<q'}",
        "{value: 0}",
        "{value: 7}",
        "expected value 7, got success, value 0",
    ),
    "store": (
        PRE_ANON + "  - munmap: {addr: a + 3 * PAGE, length: PAGE}\n",
        "store: {addr: a + 3 * PAGE, data: x}",
        "{signal: SIGSEGV, si_code: SEGV_MAPERR}",
        "{signal: SIGSEGV, si_code: SEGV_ACCERR}",
        "got SIGSEGV/SEGV_MAPERR at a+12288",
    ),
    "cachestat": (
        PRE_FILE,
        "cachestat: {fd: f}",
        "{value: {nr_cache: {ge: 0}}}",
        "{value: {nr_cache: -1}}",
        "expected value {nr_cache: -1}",
    ),
    "smaps": (
        PRE_ANON + "  - store: {addr: a, data: x}\n",
        "smaps: a",
        "{value: {Rss: {ge: 4}}}",
        "{value: {Rss: 0}}",
        "expected value {Rss: 0}",
    ),
    "sem_init": (
        PRE_ANON,
        "sem_init: {addr: a, pshared: 1, value: 1}",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "sem_post": (
        PRE_ANON + "  - sem_init: {addr: a}\n",
        "sem_post: a",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "sem_wait": (
        PRE_ANON + "  - sem_init: {addr: a, value: 1}\n",
        "sem_wait: a",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "kill": (
        "",
        "kill: {pid: 999999999, signal: SIGTERM}",
        "{errno: ESRCH}",
        "{}",
        "expected success, got errno ESRCH",
    ),
    "fork": (
        "",
        "fork: {steps: [{post: x}]}",
        "{value: {gt: 0}}",
        "{value: 0}",
        "expected value 0, got success",
    ),
    "wait": (
        "  - fork: {steps: [{post: x}]}\n    as: c\n",
        "wait: c",
        "{value: {exit: 0}}",
        "{value: {exit: 1}}",
        "expected value {exit: 1}, got success, value {exit: 0}",
    ),
    "post": ("", "post: e", "{}", "{errno: EINVAL}", "expected errno EINVAL, got success"),
    "wait_for": (
        "  - post: e\n",
        "wait_for: e",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "repeat": (
        PRE_ANON,
        "repeat: {times: 3, var: i, steps: [{store: {addr: a + i, data: z}}]}",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    # extensions
    "pipe": (
        "",
        "pipe: {read: r, write: w}",
        "{}",
        "{errno: EMFILE}",
        "expected errno EMFILE, got success",
    ),
    "eventfd": (
        "",
        "eventfd: {initval: 0}",
        "{value: {gt: 2}}",
        "{value: 0}",
        "expected value 0, got success",
    ),
    "dup": (
        PRE_FILE,
        "dup: f",
        "{value: {gt: f}}",
        "{errno: EBADF}",
        "expected errno EBADF, got success",
    ),
    "reopen": (
        PRE_FILE,
        "reopen: {fd: f, flags: O_RDONLY}",
        "{value: {ne: f}}",
        "{errno: EACCES}",
        "expected errno EACCES, got success",
    ),
    "memfd_create": (
        "",
        "memfd_create: {name: x, flags: MFD_ALLOW_SEALING}",
        "{value: {gt: 2}}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "fcntl": (
        "  - memfd_create: {name: x, flags: MFD_ALLOW_SEALING}\n    as: s\n",
        "fcntl: {fd: s, cmd: F_GET_SEALS}",
        "{value: 0}",
        "{value: F_SEAL_SEAL|F_SEAL_GROW}",
        "expected value 5, got success, value 0",
    ),
    "fadvise": (
        PRE_FILE,
        "fadvise: {fd: f, advice: POSIX_FADV_DONTNEED}",
        "{value: 0}",
        "{value: 22}",
        "expected value 22, got success, value 0",
    ),
    "posix_madvise": (
        PRE_ANON,
        "posix_madvise: {addr: a + 1, length: PAGE, advice: POSIX_MADV_NORMAL}",
        "{value: 22}",
        "{value: 0}",
        "expected value 0, got success, value 22",
    ),
    "mseal": (
        PRE_ANON,
        "mseal: {addr: a, length: PAGE}",
        "{}",
        "{errno: EPERM}",
        "expected errno EPERM, got success",
    ),
    "mlockall": (
        "",
        "mlockall: MCL_CURRENT",
        "{}",
        "{errno: ENOMEM}",
        "expected errno ENOMEM, got success",
    ),
    "munlockall": (
        "",
        "munlockall: {}",
        "{}",
        "{errno: EPERM}",
        "expected errno EPERM, got success",
    ),
    "setrlimit": (
        "",
        "setrlimit: {resource: RLIMIT_MEMLOCK, soft: 0}",
        "{}",
        "{errno: EPERM}",
        "expected errno EPERM, got success",
    ),
    "setuid": ("", "setuid: 65534", "{}", "{errno: EPERM}", "expected errno EPERM, got success"),
    "call": (
        PRE_ANON,
        "call: a",
        "{signal: SIGSEGV, si_code: SEGV_ACCERR, si_addr: a}",
        "{value: 42}",
        "expected value 42, got SIGSEGV/SEGV_ACCERR at a",
    ),
    "sleep": ("", "sleep: 1", "{}", "{errno: EINTR}", "expected errno EINTR, got success"),
    # the executor's own start faults pages in: a process has had minor faults by its first step
    "getrusage": (
        "",
        "getrusage: {}",
        "{value: {minflt: {ge: 1}}}",
        "{value: {minflt: 0}}",
        "expected value {minflt: 0}",
    ),
    "proc_maps": (
        PRE_ANON,
        "proc_maps: a",
        "{value: {perms: rw-p, offset: 0}}",
        "{value: {perms: rw-s}}",
        "expected value {perms: 'rw-s'}",
    ),
    "proc_status": (
        "",
        "proc_status: {}",
        "{value: {VmSize: {gt: 0}}}",
        "{value: {VmSize: 0}}",
        "expected value {VmSize: 0}",
    ),
    "sync_file_range": (
        PRE_FILE,
        "sync_file_range: {fd: f, flags: SYNC_FILE_RANGE_WRITE}",
        "{}",
        "{errno: EINVAL}",
        "expected errno EINVAL, got success",
    ),
    "syncfs": (PRE_FILE, "syncfs: f", "{}", "{errno: EBADF}", "expected errno EBADF, got success"),
}

OPERATIONS.update(PEER_GAP_OPERATIONS)
OPERATIONS.update(FORMS_OPERATIONS)


def _case(pre: str, step: str, expect: str) -> str:
    return (
        f"id: op\ntitle: op\nsteps:\n{textwrap.dedent(pre).strip() and pre.rstrip()}\n"
        f"  - {step}\n    expect: {expect}\n".replace("\n\n", "\n")
    )


def _only(results):
    return next(iter(results.values())) if len(results) == 1 else results["tmpfs"]


# power_cut never returns: its self-tests boot guests (tests/durability/test_power_cut_vm.py).
# power_cut runs in its own boots; core needs provision.core (guests only): its right/wrong pair
# is in tests/vm/test_vm_swap_core.py
IN_GUESTS = {"power_cut", "core"}
# A thread is joined after its step: their pairs are in tests/lang/test_threads.py (OPERATIONS).
THREAD_OPS = {"thread", "join", "grow_stack"}


def test_every_operation_has_a_self_test():
    from runner.lang.ops import OPS

    assert set(OPS) - IN_GUESTS - THREAD_OPS == set(OPERATIONS)


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_right_expectation_passes(run_yaml, op):
    pre, step, good, _, _ = OPERATIONS[op]
    result = _only(run_yaml(_case(pre, step, good), backings=["tmpfs", "anon"]))
    assert result.outcome == "passed", result.reason


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_wrong_expectation_fails_with_its_message(run_yaml, op):
    pre, step, _, bad, text = OPERATIONS[op]
    result = _only(run_yaml(_case(pre, step, bad), backings=["tmpfs", "anon"]))
    assert result.outcome == "failed", result.reason
    assert text in result.reason
    assert f"({op})" in result.reason
