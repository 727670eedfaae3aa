"""The syscall layer: libc through ctypes, errno kept, raw memory accesses at addresses.

Python's ``mmap`` module refuses mappings longer than the file and turns faults into exceptions,
so every memory operation here is a direct libc call, and loads and stores are real CPU accesses
(``memmove`` with the GIL released) that fault as a C program's would.
"""

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
    },
}
SYSCALLS = SYSCALL_NUMBERS.get(ARCH, SYSCALL_NUMBERS["x86_64"])

MAP_FAILED = (1 << (8 * ctypes.sizeof(c_void_p))) - 1


def _fn(name: str, restype, *argtypes):
    f = getattr(_libc, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_mmap = _fn("mmap", c_void_p, c_void_p, c_size_t, c_int, c_int, c_int, ctypes.c_int64)
_munmap = _fn("munmap", c_int, c_void_p, c_size_t)
_mprotect = _fn("mprotect", c_int, c_void_p, c_size_t, c_int)
_msync = _fn("msync", c_int, c_void_p, c_size_t, c_int)
_madvise = _fn("madvise", c_int, c_void_p, c_size_t, c_int)
_mlock = _fn("mlock", c_int, c_void_p, c_size_t)
_munlock = _fn("munlock", c_int, c_void_p, c_size_t)
_mlockall = _fn("mlockall", c_int, c_int)
_munlockall = _fn("munlockall", c_int)
_mremap = _fn("mremap", c_void_p, c_void_p, c_size_t, c_size_t, c_int, c_void_p)
_mincore = _fn("mincore", c_int, c_void_p, c_size_t, ctypes.POINTER(ctypes.c_ubyte))
_syscall = _libc.syscall
_syscall.restype = c_long
_sem_init = _fn("sem_init", c_int, c_void_p, c_int, ctypes.c_uint)
_sem_post = _fn("sem_post", c_int, c_void_p)
_sem_wait = _fn("sem_wait", c_int, c_void_p)
_write = _fn("write", ctypes.c_ssize_t, c_int, c_void_p, c_size_t)
_read = _fn("read", ctypes.c_ssize_t, c_int, c_void_p, c_size_t)
_pwrite = _fn("pwrite", ctypes.c_ssize_t, c_int, c_void_p, c_size_t, ctypes.c_int64)
_pread = _fn("pread", ctypes.c_ssize_t, c_int, c_void_p, c_size_t, ctypes.c_int64)
_posix_madvise = _fn("posix_madvise", c_int, c_void_p, c_size_t, c_int)
_posix_fadvise = _fn("posix_fadvise", c_int, c_int, ctypes.c_int64, ctypes.c_int64, c_int)
_fcntl = _fn("fcntl", c_int, c_int, c_int, ctypes.c_ulong)
_prctl = _fn("prctl", c_int, c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)


def _fail() -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err))


def _check(rc: int) -> int:
    if rc == -1:
        raise _fail()
    return rc


def _check_addr(addr: int | None) -> int:
    if addr is None:
        return 0
    if addr == MAP_FAILED:
        raise _fail()
    return addr


def _u(value: int) -> int:
    """Wrap an integer to the platform's unsigned word, as C would on a cast."""
    return value & MAP_FAILED


def mmap(addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    return _check_addr(_mmap(_u(addr) or None, _u(length), prot, flags, fd, offset))


def munmap(addr: int, length: int) -> None:
    _check(_munmap(_u(addr), _u(length)))


def mprotect(addr: int, length: int, prot: int) -> None:
    _check(_mprotect(_u(addr), _u(length), prot))


def msync(addr: int, length: int, flags: int) -> None:
    _check(_msync(_u(addr), _u(length), flags))


def madvise(addr: int, length: int, advice: int) -> None:
    _check(_madvise(_u(addr), _u(length), advice))


def mlock(addr: int, length: int, flags: int = 0) -> None:
    if flags:
        syscall("mlock2", _u(addr), _u(length), flags)
    else:
        _check(_mlock(_u(addr), _u(length)))


def munlock(addr: int, length: int) -> None:
    _check(_munlock(_u(addr), _u(length)))


def mlockall(flags: int) -> None:
    _check(_mlockall(flags))


def munlockall() -> None:
    _check(_munlockall())


def mremap(addr: int, old_length: int, new_length: int, flags: int, new_addr: int) -> int:
    return _check_addr(
        _mremap(_u(addr), _u(old_length), _u(new_length), flags, _u(new_addr) or None)
    )


def mincore(addr: int, length: int, page: int, vec_addr: int | None = None) -> list[int]:
    """Residency per page; with ``vec_addr`` the kernel writes to that raw address instead."""
    if vec_addr is not None:
        _check(
            _mincore(
                _u(addr), _u(length), ctypes.cast(_u(vec_addr), ctypes.POINTER(ctypes.c_ubyte))
            )
        )
        return []
    pages = (length + page - 1) // page
    vec = (ctypes.c_ubyte * max(pages, 1))()
    _check(_mincore(_u(addr), _u(length), vec))
    return [b & 1 for b in vec[:pages]]


def write_from(fd: int, addr: int, length: int, offset: int | None) -> int:
    """write(2)/pwrite(2) from memory at ``addr``: a bad address is EFAULT, not a fault."""
    if offset is None:
        return _check(_write(fd, _u(addr), _u(length)))
    return _check(_pwrite(fd, _u(addr), _u(length), offset))


def read_into(fd: int, addr: int, length: int, offset: int | None) -> int:
    if offset is None:
        return _check(_read(fd, _u(addr), _u(length)))
    return _check(_pread(fd, _u(addr), _u(length), offset))


def posix_madvise(addr: int, length: int, advice: int) -> int:
    """The error number it returns (it never sets errno)."""
    return _posix_madvise(_u(addr), _u(length), advice)


def posix_fadvise(fd: int, offset: int, length: int, advice: int) -> int:
    return _posix_fadvise(fd, offset, length, advice)


def fcntl(fd: int, cmd: int, arg: int) -> int:
    return _check(_fcntl(fd, cmd, _u(arg)))


def call(addr: int) -> int:
    """Call the code at ``addr`` as ``int (*)(void)``: a fetch fault is a real signal."""
    return ctypes.CFUNCTYPE(ctypes.c_int)(_u(addr))()


def syscall(name: str, *args: int) -> int:
    """Call a syscall by name with integer (or pointer) arguments."""
    ctypes.set_errno(0)
    return _check(_syscall(c_long(SYSCALLS[name]), *(c_long(_signed(a)) for a in args)))


def _signed(value: int) -> int:
    value = _u(value)
    return value - (MAP_FAILED + 1) if value > MAP_FAILED >> 1 else value


def syscall_exists(name: str) -> bool:
    """Probe a syscall with harmless invalid arguments: ENOSYS means the kernel lacks it."""
    if name not in SYSCALLS:
        return False
    try:
        syscall(name, -1, 0, 0, 0, 0, 0)
    except OSError as e:
        return e.errno != 38  # ENOSYS
    return True


def memfd_create(name: str, flags: int) -> int:
    buf = ctypes.create_string_buffer(name.encode())  # kept alive until the call returns
    return syscall("memfd_create", ctypes.addressof(buf), flags)


class CachestatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class Cachestat(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")
    ]


def cachestat(
    fd: int,
    offset: int,
    length: int,
    flags: int = 0,
    range_addr: int | None = None,
    cstat_addr: int | None = None,
) -> dict[str, int]:
    """The page-cache state of a file range; raw ``*_addr`` pointers replace our structs."""
    rng, out = CachestatRange(offset, length), Cachestat()
    r = ctypes.addressof(rng) if range_addr is None else range_addr
    c = ctypes.addressof(out) if cstat_addr is None else cstat_addr
    syscall("cachestat", fd, r, c, flags)
    return {field[0]: getattr(out, field[0]) for field in Cachestat._fields_}


def mseal(addr: int, length: int, flags: int = 0) -> None:
    syscall("mseal", addr, length, flags)


def sem_init(addr: int, pshared: int, value: int) -> None:
    _check(_sem_init(_u(addr), pshared, value))


def sem_post(addr: int) -> None:
    _check(_sem_post(_u(addr)))


def sem_wait(addr: int) -> None:
    while _sem_wait(_u(addr)) == -1:
        if ctypes.get_errno() != 4:  # EINTR: retry, as C callers do
            raise _fail()


def load(addr: int, length: int) -> bytes:
    """A real CPU load of ``length`` bytes at ``addr`` (faults as a C load would)."""
    buf = ctypes.create_string_buffer(length)
    ctypes.memmove(buf, _u(addr), length)
    return buf.raw


def store(addr: int, data: bytes) -> None:
    """A real CPU store of ``data`` at ``addr``."""
    ctypes.memmove(_u(addr), data, len(data))


def prctl(option: int, arg2: int = 0) -> None:
    _check(_prctl(option, arg2, 0, 0, 0))


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

FUTEX_WAIT, FUTEX_WAKE = 0, 1


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def futex_wait(addr: int, expected: int, seconds: float) -> None:
    """Sleep while the 32-bit word at ``addr`` holds ``expected`` (at most ``seconds``)."""
    ts = Timespec(int(seconds), int((seconds % 1) * 1e9))
    try:
        syscall("futex", addr, FUTEX_WAIT, expected, ctypes.addressof(ts), 0, 0)
    except OSError as e:
        if e.errno not in (11, 4, 110):  # EAGAIN, EINTR, ETIMEDOUT are the normal wake-ups
            raise


def futex_wake(addr: int) -> None:
    syscall("futex", addr, FUTEX_WAKE, 0x7FFFFFFF, 0, 0, 0)
