"""Mounts the harness makes and undoes: filesystem images on loop devices and tmpfs mounts,
all under one folder per run, so that whatever a killed run left is found and undone.

Layout: SCRATCH_ROOT/run-PID-START/ (PID and START, /proc/PID/stat's start time, name the
harness process that made it). The next run that looks (every ``mmapconf run`` does, at start)
undoes the folders whose process is gone: every mount under the folder (deepest first), every
loop device whose backing file is in it, the inode flags listed in its flags journal; then it
removes the folder. A run that ends, however it ends short of SIGKILL, undoes its own.

A process that runs cases (a ``-n`` worker, or the harness itself) writes its disk scratch
folders in an instance of its own of the disk backing's filesystem (``own_instance``):
SCRATCH_ROOT/run-PID-START/own-OWNER-*/ holds its image and its mount point ``fs``, OWNER the
process's tag (runner.engine.owner). It undoes it when it ends (``close_own``); what a SIGKILLed
one left, a sweep undoes (``sweep_instances``: the owner is gone), and the run's end at the latest.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from runner.engine.owner import owner_alive, owner_tag
from runner.errors import CaseRuntimeError

MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}
IMAGE_SIZE = 1 << 30  # sparse; mkfs.xfs wants >= 300 MB. Also the cap of one disk-backed case
FLAGS_JOURNAL = "inode-flags"  # one path a line: files whose inode flags the harness set
_TOOL_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")

_run_dir: Path | None = None  # this process's; inherited by forked workers
_made_by: dict[str, int] = {}  # mount point of a filesystem `mounted` made -> the pid that made it
_own: dict[tuple[int, str], str] = {}  # (pid, that mount point) -> the instance pid runs cases on
INSTANCE_PREFIX = "own-"  # own-OWNER-RANDOM: the folder of one process's own instance
_INSTANCE_RE = re.compile(r"^own-(\d+\.\d+)-")


class Unavailable(CaseRuntimeError):
    """This host cannot make the mount (no loop devices, no mkfs tool, not root): a skip."""


def scratch_root() -> Path:
    env = os.environ.get("MMAPCONF_SCRATCH_ROOT")
    return Path(env) if env else Path(tempfile.gettempdir()) / "mmapconf-scratch"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def run_dir() -> Path:
    """This run's folder under the scratch root (made on first use, stale ones undone first)."""
    global _run_dir
    if _run_dir is None:
        clean_stale()
        pid = os.getpid()
        path = scratch_root() / f"run-{pid}-{_start_time(pid)}"
        path.mkdir(parents=True, exist_ok=True)
        _run_dir = path
        atexit.register(_clean_own, pid, path)
    return _run_dir


def _clean_own(pid: int, path: Path) -> None:
    if os.getpid() == pid:  # not in a forked worker that inherited the handler
        undo_dir(path)


def finish_run() -> None:
    """Undo this run's folder now (the end of a run; atexit does it too)."""
    global _run_dir
    close_own()
    if _run_dir is not None and _run_dir.name.startswith(f"run-{os.getpid()}-"):
        undo_dir(_run_dir)
        _run_dir = None


def _owner_alive(name: str) -> bool:
    parts = name.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    return _start_time(int(parts[1])) == parts[2]


def clean_stale() -> list[Path]:
    """Undo the run folders whose harness process is gone; the folders undone."""
    root = scratch_root()
    if not root.is_dir():
        return []
    stale = [d for d in root.glob("run-*") if d.is_dir() and not _owner_alive(d.name)]
    for d in stale:
        undo_dir(d)
    return stale


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below PATH, deepest first (from /proc/self/mountinfo)."""
    real = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == real or point.startswith(real.rstrip("/") + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def loops_backed_under(path: Path) -> list[str]:
    """Loop devices whose backing file is PATH or lies below it."""
    real = os.path.realpath(path)
    out = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):
            file = backing.read_text().strip()
            if file == real or file.startswith(real.rstrip("/") + "/"):
                out.append("/dev/" + backing.parts[3])
    return out


def undo_dir(path: Path) -> None:
    """Clear journalled inode flags, unmount, detach loop devices, remove PATH."""
    journal = path / FLAGS_JOURNAL
    if journal.is_file():
        for line in journal.read_text().splitlines():
            clear_inode_flags(line)
    for point in mounts_under(path):
        unmount(point)
    for dev in loops_backed_under(path):
        subprocess.run([tool("losetup"), "-d", dev], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def unmount(point: str) -> None:
    if subprocess.run([tool("umount"), point], capture_output=True).returncode != 0:
        # Busy (a process we do not own holds it): detach it now, the kernel frees it later.
        subprocess.run([tool("umount"), "-l", point], capture_output=True)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in _TOOL_DIRS:
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    raise Unavailable(f"{name} is not installed")


def why_cannot_mount(fstype: str) -> str | None:
    """Why this host cannot make a FSTYPE mount for us, or None."""
    if os.geteuid() != 0:
        return "mounting needs root"
    if fstype == "tmpfs":
        return None
    if fstype not in MKFS:
        return f"unknown filesystem {fstype!r} (known: tmpfs, {', '.join(MKFS)})"
    if not os.path.exists("/dev/loop-control"):
        return "no loop devices (/dev/loop-control is missing; modprobe loop)"
    if not _kernel_has(fstype):
        return f"this kernel has no {fstype} (not in /proc/filesystems, no module to load)"
    try:
        tool(MKFS[fstype][0])
        tool("losetup")
    except Unavailable as e:
        return str(e)
    return None


def _kernel_has(fstype: str) -> bool:
    """Built in, loaded, or a module the kernel's request_module can load (a guest booted by
    `run --kernel` has only the modules of its initramfs)."""
    with contextlib.suppress(OSError), open("/proc/filesystems") as f:
        if fstype in f.read().split():
            return True
    release = os.uname().release
    return any(
        os.path.isdir(f"{d}/modules/{release}/kernel/fs/{fstype}") for d in ("/lib", "/usr/lib")
    )


def mount(
    fstype: str, options: str, point: Path, size: int | None = None, image_dir: Path | None = None
) -> Path | None:
    """Mount a fresh FSTYPE at POINT: a tmpfs, or a sparse image of SIZE bytes made and mkfs'd
    in IMAGE_DIR (default: this run's folder) and attached to a loop device (auto-cleared when
    unmounted); returns the image."""
    why = why_cannot_mount(fstype)
    if why:
        raise Unavailable(f"cannot mount {fstype}: {why}")
    opts = ["-o", options] if options else []
    if fstype == "tmpfs":
        _run([tool("mount"), "-t", "tmpfs", *opts, "mmapconf", str(point)])
        return None
    fd, img = tempfile.mkstemp(prefix=f"{fstype}-", suffix=".img", dir=image_dir or run_dir())
    with os.fdopen(fd, "wb") as f:
        f.truncate(size or IMAGE_SIZE)
    _run([tool(MKFS[fstype][0]), *MKFS[fstype][1:], img])
    loop_opts = ["-o", "loop" + (f",{options}" if options else "")]
    _run([tool("mount"), "-t", fstype, *loop_opts, img, str(point)])
    return Path(img)


def _run(argv: list[str]) -> None:
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise CaseRuntimeError(f"{' '.join(argv)}: {(p.stderr or p.stdout).strip()[-400:]}")


@contextlib.contextmanager
def mounted(fstype: str, options: str, size: int | None = None) -> Iterator[Path]:
    """A fresh FSTYPE mount in this run's folder, undone (mount, loop device, image) after."""
    point = Path(tempfile.mkdtemp(prefix=f"mnt-{fstype}-", dir=run_dir()))
    img: Path | None = None
    try:
        img = mount(fstype, options, point, size)
        _made_by[os.path.realpath(point)] = os.getpid()
        yield point
    finally:
        for p in mounts_under(point):
            unmount(p)
        shutil.rmtree(point, ignore_errors=True)
        if img is not None:
            for dev in loops_backed_under(img):
                subprocess.run([tool("losetup"), "-d", dev], capture_output=True)
            img.unlink(missing_ok=True)


def own_instance(point: str, fstype: str, options: str) -> str:
    """The instance of the disk backing at POINT that this process writes its scratch folders
    in: POINT itself in the process that mounted a filesystem there (``mounted``: ``--fs`` under
    -n 1); in any other (a forked -n worker, or any process for the temp folder's backing) a
    fresh FSTYPE of its own with OPTIONS, IMAGE_SIZE bytes, made at its first use. So what one
    case can write is bounded by the size of one image, and a case that fills it takes the space
    of no case running beside it. Undone by ``close_own``, a sweep, or the run's end."""
    pid = os.getpid()
    if _made_by.get(point) == pid:
        return point
    key = (pid, point)
    if key not in _own:
        _own[key] = str(make_instance(fstype, options))
    return _own[key]


def make_instance(fstype: str, options: str) -> Path:
    """A fresh FSTYPE (OPTIONS, IMAGE_SIZE bytes) mounted in a folder of this run's named after
    this process (its image beside the mount point); its mount point. Undo with undo_dir on its
    parent."""
    folder = Path(tempfile.mkdtemp(prefix=f"{INSTANCE_PREFIX}{owner_tag()}-", dir=run_dir()))
    point = folder / "fs"
    try:
        point.mkdir()
        size = None if fstype == "tmpfs" else IMAGE_SIZE  # a tmpfs's size is in its options
        mount(fstype, options, point, size, image_dir=folder)
        os.chmod(point, 0o1777)  # the cases may drop root (setuid steps)
    except BaseException:
        undo_dir(folder)
        raise
    return point


def drop_instance(point: str) -> None:
    """Undo this process's instance of the disk backing at POINT (one a case broke), so that
    ``own_instance`` makes a fresh one."""
    made = _own.pop((os.getpid(), point), None)
    if made is not None:
        undo_dir(Path(made).parent)


def close_own() -> None:
    """Undo the instances this process made (a worker as it ends; the harness at the run's end)."""
    pid = os.getpid()
    for key in [k for k in _own if k[0] == pid]:
        undo_dir(Path(_own.pop(key)).parent)


def sweep_instances() -> list[Path]:
    """Undo the instances, in every run's folder, whose owner is gone (a SIGKILLed -n worker);
    the folders undone. A live owner's is never touched: its tag names it for the machine's
    uptime."""
    root = scratch_root()
    gone = []
    for run in names_in(root):
        for name in names_in(root / run) if run.startswith("run-") else []:
            m = _INSTANCE_RE.match(name)
            if m and not owner_alive(m.group(1)):
                undo_dir(root / run / name)
                gone.append(root / run / name)
    return gone


def names_in(folder: str | Path) -> list[str]:
    """What FOLDER holds; nothing if it is gone (another run may remove its own meanwhile)."""
    try:
        return os.listdir(folder)
    except OSError:
        return []


# ---- inode flags (FS_IOC_GETFLAGS / FS_IOC_SETFLAGS, include/uapi/linux/fs.h) --------------

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602


def get_inode_flags(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        buf = bytearray(4)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
        return int.from_bytes(buf, "little")
    finally:
        os.close(fd)


def _set_inode_flags(path: str, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags.to_bytes(4, "little"))
    finally:
        os.close(fd)


def set_inode_flags(path: str, flags: int) -> None:
    """Add FLAGS to PATH's inode flags, journalled first so a killed run's next run clears them."""
    with open(run_dir() / FLAGS_JOURNAL, "a") as j:
        j.write(path + "\n")
    try:
        _set_inode_flags(path, get_inode_flags(path) | flags)
    except OSError as e:
        raise CaseRuntimeError(f"cannot set inode flags {flags:#x} on {path}: {e}") from None


def clear_inode_flags(path: str, flags: int = 0x10 | 0x20) -> None:
    """Remove FLAGS (default: immutable and append-only, which block removal) from PATH."""
    with contextlib.suppress(OSError):
        _set_inode_flags(path, get_inode_flags(path) & ~flags)
