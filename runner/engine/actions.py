"""What each operation does inside a case process. Each takes the process and resolved args.

Failures surface as OSError (their errno is what the step observed); a case that cannot be
carried out as written raises CaseRuntimeError.
"""

from __future__ import annotations

import os
import resource
import signal
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

from runner.engine import libc
from runner.engine.arena import Arena
from runner.errors import CaseRuntimeError
from runner.lang import names
from runner.lang.validate import format_fields


class Process(Protocol):
    """What an action may use of the case process it runs in (runner.engine.process)."""

    arena: Arena
    env: dict[str, Any]
    files: dict[str, int]
    reserved_fds: set[int]
    scratch: str | None
    page: int

    def eval(self, value: Any) -> int: ...

    def send(self, **msg: Any) -> None: ...


Action = Callable[[Process, dict[str, Any]], Any]


def encode_data(proc: Process, args: dict[str, Any]) -> bytes:
    if "data" in args:
        return args["data"].encode()
    if "hex" in args:
        return bytes.fromhex(args["hex"])
    fmt, fields = args["format"], format_fields(args["format"]) or []
    values = [
        (v.encode() if code in "sp" else proc.eval(v)) if isinstance(v, str) else v
        for code, v in zip(fields, args["values"], strict=True)
    ]
    try:
        return struct.pack(fmt, *values)
    except struct.error as e:
        raise CaseRuntimeError(f"format {fmt!r}: {e}") from None


def decode_format(fmt: str, raw: bytes) -> Any:
    values = [
        v.rstrip(b"\0").decode("utf-8", "replace") if isinstance(v, bytes) else v
        for v in struct.unpack(fmt, raw)
    ]
    return values[0] if len(values) == 1 else values


def _file(proc: Process, a: dict[str, Any]) -> None:
    name = a["file"]
    if proc.scratch is None:
        fd = libc.memfd_create(name, 0)
    else:
        fd = os.open(
            os.path.join(proc.scratch, name), os.O_RDWR | os.O_CREAT | os.O_EXCL, a["mode"]
        )
    proc.files[name] = fd
    proc.env[name] = fd
    if any(k in a for k in ("data", "hex", "format")):
        os.write(fd, encode_data(proc, a))
    if "size" in a:
        os.ftruncate(fd, a["size"])


# Folders and /proc files outside the scratch folder are opened for reading only: no O_CREAT,
# O_TMPFILE or write access there.
_READ_ONLY_PATHS = ("/", ".", "/proc/self/maps")
_READ_FLAGS = (
    os.O_RDONLY | os.O_DIRECTORY | os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
)


def _system_path(proc: Process, path: str, flags: int) -> str:
    if path in _READ_ONLY_PATHS and flags & ~_READ_FLAGS:
        raise CaseRuntimeError(
            f"{path} may only be opened for reading (O_RDONLY, O_DIRECTORY, O_PATH)"
        )
    if path != ".":
        return path
    if proc.scratch is None:
        raise CaseRuntimeError("'.' (the scratch folder) does not exist on the memfd backing")
    return proc.scratch


def _path(proc: Process, name: str) -> str:
    if proc.scratch is None:
        return f"/proc/self/fd/{proc.files[name]}"
    return os.path.join(proc.scratch, name)


def _open(proc: Process, a: dict[str, Any]) -> int:
    path = _path(proc, a["file"]) if "file" in a else _system_path(proc, a["path"], a["flags"])
    return os.open(path, a["flags"], a["mode"])


def _close(proc: Process, a: dict[str, Any]) -> None:
    if a["fd"] in proc.reserved_fds:
        raise CaseRuntimeError(f"fd {a['fd']} belongs to the harness, not to the case")
    os.close(a["fd"])


def _unlink(proc: Process, a: dict[str, Any]) -> None:
    if proc.scratch is None:
        raise CaseRuntimeError(
            "unlink has no meaning on the memfd backing: limit the case's backings"
        )
    os.unlink(_path(proc, a["file"]))


def _write(proc: Process, a: dict[str, Any]) -> int:
    if "addr" in a:
        return libc.write_from(a["fd"], a["addr"], a["length"], a.get("offset"))
    data = encode_data(proc, a) if "length" not in a else bytes(a["length"])
    if "offset" in a:
        return os.pwrite(a["fd"], data, a["offset"])
    return os.write(a["fd"], data)


def _read(proc: Process, a: dict[str, Any]) -> bytes | int:
    if "addr" in a:
        return libc.read_into(a["fd"], a["addr"], a["length"], a.get("offset"))
    if "offset" in a:
        return os.pread(a["fd"], a["length"], a["offset"])
    return os.read(a["fd"], a["length"])


def _fstat(proc: Process, a: dict[str, Any]) -> dict[str, int]:
    st = os.fstat(a["fd"])
    return {
        "size": st.st_size,
        "blocks": st.st_blocks,
        "mode": st.st_mode,
        "nlink": st.st_nlink,
        "ino": st.st_ino,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "blksize": st.st_blksize,
        "atime_ns": st.st_atime_ns,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    }


def _mmap(proc: Process, a: dict[str, Any]) -> int:
    return libc.mmap(a["addr"], a["length"], a["prot"], a["flags"], a["fd"], a["offset"])


def _load(proc: Process, a: dict[str, Any]) -> Any:
    if "format" in a:
        return decode_format(a["format"], libc.load(a["addr"], struct.calcsize(a["format"])))
    return libc.load(a["addr"], a.get("length", 1))


def _wait(proc: Process, a: dict[str, Any]) -> dict[str, Any]:
    """waitpid(2). The harness never sees how a child reaped here ended, so the reaper tells it
    (``reaped``): the verdict judges the child's open step by that ending, as for any process."""
    _, status = os.waitpid(a["pid"], 0)
    if not os.WIFSIGNALED(status):
        proc.send(t="reaped", child=a["pid"], exit=os.WEXITSTATUS(status), signal=None)
        return {"exit": os.WEXITSTATUS(status)}
    signo = os.WTERMSIG(status)
    proc.send(t="reaped", child=a["pid"], exit=None, signal=signo)
    sig = names.SIGNAL_NAME.get(signo, str(signo))
    out: dict[str, Any] = {"signal": sig}
    info = proc.arena.siginfo(a["pid"])
    if info is not None and info.signo == signo:
        out["si_code"] = names.si_code_name(sig, info.code)
        out["si_addr"] = info.addr
    return out


def _smaps(proc: Process, a: dict[str, Any]) -> dict[str, Any]:
    addr = a["addr"]
    found: dict[str, Any] | None = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and ":" not in head:
                if found is not None:
                    break
                start, end = (int(x, 16) for x in head.split("-"))
                if start <= addr < end:
                    found = {"start": start, "end": end}
            elif found is not None:
                key, _, rest = line.partition(":")
                parts = rest.split()
                found[key] = int(parts[0]) if parts and parts[0].isdigit() else rest.strip()
    if found is None:
        raise OSError(14, "no mapping contains that address")  # EFAULT: nothing mapped there
    return found


def _kill(proc: Process, a: dict[str, Any]) -> None:
    """kill(2), but only within the case's own process group: as root, pid -1 would be the
    whole machine."""
    pid, group = a["pid"], os.getpgrp()
    if pid in (0, -group) or (pid > 0 and os.getpgid(pid) == group):
        signo = names.SIGNAL[a["signal"]]
        # Before the signal: kill(0, SIGKILL) ends the sender too. A child its parent waits for
        # and the case itself killed is judged by that wait, not by the step it was in.
        proc.send(t="killed", target=pid, signal=signo)
        os.kill(pid, signo)
        return
    raise CaseRuntimeError(f"kill: pid {pid} is not a process of this case")


def _pipe(proc: Process, a: dict[str, Any]) -> None:
    proc.env[a["read"]], proc.env[a["write"]] = os.pipe()


# The limits the harness sets on every case process; a case may lower them, never raise them
# (root with CAP_SYS_RESOURCE could).
_HARNESS_LIMITS = (resource.RLIMIT_AS, resource.RLIMIT_CORE, resource.RLIMIT_NPROC)


def _setrlimit(proc: Process, a: dict[str, Any]) -> None:
    _, hard = resource.getrlimit(a["resource"])
    new_hard = a.get("hard", hard)
    if a["resource"] in _HARNESS_LIMITS and _above(new_hard, hard):
        raise CaseRuntimeError("setrlimit may lower the harness's limits, not raise them")
    resource.setrlimit(a["resource"], (a["soft"], new_hard))


def _above(value: int, limit: int) -> bool:
    infinity = resource.RLIM_INFINITY
    return limit != infinity and (value == infinity or value > limit)


def _setuid(proc: Process, a: dict[str, Any]) -> None:
    # From root this drops every capability, as the "unprivileged" rows of a catalogue need.
    os.setgroups([])
    os.setgid(a.get("gid", a["uid"]))
    os.setuid(a["uid"])


def _proc_maps(proc: Process, a: dict[str, Any]) -> dict[str, Any]:
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= a["addr"] < end:
                return {
                    "start": start,
                    "end": end,
                    "perms": fields[1],
                    "offset": int(fields[2], 16),
                    "dev": fields[3],
                    "inode": int(fields[4]),
                    "path": fields[5].strip() if len(fields) > 5 else "",
                }
    raise OSError(14, "no mapping contains that address")  # EFAULT


def _proc_status(proc: Process, a: dict[str, Any]) -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key.startswith("Vm"):
                out[key] = int(rest.split()[0])
    return out


ACTIONS: dict[str, Action] = {
    "file": _file,
    "open": _open,
    "close": _close,
    "ftruncate": lambda p, a: os.ftruncate(a["fd"], a["length"]),
    "write": _write,
    "read": _read,
    "fstat": _fstat,
    "fsync": lambda p, a: os.fsync(a["fd"]),
    "fdatasync": lambda p, a: os.fdatasync(a["fd"]),
    "unlink": _unlink,
    "mmap": _mmap,
    "munmap": lambda p, a: libc.munmap(a["addr"], a["length"]),
    "mprotect": lambda p, a: libc.mprotect(a["addr"], a["length"], a["prot"]),
    "msync": lambda p, a: libc.msync(a["addr"], a["length"], a["flags"]),
    "madvise": lambda p, a: libc.madvise(a["addr"], a["length"], a["advice"]),
    "mlock": lambda p, a: libc.mlock(a["addr"], a["length"], a["flags"]),
    "munlock": lambda p, a: libc.munlock(a["addr"], a["length"]),
    "mremap": lambda p, a: libc.mremap(
        a["addr"], a["old_length"], a["new_length"], a["flags"], a["new_addr"]
    ),
    "mincore": lambda p, a: libc.mincore(a["addr"], a["length"], p.page, a.get("vec")),
    "load": _load,
    "store": lambda p, a: libc.store(a["addr"], encode_data(p, a)),
    "wait": _wait,
    "kill": _kill,
    "cachestat": lambda p, a: libc.cachestat(
        a["fd"], a["offset"], a["length"], a["flags"], a.get("range_addr"), a.get("cstat_addr")
    ),
    "smaps": _smaps,
    "sem_init": lambda p, a: libc.sem_init(a["addr"], a["pshared"], a["value"]),
    "sem_post": lambda p, a: libc.sem_post(a["addr"]),
    "sem_wait": lambda p, a: libc.sem_wait(a["addr"]),
    "pipe": _pipe,
    "eventfd": lambda p, a: os.eventfd(a["initval"], a["flags"]),
    "dup": lambda p, a: os.dup(a["fd"]),
    "reopen": lambda p, a: os.open(f"/proc/self/fd/{a['fd']}", a["flags"]),
    "memfd_create": lambda p, a: libc.memfd_create(a["name"], a["flags"]),
    "fcntl": lambda p, a: libc.fcntl(a["fd"], a["cmd"], a["arg"]),
    "fadvise": lambda p, a: libc.posix_fadvise(a["fd"], a["offset"], a["length"], a["advice"]),
    "posix_madvise": lambda p, a: libc.posix_madvise(a["addr"], a["length"], a["advice"]),
    "mseal": lambda p, a: libc.mseal(a["addr"], a["length"], a["flags"]),
    "mlockall": lambda p, a: libc.mlockall(a["flags"]),
    "munlockall": lambda p, a: libc.munlockall(),
    "setrlimit": _setrlimit,
    "setuid": _setuid,
    "call": lambda p, a: libc.call(a["addr"]),
    "sleep": lambda p, a: time.sleep(a["ms"] / 1000),
    "proc_maps": _proc_maps,
    "proc_status": _proc_status,
}

SIGNALS_TO_DEFAULT = (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGCHLD, signal.SIGXFSZ)
