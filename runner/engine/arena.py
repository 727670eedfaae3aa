"""The page shared by the harness and every process of a case, made before the first fork.

It holds the cross-process events of ``post``/``wait_for``, an abort flag that releases waiters
when another process has already failed, and one slot per process for the siginfo that the
SIGSEGV/SIGBUS handler records just before the process dies. A process-shared semaphore counts
the processes a case may still start, so a case that forks without end is stopped by the case
itself: root is not bound by RLIMIT_NPROC, and a count the harness polled would lag the forks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap as _mmap
from dataclasses import dataclass

from runner.engine import libc

MAX_EVENTS = 256
SIG_SLOTS = 512
_EVENTS_OFF = 0
_ABORT_OFF = MAX_EVENTS * 4
_SLOTS_OFF = _ABORT_OFF + 64
_PROCS_OFF = _SLOTS_OFF + SIG_SLOTS * 24  # after the slots; sem_t wants 8-byte alignment
_SEM_T_SIZE = 32  # sizeof(sem_t) on 64-bit glibc and musl
MAX_CASE_PROCESSES = 32  # every process of one case, fork children included

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_sem_init = _libc.sem_init
_sem_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint]
_sem_trywait = _libc.sem_trywait
_sem_trywait.argtypes = [ctypes.c_void_p]


class SigSlot(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_int32),
        ("signo", ctypes.c_int32),
        ("code", ctypes.c_int32),
        ("_pad", ctypes.c_int32),
        ("addr", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class SigInfo:
    signo: int
    code: int
    addr: int
    ip: int | None = None  # the faulting instruction's address, where the executor records it


class Arena:
    """One shared anonymous mapping, made for one case and unmapped after its verdict: a
    process that outlived its case (or forged its words) can touch no later case's arena."""

    SIZE = _PROCS_OFF + _SEM_T_SIZE

    def __init__(self) -> None:
        # MAP_SHARED|MAP_ANONYMOUS: survives fork shared
        self.base = libc.mmap(
            0,
            self.SIZE,
            _mmap.PROT_READ | _mmap.PROT_WRITE,
            _mmap.MAP_SHARED | _mmap.MAP_ANONYMOUS,
            -1,
            0,
        )

    def close(self) -> None:
        if self.base:
            libc.munmap(self.base, self.SIZE)
            self.base = 0

    def reset(self, max_processes: int = MAX_CASE_PROCESSES) -> None:
        ctypes.memset(self.base, 0, self.SIZE)
        if _sem_init(self.base + _PROCS_OFF, 1, max_processes) != 0:
            raise OSError(ctypes.get_errno(), "sem_init of the process count failed")

    def claim_process(self) -> bool:
        """Take one of the case's process places; False when the case has used them all.

        sem_trywait is atomic across processes, so racing forks cannot overshoot the limit.
        """
        return _sem_trywait(self.base + _PROCS_OFF) == 0

    def event_addr(self, index: int) -> int:
        return self.base + _EVENTS_OFF + 4 * index

    def post(self, index: int) -> None:
        ctypes.c_int32.from_address(self.event_addr(index)).value = 1
        libc.futex_wake(self.event_addr(index))

    def is_posted(self, index: int) -> bool:
        return ctypes.c_int32.from_address(self.event_addr(index)).value != 0

    def wait(self, index: int, slice_s: float = 0.05) -> bool:
        """Block until event ``index`` is posted; False when the case was aborted meanwhile."""
        while not self.is_posted(index):
            if self.aborted:
                return False
            libc.futex_wait(self.event_addr(index), 0, slice_s)
        return True

    @property
    def aborted(self) -> bool:
        return ctypes.c_int32.from_address(self.base + _ABORT_OFF).value != 0

    def abort(self) -> None:
        """Release every waiter: some process already failed, so the case cannot go on."""
        ctypes.c_int32.from_address(self.base + _ABORT_OFF).value = 1
        for i in range(MAX_EVENTS):
            libc.futex_wake(self.event_addr(i))

    def slot(self, pid: int) -> SigSlot:
        return SigSlot.from_address(
            self.base + _SLOTS_OFF + (pid % SIG_SLOTS) * ctypes.sizeof(SigSlot)
        )

    def siginfo(self, pid: int) -> SigInfo | None:
        """What the handler recorded for ``pid``, if it recorded anything."""
        s = self.slot(pid)
        if s.pid != pid:
            return None
        return SigInfo(s.signo, s.code, s.addr)
