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

import os
import struct
from dataclasses import dataclass

MAX_EVENTS = 256
SIG_SLOTS = 512
_EVENTS_OFF = 0
ABORT_OFF = MAX_EVENTS * 4
_SLOTS_OFF = ABORT_OFF + 64
_PROCS_OFF = _SLOTS_OFF + SIG_SLOTS * 24  # after the slots; sem_t wants 8-byte alignment
_SEM_T_SIZE = 32  # sizeof(sem_t) on 64-bit glibc and musl
MAX_CASE_PROCESSES = 32  # every process of one case, fork children included


# one siginfo slot: pid, signo, code, the thread that faulted (the native executor's handler), addr
_SIGSLOT = struct.Struct("<iiiiQ")


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
    touch no later case's arena. The harness never maps it: it reads it with pread once the
    case has ended (a mapping of its own, its page faults and its unmapping cost a case-run
    more than 50 us; the reads a few)."""

    SIZE = _PROCS_OFF + _SEM_T_SIZE

    def __init__(self) -> None:
        self.fd = os.memfd_create("mmapconf-arena", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.SIZE)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read(self, offset: int, size: int) -> bytes:
        """SIZE bytes of the page from OFFSET (zeros where nothing was written)."""
        return os.pread(self.fd, size, offset)

    def siginfo(self, pid: int) -> SigInfo | None:
        """What the handler recorded for ``pid``, if it recorded anything."""
        at = _SLOTS_OFF + (pid % SIG_SLOTS) * _SIGSLOT.size
        slot_pid, signo, code, tid, addr = _SIGSLOT.unpack(self.read(at, _SIGSLOT.size))
        if slot_pid != pid:
            return None
        return SigInfo(signo, code, addr, tid=tid)
