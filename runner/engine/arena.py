"""The page shared by the harness and every process of a case, made before the first fork.

It holds the cross-process events of ``post``/``wait_for``, an abort word that releases waiters
when another process has already failed, and one slot per process for the siginfo that the
SIGSEGV/SIGBUS handler records just before the process dies. A process-shared semaphore counts
the processes a case may still start (the case's first process sets it, before any step), so a
case that forks without end is stopped by the case itself: root is not bound by RLIMIT_NPROC,
and a count the harness polled would lag the forks.
The native executor (executor.c) uses the same layout, then its own slots
(runner.engine.native.server.NativeArena).
"""

from __future__ import annotations

import ctypes
import mmap as _mmap
import os
from dataclasses import dataclass

MAX_EVENTS = 256
SIG_SLOTS = 512
_EVENTS_OFF = 0
ABORT_OFF = MAX_EVENTS * 4
_SLOTS_OFF = ABORT_OFF + 64
_PROCS_OFF = _SLOTS_OFF + SIG_SLOTS * 24  # after the slots; sem_t wants 8-byte alignment
_SEM_T_SIZE = 32  # sizeof(sem_t) on 64-bit glibc and musl
MAX_CASE_PROCESSES = 32  # every process of one case, fork children included


class SigSlot(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_int32),
        ("signo", ctypes.c_int32),
        ("code", ctypes.c_int32),
        ("tid", ctypes.c_int32),  # the thread that faulted (the native executor's handler)
        ("addr", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class SigInfo:
    signo: int
    code: int
    addr: int
    ip: int | None = None  # the faulting instruction's address, where the executor records it
    tid: int = 0  # the thread whose fault it was (0: not recorded)


class Arena:
    """One shared page in a memfd, made for one case (the fork server maps it for that case)
    and closed after its verdict: a process that outlived its case (or forged its words) can
    touch no later case's arena."""

    SIZE = _PROCS_OFF + _SEM_T_SIZE

    def __init__(self) -> None:
        self.fd = os.memfd_create("mmapconf-arena", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.SIZE)
        self._map = _mmap.mmap(self.fd, self.SIZE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.base = 0
            self._map.close()

    def slot(self, pid: int) -> SigSlot:
        return SigSlot.from_address(
            self.base + _SLOTS_OFF + (pid % SIG_SLOTS) * ctypes.sizeof(SigSlot)
        )

    def siginfo(self, pid: int) -> SigInfo | None:
        """What the handler recorded for ``pid``, if it recorded anything."""
        s = self.slot(pid)
        if s.pid != pid:
            return None
        return SigInfo(s.signo, s.code, s.addr, tid=s.tid)
