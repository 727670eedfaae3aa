"""Carrying out a case's ``provision:`` (runner/lang/provision.py): before the case, in the
harness; undone after it whatever the outcome, and by the next run if this one is killed
(engine/mounts.py journals and finds everything it makes)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from runner.engine import confine, mounts
from runner.errors import CaseRuntimeError
from runner.lang.model import FileProvision, Provision

# Sysctls the kernel may set short of the value written: a huge-page pool it could not fill.
READ_BACK = ("vm.nr_hugepages",)


def in_guest() -> bool:
    """Whether this harness runs in a disposable guest of `run --kernel` (runner/vm/run.py)."""
    return os.environ.get("MMAPCONF_GUEST") == "1"


def why_not(p: Provision | None) -> str:
    """Why this host cannot provide P ('' when it can): a reason to skip, not a failure."""
    if p is None:
        return ""
    if p.sysctls and not in_guest():
        return "provision.sysctls are set only in a disposable guest (run --kernel)"
    machine_wide = guest_only(p)
    if machine_wide:
        where = "in a guest only (run --kernel)"
        if in_guest():
            where = "by the batch guest only (--guest-runner native)"
        return f"{machine_wide}: machine-wide, made {where}"
    if p.memory_limit is not None:
        no_cgroup = confine.why_no_memory_limit()
        if no_cgroup:
            return f"provision.memory: needs a writable v1 memory controller ({no_cgroup})"
    if p.mount is not None:
        why = mounts.why_cannot_mount(p.mount.fstype)
        if why:
            return f"provision.mount {p.mount.fstype}: {why}"
    if any(f.inode_flags for f in p.files.values()) and os.geteuid() != 0:
        return "provision.files: the harness sets inode flags as root (CAP_LINUX_IMMUTABLE)"
    return ""


def guest_only(p: Provision) -> str:
    """The parts of P only the batch guest makes (swapon and core_pattern are machine-wide), as
    a reason's subject ('' for none)."""
    parts = [name for name, on in (("swap", p.swap_size), ("core", p.core)) if on is not None]
    return " and ".join(f"provision.{name}" for name in parts)


@contextlib.contextmanager
def provided(p: Provision | None, scratch: str | None) -> Iterator[str | None]:
    """The case's scratch folder with P in place: a fresh mount replaces SCRATCH when P asks
    for one; the files are made in it. Everything is undone when the block ends."""
    if p is None:
        yield scratch
        return
    with contextlib.ExitStack() as undo:
        for key, value in p.sysctls.items():
            undo.callback(_set_sysctl, key, _set_sysctl(key, value))
        if p.mount is not None:
            point = undo.enter_context(
                mounts.mounted(p.mount.fstype, p.mount.options, p.mount.size)
            )
            os.chmod(point, 0o1777)  # as a scratch folder is: the case may drop root
            scratch = str(point)
        if p.files and scratch is None:
            raise CaseRuntimeError("provision.files needs a folder (memfd has none)")
        for name, f in p.files.items():
            path = os.path.join(scratch, name)  # type: ignore[arg-type]
            _make(path, f)
            if f.inode_flags:
                undo.callback(mounts.clear_inode_flags, path, f.inode_flags)
                mounts.set_inode_flags(path, f.inode_flags)
        yield scratch


def _set_sysctl(key: str, value: str) -> str:
    """Write VALUE to the sysctl KEY; returns the value it had."""
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path) as f:
            old = f.read().strip()
        with open(path, "w") as f:
            f.write(value)
        with open(path) as f:
            now = f.read().strip()
    except OSError as e:
        raise CaseRuntimeError(f"provision.sysctls {key}={value}: {e.strerror}") from None
    if key in READ_BACK and now != value:
        _set_sysctl(key, old)
        raise CaseRuntimeError(f"provision.sysctls {key}={value}: the kernel set {now}")
    return old


def _make(path: str, f: FileProvision) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, f.mode)
    try:
        os.write(fd, f.data)
        if f.size is not None:
            os.ftruncate(fd, f.size)
    finally:
        os.close(fd)
    os.chmod(path, f.mode)  # the umask does not decide what the case asked for
