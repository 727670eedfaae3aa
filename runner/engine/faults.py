"""SA_SIGINFO handlers for SIGSEGV and SIGBUS in a case process.

The handler records signo, si_code and si_addr in the process's arena slot and returns. It is
installed with SA_RESETHAND, so the disposition is back to default when it returns: the faulting
access runs again, faults again, and the process dies by that very signal, which its parent sees
in the wait status.
"""

from __future__ import annotations

import ctypes
import os
import signal

from runner.engine import libc
from runner.engine.arena import Arena

SA_SIGINFO = 0x4
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

_HANDLER_T = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class _Sigaction(ctypes.Structure):
    _fields_ = [
        ("sa_sigaction", _HANDLER_T),
        ("sa_mask", ctypes.c_ulong * 16),
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


_sigaction = libc._fn(
    "sigaction", ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Sigaction), ctypes.c_void_p
)

# siginfo_t on 64-bit Linux: int si_signo, si_errno, si_code; then the union at offset 16,
# whose first member for SIGSEGV/SIGBUS is void *si_addr.
_SI_CODE_OFF, _SI_ADDR_OFF = 8, 16

# The arena the handler records into: set by install(), read by the handler when a fault comes.
_arena: list[Arena] = []


def _handler(signo: int, info: int, _context: int) -> None:
    slot = _arena[0].slot(os.getpid())
    slot.signo = signo
    slot.code = ctypes.c_int.from_address(info + _SI_CODE_OFF).value
    slot.addr = ctypes.c_uint64.from_address(info + _SI_ADDR_OFF).value
    slot.pid = os.getpid()


# Made once, at import in the harness: making a ctypes callback costs about 0.2 ms (a libffi
# closure and its executable page), which every forked case process would otherwise pay again.
_CALLBACK = _HANDLER_T(_handler)
_ACT = _Sigaction()
_ACT.sa_sigaction = _CALLBACK
_ACT.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER


def install(arena: Arena) -> None:
    """Install the recording handlers (in a freshly forked case process)."""
    _arena[:] = [arena]
    for sig in (signal.SIGSEGV, signal.SIGBUS):
        libc._check(_sigaction(sig, ctypes.byref(_ACT), None))
