"""The confinement of a native case, as words the executor applies in the case's first process.

The same Landlock rules and seccomp filter as runner/sandbox.py, with one difference that
follows from there being no interpreter in the case: nothing of the Python installation needs
to stay readable, only /proc (smaps, maps, status, fd links) and the devices of the case language.
"""

from __future__ import annotations

import functools
import os

from runner.engine import sandbox

_PROC_RIGHTS = sandbox.READ_FILE | sandbox.READ_DIR
_DEVICE_RIGHTS = sandbox.READ_FILE | sandbox.WRITE_FILE | sandbox.TRUNCATE | sandbox.IOCTL_DEV


@functools.cache
def _abi() -> int:
    return sandbox.abi()


@functools.cache
def _seccomp_words(machine: str) -> tuple[int, ...]:
    if machine != "x86_64":  # sandbox.py defines its list for x86-64 only
        return ()
    words = (code | jt << 16 | jf << 24 | k << 32 for code, jt, jf, k in sandbox._PROG)
    return tuple(w - (1 << 64) if w >> 63 else w for w in words)


def spec(scratch: str | None, abi: int | None = None, machine: str | None = None) -> list[int]:
    """abi, handled fs/net/scope, attr size, rules (rights, path), then the filter. ABI and
    MACHINE: the Landlock ABI and architecture of the kernel the case runs on (default this
    one's; a qemu guest's run is planned on the host)."""
    version = _abi() if abi is None else abi
    words: list[int] = [version]
    if version >= 1:
        fs = sandbox._fs_rights(version)
        net = sandbox._NET_ALL if version >= 4 else 0
        scope = sandbox._SCOPE_ALL if version >= 6 else 0
        size = 24 if version >= 6 else 16 if version >= 4 else 8
        rules = [(fs, scratch)] if scratch else []
        rules += [(_DEVICE_RIGHTS & fs, d) for d in sandbox.DEVICES]
        rules += [(sandbox.READ_DIR, "/"), (_PROC_RIGHTS, "/proc")]
        words += [fs, net, scope, size, len(rules)]
        for rights, path in rules:
            raw = path.encode()
            words += [rights, len(raw)]
            padded = raw + b"\0" * (-len(raw) % 8)
            words += [
                int.from_bytes(padded[i : i + 8], "little", signed=True)
                for i in range(0, len(padded), 8)
            ]
    else:
        words += [0, 0, 0, 0, 0]
    prog = _seccomp_words(machine or os.uname().machine)
    return [*words, len(prog), *prog]
