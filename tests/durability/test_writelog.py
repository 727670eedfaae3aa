"""The write log as qemu's blklogwrites filter writes it (made here by qemu-io, not by us), and
the disks rebuilt from it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from runner.vm.durability import writelog

pytestmark = pytest.mark.skipif(shutil.which("qemu-io") is None, reason="no qemu-io (qemu-utils)")


def _logged(tmp: Path, *commands: str) -> tuple[Path, Path]:
    img, log = tmp / "disk.img", tmp / "disk.log"
    img.write_bytes(b"\x11" * (64 << 10))
    log.touch()
    opts = f"driver=blklogwrites,file.driver=file,file.filename={img},log.driver=file,log.filename={log}"
    argv = ["qemu-io", "--image-opts", opts]
    for c in commands:
        argv += ["-c", c]
    subprocess.run(argv, check=True, capture_output=True)
    return img, log


def test_entries_in_order(tmp_path: Path) -> None:
    _, log = _logged(tmp_path, "write -P 0xab 0 4k", "flush", "write -P 0xcd 4096 4k")
    entries = writelog.read_log(log).entries
    kinds = [e.kind for e in entries]
    assert kinds[:3] == ["write", "flush", "write"]
    assert (entries[0].sector, entries[0].sectors) == (0, 8)
    assert (entries[2].sector, entries[2].sectors) == (8, 8)


def test_replay_to_the_last_flush_and_to_the_end(tmp_path: Path) -> None:
    img, log = _logged(tmp_path, "write -P 0xab 0 4k", "flush", "write -P 0xcd 4096 4k")
    base = tmp_path / "base.img"
    base.write_bytes(b"\x11" * (64 << 10))  # the disk as it was before qemu opened it
    parsed = writelog.read_log(log)
    cut = writelog.last_flush(parsed, before=3)  # the flush qemu-io sends at its exit left out
    flushed = writelog.replay(log, parsed, base, tmp_path / "flushed.img", cut).read_bytes()
    assert flushed[:4096] == b"\xab" * 4096
    assert flushed[4096:8192] == b"\x11" * 4096  # written, never flushed
    full = writelog.replay(log, parsed, base, tmp_path / "all.img", len(parsed.entries))
    assert full.read_bytes() == img.read_bytes()  # every completed write: what qemu left


def test_write_zeroes_and_discard(tmp_path: Path) -> None:
    img, log = _logged(tmp_path, "write -z 0 4k", "discard 8192 4k")
    parsed = writelog.read_log(log)
    assert [e.kind for e in parsed.entries if e.kind != "flush"] == ["write", "discard"]
    base = tmp_path / "base.img"
    base.write_bytes(b"\x11" * (64 << 10))
    out = writelog.replay(log, parsed, base, tmp_path / "out.img", len(parsed.entries))
    assert out.read_bytes()[:4096] == b"\0" * 4096
    assert out.read_bytes()[8192:12288] == b"\x11" * 4096  # a discard keeps the old blocks


def test_a_torn_log_is_read_to_its_last_whole_entry(tmp_path: Path) -> None:
    _, log = _logged(tmp_path, "write -P 0xab 0 4k", "flush", "write -P 0xcd 4096 4k")
    whole = writelog.read_log(log).entries
    with open(log, "r+b") as f:
        f.truncate(whole[2].end - 100)  # SIGKILL in the middle of the last write's data
    assert [e.index for e in writelog.read_log(log).entries] == [0, 1]


def test_a_file_that_is_no_log_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.log"
    bad.write_bytes(b"not a log at all" * 64)
    with pytest.raises(writelog.LogError):
        writelog.read_log(bad)
