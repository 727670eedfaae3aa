"""Backings: what a case's ``file:`` step creates, and where its scratch folder lives."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import struct
import tempfile
from dataclasses import dataclass

from runner.engine import libc, mounts
from runner.engine.owner import owner_tag
from runner.errors import CaseRuntimeError

SHM_DIR = "/dev/shm"
SCRATCH_RE = re.compile(r"^mmapconf-(\d+\.\d+)-")  # mmapconf-<owner tag>-<random>


@dataclass(frozen=True)
class Backing:
    """One place a case can run: ``name`` is what results are named by (``ID[name]``)."""

    name: str
    kind: str  # disk | tmpfs | memfd | hugetlbfs | anon
    dir: str | None
    fs: str | None
    unavailable: str = ""  # why it cannot be used here, if it cannot
    # (fstype, options): each process that runs cases writes in its own instance of this
    # filesystem (mounts.own_instance), not in ``dir`` itself
    made: tuple[str, str] | None = None
    cap: str = ""  # a disk backing's: what bounds what one case writes there (said in the report)

    def scratch(self) -> str | None:
        """A fresh scratch folder for one case-run (None for memfd and anon); on a capped disk
        backing, in this process's own instance of its filesystem (mounts.own_instance). An
        instance a case broke (a root case can shut its filesystem down with
        EXT4_IOC_SHUTDOWN: EIO ever after) is replaced by a fresh one; a folder that cannot be
        made is the case's set-up error (CaseRuntimeError), never the run's end."""
        if self.dir is None:
            return None
        if self.made is None:
            return _new_folder(self.dir)
        try:
            return _new_folder(mounts.own_instance(self.dir, *self.made))
        except CaseRuntimeError:
            mounts.drop_instance(self.dir)
            return _new_folder(mounts.own_instance(self.dir, *self.made))

    def to_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "dir": self.dir,
            "fs": self.fs,
            **({"cap": self.cap} if self.cap else {}),
        }


def _new_folder(where: str) -> str:
    try:
        return tempfile.mkdtemp(prefix=f"mmapconf-{_owner()}-", dir=where)
    except OSError as e:
        raise CaseRuntimeError(f"cannot make a scratch folder in {where}: {e.strerror}") from None


_owners: dict[int, str] = {}


def _owner() -> str:
    pid = os.getpid()
    if pid not in _owners:
        _owners[pid] = owner_tag()
    return _owners[pid]


class ScratchLeftover(OSError):
    """A scratch folder (or something in it) could not be removed."""


def remove_scratch(path: str | None) -> None:
    """Remove a scratch folder and everything a case left in it; raise ScratchLeftover naming
    what stays. No recursion (a case may nest folders thousands deep) and no path longer than
    one name (every step is relative to an open folder); immutable and append-only flags, which
    a case running as root may set, are cleared first."""
    if not path:
        return
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ScratchLeftover(e.errno, f"{path}: {e.strerror}") from None
    names: list[str] = []  # the folders we went down into, below ``top``
    fd = top
    try:
        while True:
            sub = _empty_folder(fd)
            if sub is not None:
                child = os.open(sub, _DIR_FLAGS, dir_fd=fd)
                if fd != top:
                    os.close(fd)
                names.append(sub)
                fd = child
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            _unlink(fd, names.pop(), os.rmdir)
    except OSError as e:
        where = os.path.join(path, *names)
        raise ScratchLeftover(e.errno, f"{where}: {e.strerror}") from None
    finally:
        if fd != top:
            os.close(fd)
        os.close(top)
    try:
        _unlink_path(path)
    except OSError as e:
        raise ScratchLeftover(e.errno, f"{path}: {e.strerror}") from None


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _empty_folder(fd: int) -> str | None:
    """Unlink every non-folder in the folder ``fd``; return a sub-folder's name, if any."""
    _clear_flags(fd)
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            _unlink(fd, entry.name, os.unlink)
    return None


def _unlink(dir_fd: int, name: str, remove) -> None:
    try:
        remove(name, dir_fd=dir_fd)
    except PermissionError:
        _clear_flags_at(dir_fd, name)
        remove(name, dir_fd=dir_fd)


def _unlink_path(path: str) -> None:
    parent, name = os.path.split(path.rstrip("/"))
    fd = os.open(parent or "/", _DIR_FLAGS)
    try:
        _unlink(fd, name, os.rmdir)
    finally:
        os.close(fd)


_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS = 0x80086601, 0x40086602
_FS_IMMUTABLE_FL, _FS_APPEND_FL = 0x10, 0x20


def _clear_flags(fd: int) -> None:
    """Clear the immutable and append-only flags of the file or folder ``fd`` (if it has any)."""
    with contextlib.suppress(OSError):
        buf = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("l", 0))
        flags = struct.unpack("l", buf)[0]
        if flags & (_FS_IMMUTABLE_FL | _FS_APPEND_FL):
            cleared = flags & ~(_FS_IMMUTABLE_FL | _FS_APPEND_FL)
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("l", cleared))


def _clear_flags_at(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            fd = os.open(name, flags, dir_fd=dir_fd)
            try:
                _clear_flags(fd)
            finally:
                os.close(fd)


def mount_fstype(path: str) -> str | None:
    """The filesystem type of the mount holding ``path``, from /proc/self/mountinfo."""
    real = os.path.realpath(path)
    best, fstype = "", None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                mount_point = left.split()[4].replace("\\040", " ")
                inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, fstype = mount_point, right.split()[0]
    except OSError:
        return None
    return fstype


def _hugetlbfs_mount() -> str | None:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split()[0] == "hugetlbfs" and os.access(left.split()[4], os.W_OK):
                    return left.split()[4]
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class DiskPlace:
    """Where one disk backing's scratch folders go, before it is named."""

    dir: str | None
    label: str | None = None  # default: the filesystem found there
    unavailable: str = ""
    made: tuple[str, str] | None = None  # (fstype, options): see Backing.made
    cap: str = ""  # see Backing.cap


def disk_backings(dirs: list[str]) -> list[Backing]:
    """One ``disk`` backing per --dir: the operator's filesystem under test, as it is (its
    device, its mount options), so not capped by the harness; by default, the temp folder's,
    capped (``temp_place``)."""
    if not dirs:
        return name_disks([temp_place(tempfile.gettempdir())])
    return name_disks([DiskPlace(d, cap=DIR_CAP) for d in dirs])


UNCAPPED = "none"  # how a disk backing's cap says there is none
DIR_CAP = f"{UNCAPPED}: --dir is the filesystem under test, as it is"


def temp_place(folder: str) -> DiskPlace:
    """The temp folder's disk backing: where the harness can make them, each process that runs
    cases writes in an instance of its own of FOLDER's filesystem type, mkfs and mount defaults,
    mounts.IMAGE_SIZE bytes (a loop-mounted image in the run's folder, or a tmpfs of that size);
    elsewhere FOLDER itself, and the cap says why it is not capped."""
    fstype = mount_fstype(folder) if os.path.isdir(folder) else None
    why = mounts.why_cannot_mount(fstype) if fstype else f"{folder} is not a folder"
    if why or not fstype:
        return DiskPlace(folder, cap=f"{UNCAPPED}: {why}; the temp folder itself")
    options = f"size={mounts.IMAGE_SIZE}" if fstype == "tmpfs" else ""
    how = "tmpfs of" if fstype == "tmpfs" else f"{fstype} image of"
    return DiskPlace(
        folder,
        made=(fstype, options),
        cap=f"{how} {mounts.IMAGE_SIZE >> 20} MiB per process that runs cases",
    )


def name_disks(places: list[DiskPlace]) -> list[Backing]:
    """The backings of PLACES, named ``disk`` when there is one, else ``disk:LABEL`` (LABEL the
    filesystem, ``disk:xfs``; a second one on the same gets ``disk:xfs-2``), so one report can
    hold disk results on several filesystems; each carries its filesystem as a fact."""
    out = []
    seen: dict[str, int] = {}
    for p in places:
        why = p.unavailable
        if not why and (p.dir is None or not os.path.isdir(p.dir) or not os.access(p.dir, os.W_OK)):
            why = f"{p.dir} is not a writable folder"
        fs = mount_fstype(p.dir) if p.dir and not why else None
        name = "disk"
        if len(places) > 1:
            label = p.label or fs or "unknown"
            seen[label] = seen.get(label, 0) + 1
            name = f"disk:{label}" + (f"-{seen[label]}" if seen[label] > 1 else "")
        where = os.path.realpath(p.dir) if p.dir and not why else p.dir
        out.append(Backing(name, "disk", where, fs, why, p.made if not why else None, p.cap))
    return out


def available_backings(
    dirs: list[str], disks: list[Backing] | None = None
) -> dict[str, list[Backing]]:
    """Every backing kind, mapped to its instances (unusable ones say why); DISKS, when given,
    are the disk backings (host --fs), else one per folder of DIRS."""
    shm_fs = mount_fstype(SHM_DIR) if os.path.isdir(SHM_DIR) else None
    tmpfs = Backing(
        "tmpfs",
        "tmpfs",
        SHM_DIR,
        shm_fs,
        "" if shm_fs == "tmpfs" else f"{SHM_DIR} is not a tmpfs mount",
    )
    memfd = Backing(
        "memfd",
        "memfd",
        None,
        "tmpfs",
        "" if libc.syscall_exists("memfd_create") else "memfd_create is not available",
    )
    huge_dir = _hugetlbfs_mount()
    huge = Backing(
        "hugetlbfs",
        "hugetlbfs",
        huge_dir,
        "hugetlbfs",
        "" if huge_dir else "no writable hugetlbfs is mounted",
    )
    return {
        "disk": disks if disks is not None else disk_backings(dirs),
        "tmpfs": [tmpfs],
        "memfd": [memfd],
        "hugetlbfs": [huge],
        "anon": [Backing("anon", "anon", None, None)],
    }
