"""The write log of qemu's ``blklogwrites`` filter, and the disks rebuilt from it.

qemu (block/blklogwrites.c, the format of Linux's dm-log-writes) logs every write, write of
zeroes, discard and flush the guest's disk completed, in order: a superblock in log sector 0,
then per request an entry sector (sector, nr_sectors, flags, data_len; little-endian) followed
by its data (none for a discard). The superblock's entry count is written only at a flush, so a
log cut by SIGKILL is read entry by entry to its end, never by that count.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0x6A736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
_SUPER = struct.Struct("<QQQI")
_ENTRY = struct.Struct("<QQQQ")


class LogError(ValueError):
    """The file is not a blklogwrites log."""


@dataclass(frozen=True)
class Entry:
    index: int
    sector: int  # in log sectors
    sectors: int
    flags: int
    data_at: int  # byte offset of its data in the log
    end: int  # byte offset just past the entry (header and data) in the log

    @property
    def kind(self) -> str:
        if self.flags & FLUSH:
            return "flush"
        return "discard" if self.flags & DISCARD else "write"


@dataclass(frozen=True)
class Log:
    sector_size: int
    entries: list[Entry]


def read_log(path: Path) -> Log:
    """Every complete entry of the log at PATH (a torn last entry is left out)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(_SUPER.size)
        if len(head) < _SUPER.size:
            return Log(512, [])
        magic, _version, _count, sector_size = _SUPER.unpack(head)
        if magic == 0:  # no flush yet, so no superblock: the default log sector size
            sector_size = 512
        elif magic != MAGIC:
            raise LogError(f"{path}: not a blklogwrites log (magic {magic:#x})")
        entries: list[Entry] = []
        at = sector_size
        while at + _ENTRY.size <= size:
            f.seek(at)
            sector, sectors, flags, _ = _ENTRY.unpack(f.read(_ENTRY.size))
            if flags & ~(FLUSH | FUA | DISCARD | MARK) or not (flags or sectors):
                break  # not written yet: a hole where a header was still to come
            data = 0 if flags & (DISCARD | FLUSH) else sectors * sector_size
            end = at + sector_size + data
            if end > size:
                break
            entries.append(Entry(len(entries), sector, sectors, flags, at + sector_size, end))
            at = end
    return Log(sector_size, entries)


def replay(log_path: Path, log: Log, base: Path, out: Path, upto: int) -> Path:
    """OUT: a copy of BASE (sparse) with the log's entries before index UPTO applied, in order."""
    sparse_copy(base, out)
    with open(log_path, "rb") as src, open(out, "r+b") as dst:
        for e in log.entries[:upto]:
            if e.kind == "flush":
                continue
            offset, length = e.sector * log.sector_size, e.sectors * log.sector_size
            if e.kind == "discard":
                continue  # a discard's blocks may read back as anything: keep the old ones
            src.seek(e.data_at)
            dst.seek(offset)
            dst.write(src.read(length))
    return out


def sparse_copy(src: Path, dst: Path) -> None:
    """A copy of a mostly empty disk image that keeps its holes (a plain copy writes 512 MiB)."""
    if shutil.which("cp"):
        subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
        return
    shutil.copyfile(src, dst)  # pragma: no cover - every host with coreutils takes the above
    os.truncate(dst, src.stat().st_size)


def last_flush(log: Log, before: int | None = None) -> int:
    """The index just past the last flush entry (before index BEFORE): what a disk that loses
    its write cache keeps; 0 when there was no flush."""
    entries = log.entries[:before] if before is not None else log.entries
    flushes = [e.index for e in entries if e.kind == "flush"]
    return flushes[-1] + 1 if flushes else 0
