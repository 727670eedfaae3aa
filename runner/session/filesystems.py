"""``mmapconf run --fs ext4,xfs,btrfs`` on the host: one loop-mounted image per filesystem,
each the folder of one ``disk`` backing, all undone when the run ends (see engine/mounts.py
for how a killed run's mounts are found and undone by the next run)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from runner.engine import mounts
from runner.engine.backings import Backing, DiskPlace, name_disks
from runner.errors import UsageError


@dataclass(frozen=True)
class FsSpec:
    fstype: str
    options: str = ""  # mount -o options

    @property
    def text(self) -> str:
        return f"{self.fstype}:{self.options}" if self.options else self.fstype


def parse_fs_list(text: str) -> list[FsSpec]:
    """``ext4,xfs:-o,dax=never,btrfs:compress=zstd`` -> specs. After FS:OPTIONS, a piece that
    does not start with a filesystem name continues those options (mount -o takes commas)."""
    specs: list[FsSpec] = []
    options_open = False  # the last filesystem was given with ':' and may take more options
    for piece in (p.strip() for p in text.split(",")):
        head, colon, opts = piece.partition(":")
        if head in mounts.MKFS:
            specs.append(FsSpec(head, _options(opts)))
            options_open = bool(colon)
        elif piece and options_open:
            prev = specs[-1]
            specs[-1] = FsSpec(prev.fstype, f"{prev.options},{piece}" if prev.options else piece)
        elif piece:
            raise UsageError(
                f"--fs {text}: unknown filesystem {head!r} (known: {', '.join(mounts.MKFS)})"
            )
    if not specs:
        raise UsageError("--fs takes a comma-separated list of filesystems, e.g. ext4,xfs")
    return specs


def _options(text: str) -> str:
    return text.removeprefix("-o").lstrip(",")  # also mount(8)'s spelling: -o,dax=never


@contextlib.contextmanager
def host_disks(specs: list[FsSpec], log=print) -> Iterator[list[Backing]]:
    """The disk backings of SPECS: each a loop-mounted fresh filesystem (or unavailable, with
    the reason: the results on it are skipped), undone whatever happens."""
    with contextlib.ExitStack() as stack:
        found: list[tuple[FsSpec, str | None, str]] = []
        for spec in specs:
            why = mounts.why_cannot_mount(spec.fstype)
            if why:
                log(f"--fs {spec.text}: skipped: {why}")
                found.append((spec, None, why))
                continue
            point = stack.enter_context(mounts.mounted(spec.fstype, spec.options))
            os.chmod(point, 0o1777)  # the cases may drop root (setuid steps)
            found.append((spec, str(point), ""))
        yield _backings(found)


def _backings(found: list[tuple[FsSpec, str | None, str]]) -> list[Backing]:
    return name_disks(
        [
            DiskPlace(
                d,
                spec.text,
                why and f"--fs {spec.text}: {why}",
                (spec.fstype, spec.options),
                f"{spec.fstype} image of {mounts.IMAGE_SIZE >> 20} MiB per process that runs cases",
            )
            for spec, d, why in found
        ]
    )
