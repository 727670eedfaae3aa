"""Where "stored" is in the write log: placed by content, not by the host's clock.

When the process at ``power_cut`` has said "stored", the guest's batch (executor.c, the one
writer of the block) writes one block (MAGIC, the boot's nonce, its CLOCK_MONOTONIC) with
O_DIRECT to the logged disk, past the end of the filesystem (the filesystem is made smaller than
the disk: cut.py), and only then passes "stored" on to the host. blklogwrites gives each request
its place in the log as the request reaches it, so every write the disk completed before that
(fdatasync's and msync's, which completed before their calls returned) is logged before the
marker, and the host cuts its crash points at the marker's entry. O_DIRECT without O_SYNC sends
no flush: the marker changes no disk model. The host checks that nothing but the marker was
written past the filesystem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import writelog

MAGIC = b"MMAPCONF-MARK\n"  # executor.c's b_write_marker writes the block: MAGIC, the nonce
BLOCK = 4096  # and the guest's clock, each ending in a newline, then zeros; O_DIRECT, aligned


@dataclass(frozen=True)
class Found:
    """The marker's place in the log: its entry (None: not there) and the other entries that
    wrote past the filesystem (each a harness fault: the region is not the filesystem's)."""

    entry: writelog.Entry | None
    foreign: int


def find(log_path: Path, log: writelog.Log, region_at: int, nonce: str) -> Found:
    """The first write at or past byte REGION_AT of the disk that holds this boot's marker."""
    want = MAGIC + nonce.encode() + b"\n"
    entry, foreign = None, 0
    with open(log_path, "rb") as f:
        for e in log.entries:
            if e.kind == "flush" or (e.sector + e.sectors) * log.sector_size <= region_at:
                continue
            f.seek(e.data_at)
            if entry is None and e.kind == "write" and f.read(len(want)) == want:
                entry = e
            else:
                foreign += 1
    return Found(entry, foreign)


def without(log: writelog.Log, entry: writelog.Entry) -> writelog.Log:
    """The log without the marker's entry (the harness's write, not the case's), renumbered:
    the marker's index is then "stored", the count of entries before it."""
    rest = [e for e in log.entries if e.index != entry.index]
    return writelog.Log(
        log.sector_size, [dataclasses.replace(e, index=i) for i, e in enumerate(rest)]
    )
