"""The confinement of a native case, as words for the executor: the mount view its init makes
(``view``), then the Landlock rules and seccomp filter of runner.engine.sandbox that the case's
first process applies (``spec``). With no interpreter in the case, nothing of the Python
installation needs to stay readable: only /proc (smaps, maps, status, fd links) and the devices.
"""

from __future__ import annotations

import array
import functools
import os

from runner.engine import confine, sandbox

VIEW_NONE, VIEW_PLAIN, VIEW_BIND, VIEW_FRESH = range(4)  # struct view in executor.c

_PROC_RIGHTS = sandbox.READ_FILE | sandbox.READ_DIR
_DEVICE_RIGHTS = sandbox.READ_FILE | sandbox.WRITE_FILE | sandbox.TRUNCATE | sandbox.IOCTL_DEV


@functools.cache
def _abi() -> int:
    return sandbox.abi()


@functools.cache
def _seccomp_words(machine: str) -> tuple[int, ...]:
    words = (code | jt << 16 | jf << 24 | k << 32 for code, jt, jf, k in sandbox.program(machine))
    return tuple(w - (1 << 64) if w >> 63 else w for w in words)


def spec(scratch: str | None, abi: int | None = None, machine: str | None = None) -> list[int]:
    """abi, handled fs/net/scope, attr size, rules (rights, path), then the filter. ABI and
    MACHINE: the Landlock ABI and architecture of the kernel the case runs on (default this
    one's; a qemu guest's run is planned on the host)."""
    version = _abi() if abi is None else abi
    head, fixed, nfixed, prog = _fixed_words(version, machine or os.uname().machine)
    if version < 1:
        return [*head, *prog]
    own = [sandbox.fs_rights(version), *strings(scratch)] if scratch else []
    return [*head, nfixed + bool(own), *own, *fixed, *prog]


@functools.cache
def _fixed_words(
    version: int, machine: str
) -> tuple[tuple[int, ...], tuple[int, ...], int, tuple[int, ...]]:
    """What SPEC's words are for every case alike, made once: the words before the count of
    rules, the rules every case has (the devices, / and /proc), their count, and the filter
    with its length."""
    prog = (len(_seccomp_words(machine)), *_seccomp_words(machine))
    if version < 1:
        return (version, 0, 0, 0, 0, 0), (), 0, prog
    fs = sandbox.fs_rights(version)
    net = sandbox.NET_ALL if version >= 4 else 0
    scope = sandbox.SCOPE_ALL if version >= 6 else 0
    size = 24 if version >= 6 else 16 if version >= 4 else 8
    rules = [(_DEVICE_RIGHTS & fs, d) for d in sandbox.DEVICES]
    rules += [(sandbox.READ_DIR, "/"), (_PROC_RIGHTS, "/proc")]
    words: list[int] = []
    for rights, path in rules:
        words += [rights, *strings(path)]
    return (version, fs, net, scope, size), tuple(words), len(rules), prog


def request_words(conf: confine.Confinement, scratch: str | None) -> bytes:
    """The view and the spec of a case as its RUN request carries them (native int64 words):
    for a case without a scratch folder the same every time, so packed once."""
    if not scratch:
        return _plain_words(conf.template >= 0)
    return array.array("q", view(conf, scratch) + spec(scratch)).tobytes()


@functools.cache
def _plain_words(template: bool) -> bytes:
    return array.array("q", _plain_view(template) + spec(None)).tobytes()


def _plain_view(template: bool) -> list[int]:
    return [VIEW_PLAIN if template else VIEW_NONE, *strings("", "", "")]


def view(conf: confine.Confinement, scratch: str | None) -> list[int]:
    """How the case's init makes its mount view from the template (executor.c enter_view):
    mode, then the mount point, filesystem type and options of a fresh instance."""
    if conf.template < 0 or not scratch:
        return _plain_view(conf.template >= 0)
    point = confine.hidden_parent(conf, scratch)
    if point is None:  # a folder the template shows read-only: bound writable into it
        return [VIEW_BIND, *strings("", "", "")]
    fstype = conf.hidden[point]
    return [VIEW_FRESH, *strings(point, fstype, confine.fresh_options(fstype))]


def strings(*texts: str) -> list[int]:
    """Each text as executor.c's req_str reads it: its length, then its bytes in words."""
    words: list[int] = []
    for text in texts:
        raw = text.encode()
        padded = raw + b"\0" * (-len(raw) % 8)
        words.append(len(raw))
        words += [
            int.from_bytes(padded[i : i + 8], "little", signed=True)
            for i in range(0, len(padded), 8)
        ]
    return words
