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


def disk_backings(dirs: list[str]) -> list[Backing]:
    """One ``disk`` backing per --dir (default: the temp folder)."""
    dirs = dirs or [tempfile.gettempdir()]
    out = []
    for d in dirs:
        name = "disk" if len(dirs) == 1 else f"disk:{d}"
        if not os.path.isdir(d) or not os.access(d, os.W_OK):
            out.append(Backing(name, "disk", d, None, f"{d} is not a writable folder"))
        else:
            out.append(Backing(name, "disk", os.path.realpath(d), mount_fstype(d)))
    return out


def available_backings(dirs: list[str]) -> dict[str, list[Backing]]:
    """Every backing kind, mapped to its instances (unusable ones say why)."""
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
        "disk": disk_backings(dirs),
        "tmpfs": [tmpfs],
        "memfd": [memfd],
        "hugetlbfs": [huge],
        "anon": [Backing("anon", "anon", None, None)],
    }
