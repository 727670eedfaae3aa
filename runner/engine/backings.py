"""Backings: what a case's ``file:`` step creates, and where its scratch folder lives."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

from runner.engine import libc

SHM_DIR = "/dev/shm"


@dataclass(frozen=True)
class Backing:
    """One place a case can run: ``name`` is what results are named by (``ID[name]``)."""

    name: str
    kind: str  # disk | tmpfs | memfd | hugetlbfs | anon
    dir: str | None
    fs: str | None
    unavailable: str = ""  # why it cannot be used here, if it cannot

    def scratch(self) -> str | None:
        """A fresh scratch folder for one case-run (None for memfd and anon)."""
        if self.dir is None:
            return None
        return tempfile.mkdtemp(prefix="mmapconf-", dir=self.dir)

    def to_json(self) -> dict[str, str | None]:
        return {"kind": self.kind, "dir": self.dir, "fs": self.fs}


def remove_scratch(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


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


def disk_backings(dirs: list[str]) -> list[Backing]:
    """One ``disk`` backing per --dir (default: the temp folder)."""
    return name_disks([DiskPlace(d) for d in dirs or [tempfile.gettempdir()]])


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
        out.append(Backing(name, "disk", where, fs, why))
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
