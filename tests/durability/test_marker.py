""" "stored" placed in the write log by content: the guest's marker block past the filesystem,
found by the host in a log that qemu's blklogwrites filter writes here (qemu-io), not by the
log's size when the host read "stored" (the fault that failed btrfs fdatasync's crash points:
fdatasync's last entries became visible to the host after it saw "stored"). The block's layout
is pinned twice to MARK below: executor.c writes it (its batch, run on this host), marker.py
finds it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from runner.engine.backings import Backing
from runner.engine.native import build
from runner.lang.loader import load_suite
from runner.session.runner import Item
from runner.vm import batch, guestrun
from runner.vm.batch import MarkerEntry
from runner.vm.durability import batchboot, cut, marker, writelog

needs_qemu_io = pytest.mark.skipif(shutil.which("qemu-io") is None, reason="no qemu-io")
NONCE = "0123456789abcdef0123456789abcdef"
DATA = 8192  # where the case's file data is on the synthetic disk
ROOT = Path(__file__).resolve().parents[2]
# The marker's layout: the magic, the nonce and the guest's CLOCK_MONOTONIC in ns, each ending in
# a newline, then zeros to the block's end (here with a clock of 12345)
MARK = (marker.MAGIC + NONCE.encode() + b"\n12345\n").ljust(marker.BLOCK, b"\0")


def _logged(tmp: Path, *commands: str) -> tuple[Path, writelog.Log]:
    """A log of COMMANDS on a sparse disk of the power cut's size; `mark` writes the marker."""
    img, log = tmp / "disk.img", tmp / "disk.log"
    with open(img, "wb") as f:
        f.truncate(cut.DISK_BYTES)
    log.touch()
    (tmp / "mark").write_bytes(MARK)
    opts = f"driver=blklogwrites,file.driver=file,file.filename={img},log.driver=file,log.filename={log}"
    argv = ["qemu-io", "--image-opts", opts]
    for c in commands:
        argv += ["-c", f"write -s {tmp / 'mark'} {cut.FS_BYTES} 4k" if c == "mark" else c]
    subprocess.run(argv, check=True, capture_output=True)
    return log, writelog.read_log(log)


# The fdatasync-after-writeback pattern: the case's data, a flush, the superblock, a flush, all
# before "stored"; then the marker, and a writeback write after it.
FDATASYNC = (
    "write -P 0x11 0 4k",
    "flush",
    f"write -P 0x5a {DATA} 12k",
    "flush",
    "write -P 0x22 65536 4k",
    "flush",
    "mark",
    "write -P 0x33 131072 4k",
)


@needs_qemu_io
def test_stored_is_at_the_marker_not_where_the_host_saw_it(tmp_path: Path) -> None:
    log_path, raw = _logged(tmp_path, *FDATASYNC)
    # The host read "stored" when the log held only the first two entries, and saw the rest
    # 0.12 s later: the old placement by size put "stored" at entry 2, before fdatasync's.
    w = cut.Watch(stored_s=1.0, nonce=NONCE)
    w.timeline = [(0.0, raw.entries[1].end), (0.12, raw.entries[-1].end)]
    old = next(e.index for e in raw.entries if e.end > w.timeline[0][1])
    assert old == 2  # what the old placement by the log's size gave
    log, stored, why = cut._placed(log_path, w)
    assert why == ""
    assert stored == 6  # after the fdatasync's data, its flush, the superblock and its flush
    assert [e.kind for e in log.entries[stored:]][:1] == ["write"]  # the writeback, no marker
    assert len(log.entries) == len(raw.entries) - 1
    points, _ = cut._points(log, stored, "every_write")
    assert points["point-6"] == 6  # the crash point at "stored", in both models
    base = tmp_path / "base.img"
    with open(base, "wb") as f:
        f.truncate(cut.DISK_BYTES)
    at_stored = writelog.replay(log_path, log, base, tmp_path / "p6.img", points["point-6"])
    with open(at_stored, "rb") as f:
        f.seek(DATA)
        assert f.read(12 << 10) == b"\x5a" * (12 << 10)  # fdatasync's data is at "stored"
        f.seek(cut.FS_BYTES)
        assert not any(f.read(4096))  # the replayed disks have no marker: not the case's write
    facts = cut._facts(log, stored, w, 6000, "writeback")
    assert facts["stored_at"] == {"by": "marker", "entry": 6, "disk_offset": cut.FS_BYTES}
    assert facts["writes_after_stored"] == 1  # the writeback, not the marker
    # times after "stored" from the poll that first saw the marker (the second one here)
    assert facts["timeline"][0] == {"t_s": 0.0, "op": "writes", "count": 1, "bytes": 4096}


@needs_qemu_io
def test_no_marker_of_this_boot_is_an_error(tmp_path: Path) -> None:
    log_path, _ = _logged(tmp_path, *FDATASYNC)
    w = cut.Watch(stored_s=1.0, nonce="f" * 32)  # another boot's nonce
    assert "marker is not in the write log" in cut._placed(log_path, w)[2]


@needs_qemu_io
def test_a_write_past_the_filesystem_is_a_harness_fault(tmp_path: Path) -> None:
    log_path, _ = _logged(tmp_path, *FDATASYNC, f"write -P 0x44 {cut.FS_BYTES + 8192} 4k")
    w = cut.Watch(stored_s=1.0, nonce=NONCE)
    assert "1 write(s) past the filesystem besides the marker" in cut._placed(log_path, w)[2]


def test_mkfs_leaves_the_marker_region_alone(tmp_path: Path) -> None:
    for fs, argv in cut.MKFS.items():
        if shutil.which(argv[0]) is None:
            continue
        disk = tmp_path / f"{fs}.img"
        cut._mkfs(fs, disk)
        with open(disk, "rb") as f:
            f.seek(cut.FS_BYTES)
            assert not any(f.read()), fs
    if shutil.which("dumpe2fs"):  # the filesystem of a whole 512 MiB disk: 4 KiB blocks
        head = subprocess.run(["dumpe2fs", "-h", str(tmp_path / "ext4.img")], capture_output=True)
        assert b"Block size:               4096" in head.stdout


def _cut_here(tmp: Path, device: Path) -> tuple[subprocess.Popen, batchboot.Driver, Path]:
    """executor.c's batch as a plain process here, running a power-cut case whose marker goes
    to DEVICE at byte 8192, driven through its two files as a guest's is."""
    disk, job = tmp / "disk", tmp / "job"
    disk.mkdir()
    job.mkdir()
    case = load_suite([str(ROOT / "cases/durability/durability-none-cut-now.yaml")]).cases[0]
    item = Item(f"{case.id}[disk]", Backing("disk", "disk", str(disk), None), case=case)
    item.case = batchboot.cut_case(case)
    exe = build.build(job / "mmapconf-exec", static=True)
    mark = MarkerEntry(str(device), 8192, NONCE)
    driver = batchboot.Driver(job, lambda facts: [item], mark, str(disk), walls=False)
    with open(job / "stderr.txt", "wb") as err:
        p = subprocess.Popen(batch.command(exe, job), stderr=err)
    driver.start(lambda: p.poll() is None)
    return p, driver, job


def test_the_batch_writes_the_marker_before_stored_passes(tmp_path: Path) -> None:
    """The marker's "device" a file: by the time "stored" is on the batch's stderr, the block is
    in the file at the offset, in MARK's layout (the guest's clock for 12345), and nothing else
    was written; the case never ends (the host cuts the power: here it kills the batch)."""
    dev = tmp_path / "dev"
    with open(dev, "wb") as f:
        f.truncate(1 << 20)
    try:
        os.close(os.open(dev, os.O_WRONLY | os.O_DIRECT))
    except OSError as e:  # a filesystem without O_DIRECT
        pytest.skip(f"O_DIRECT: {e}")
    p, driver, job = _cut_here(tmp_path, dev)
    try:
        deadline = time.monotonic() + 120
        while batchboot.STORED not in (job / "stderr.txt").read_bytes():
            assert p.poll() is None and time.monotonic() < deadline, (
                job / "stderr.txt"
            ).read_text()
            time.sleep(0.01)
        data = dev.read_bytes()  # once "stored" passed: the marker was written before
    finally:
        p.kill()
        p.wait()
    results = driver.join()
    block = data[8192 : 8192 + marker.BLOCK]
    head = marker.MAGIC + NONCE.encode() + b"\n"
    assert block.startswith(head)
    digits = re.fullmatch(rb"(\d+)\n\0*", block[len(head) :])
    assert digits is not None, block[:80]
    clock = digits.group(1)  # MARK's layout, byte for byte, with the guest's clock
    layout = MARK.rstrip(b"\0").replace(b"\n12345\n", b"\n" + clock + b"\n")
    assert block == layout.ljust(marker.BLOCK, b"\0")
    assert len(block) == marker.BLOCK and int(clock) > 0
    assert not any(data[:8192]) and not any(data[8192 + marker.BLOCK :])
    assert "MMAPCONF-STORED" in (job / "stderr.txt").read_text()  # the case's output, passed on
    assert [r.reason.split(":")[0] for r in results] == [guestrun.NO_RESULT]  # it never ended
    assert (tmp_path / "disk" / batchboot.FOLDER).is_dir()  # the fixed folder, for the judge


def test_a_marker_write_that_fails_ends_the_case_saying_so(tmp_path: Path) -> None:
    """No device (as a kernel that refuses writes under a mounted filesystem would fail it):
    "stored" never passes, the case is ended, and its result names the write and why."""
    p, driver, job = _cut_here(tmp_path, tmp_path / "no-such-device")
    try:
        assert p.wait(timeout=120) == 0  # the batch ran its one case to its end
    finally:
        p.kill()
        p.wait()
    [r] = driver.join()
    assert r.outcome == "error"
    assert r.reason.startswith(f"the marker write failed: {tmp_path / 'no-such-device'}: No such")
    err = (job / "stderr.txt").read_text()
    assert "mmapconf: the marker write failed" in err and "MMAPCONF-STORED" not in err
