"""The few system calls the harness makes through ctypes, errno kept: raw syscalls by name (and
the probe of which the kernel has), and prctl."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from runner.lang.names import ARCH

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

c_void_p, c_size_t, c_int, c_long = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_long

# Syscalls without a glibc wrapper on every libc this runs on; numbers are per architecture.
SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {
        "futex": 202,
        "memfd_create": 319,
        "mlock2": 325,
        "pkey_alloc": 330,
        "cachestat": 451,
        "mseal": 462,
        "process_madvise": 440,
        "pidfd_open": 434,
        "close_range": 436,
        "io_uring_setup": 425,
        "memfd_secret": 447,
    },
    "aarch64": {
        "futex": 98,
        "memfd_create": 279,
        "mlock2": 284,
        "pkey_alloc": 289,
        "cachestat": 451,
        "mseal": 462,
        "process_madvise": 440,
        "pidfd_open": 434,
        "close_range": 436,
        "io_uring_setup": 425,
        "memfd_secret": 447,
    },
}
SYSCALLS = SYSCALL_NUMBERS.get(ARCH, SYSCALL_NUMBERS["x86_64"])

_WORD = (1 << (8 * ctypes.sizeof(c_void_p))) - 1
_syscall = _libc.syscall
_syscall.restype = c_long
_prctl = _libc.prctl
_prctl.restype = c_int
_prctl.argtypes = [c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(rc: int) -> int:
    if rc == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def syscall(name: str, *args: int) -> int:
    """Call a syscall by name with integer (or pointer) arguments."""
    ctypes.set_errno(0)
    return _check(_syscall(c_long(SYSCALLS[name]), *(c_long(_signed(a)) for a in args)))


def _signed(value: int) -> int:
    value &= _WORD
    return value - (_WORD + 1) if value > _WORD >> 1 else value


def syscall_exists(name: str) -> bool:
    """Probe a syscall with harmless invalid arguments: ENOSYS means the kernel lacks it."""
    if name not in SYSCALLS:
        return False
    try:
        syscall(name, -1, 0, 0, 0, 0, 0)
    except OSError as e:
        return e.errno != 38  # ENOSYS
    return True


def prctl(option: int, arg2: int = 0) -> None:
    _check(_prctl(option, arg2, 0, 0, 0))


PR_SET_PDEATHSIG = 1
