"""The two streams between the host and `mmapconf-exec --batch` in a guest (executor.c's batch
mode), both files in the job folder the guest shares over 9p.

Both are records of little-endian 64-bit words: a kind, a count of words, then the words.
Strings and bytes are a length and then the bytes, padded to a word.

- ``batch.in``, host to guest, after a magic word: one FACTS query (syscall names and numbers,
  sysctl keys, paths whose filesystem to tell), then CASE records, then END. The guest reads it
  while it grows: the host compiles a case while the guest runs the one before.
- ``batch.out``, guest to host: the FACTS (lines of ``key<TAB>value``), one RESULT per case as it
  ends, then DONE.
"""

from __future__ import annotations

import contextlib
import os
import select
import struct
import subprocess
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runner.engine.native import build
from runner.engine.native.execute import Words
from runner.engine.native.server import CaseRun

MAGIC = 0x31484342434D4D00  # "\0MMCBCH1", executor.c's B_MAGIC
FACTS, CASE, END, RESULT, DONE = range(1, 6)
IN_NAME, OUT_NAME = "batch.in", "batch.out"
_HEAD = struct.Struct("<qq")
POLL_S = 0.01
HOST_EXIT_S = 60.0  # a batch on this host, given END, has ended well within this


def _text(value: str | bytes) -> list[int]:
    raw = value.encode() if isinstance(value, str) else value
    padded = raw + b"\0" * (-len(raw) % 8)
    return [len(raw), *array("q", padded)]


@dataclass(frozen=True)
class MountEntry:
    """The provision's mount: FSTYPE at POINT; for a filesystem on a block device, from IMAGE,
    a sparse file of IMAGE_SIZE bytes the guest makes and formats with MKFS (the image's path
    appended), on a loop device; or from DEVICE, a disk of the guest (a power cut's judge boot),
    the case's folder WITHIN it already there (made by the cut boot), kept as it is."""

    fstype: str
    point: str
    flags: int  # MS_* of the options
    data: str  # the options the filesystem reads
    image: str = ""
    image_size: int = 0
    mkfs: tuple[str, ...] = ()
    device: str = ""
    within: str = ""


@dataclass(frozen=True)
class MarkerEntry:
    """A power cut's marker (runner/vm/durability/marker.py): once the case's output says
    "stored", the guest writes its block to DEVICE at OFFSET, then passes the output on to its
    stderr. The guest syncs before the case: what its mount wrote is on the disk."""

    device: str
    offset: int
    nonce: str


@dataclass(frozen=True)
class FileEntry:
    name: str
    data: bytes
    mode: int
    size: int | None
    inode_flags: int


@dataclass(frozen=True)
class SysctlEntry:
    """A /proc/sys file the guest writes before the case and puts back after it; CHECK: the
    value read back must be the one written (a huge-page pool the kernel could not fill)."""

    path: str
    value: str
    check: bool = False


@dataclass
class CaseEntry:
    """One case as the guest runs it: made around it, then its program on the fork server.
    Machine-wide set-up (sysctls, a swap area) makes the case EXCLUSIVE: no other lane runs a
    case meanwhile."""

    index: int
    timeout_s: float
    scratch: str  # the scratch folder the guest makes ('' for none)
    program: bytes
    confinement: list[int]
    mount: MountEntry | None = None
    files: list[FileEntry] = field(default_factory=list)
    sysctls: list[SysctlEntry] = field(default_factory=list)
    swap_image: str = ""  # a swap area: this file, on a loop device ('' for none)
    swap_size: int = 0
    marker: MarkerEntry | None = None

    def words(self) -> list[int]:
        m = self.mount or MountEntry("", "", 0, "")
        out = [self.index, int(self.timeout_s * 1e9), *_text(self.scratch)]
        out += [*_text(m.fstype), *_text(m.image), m.image_size, len(m.mkfs)]
        for arg in m.mkfs:
            out += _text(arg)
        out += [m.flags, *_text(m.data), *_text(m.point), *_text(m.device), *_text(m.within)]
        mark = self.marker or MarkerEntry("", 0, "")
        out += [*_text(mark.device), mark.offset, *_text(mark.nonce)]
        out.append(len(self.files))
        for f in self.files:
            size = -1 if f.size is None else f.size
            out += [*_text(f.name), *_text(f.data), f.mode, size, f.inode_flags]
        out.append(len(self.sysctls))
        for c in self.sysctls:
            out += [*_text(c.path), *_text(c.value), int(c.check)]
        out += [*_text(self.swap_image), self.swap_size]
        out.append(int(bool(self.sysctls or self.swap_image)))  # exclusive
        program = array("q", self.program)
        return [*out, len(program), *program, *self.confinement]


class BatchWriter:
    """batch.in: each record in one write, so the guest never waits on half of one for long."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.write(self.fd, struct.pack("<Q", MAGIC))

    def _record(self, kind: int, words: list[int]) -> None:
        data = _HEAD.pack(kind, len(words)) + array("q", words).tobytes()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def facts_query(
        self,
        syscalls: dict[str, int],
        sysctls: list[str],
        paths: list[str],
        lanes: int = 1,
        walls: bool = False,
    ) -> None:
        """What the plan needs to know; then LANES, how many cases the guest runs at once, and
        WALLS, whether it sets up the walls a harness would (in a guest: never on a host)."""
        words = [len(syscalls)]
        for name, number in sorted(syscalls.items()):
            words += [*_text(name), number]
        words.append(len(sysctls))
        for key in sysctls:
            words += _text(key)
        words.append(len(paths))
        for p in paths:
            words += _text(p)
        self._record(FACTS, [*words, lanes, int(walls)])

    def case(self, entry: CaseEntry) -> None:
        self._record(CASE, entry.words())

    def end(self) -> None:
        self._record(END, [])

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class CaseOutput:
    """What the guest sent back for one case."""

    index: int
    run: CaseRun
    took_s: float
    setup_error: str  # the scratch folder or the provision could not be made
    leftover: str  # what could not be removed or undone after the case
    arena: bytes
    refused: str = ""  # why the batch stopped taking the case's reports (too large, too many)
    memory_limit_hit: bool = False  # the OOM killer took a process in the case's cgroup


class GuestGone(Exception):
    """The guest stopped (or stalled) before the record the host waited for."""


class OutputReader:
    """batch.out, read as the guest writes it."""

    def __init__(self, path: Path):
        path.write_bytes(b"")  # nothing of an earlier attempt's
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.buf = bytearray()

    def close(self) -> None:
        os.close(self.fd)

    def next(self, deadline: float, alive: Callable[[], bool]) -> tuple[int, bytes]:
        """The next whole record (kind, payload); GuestGone when the guest stopped before it
        or DEADLINE (monotonic) passed."""
        while True:
            if len(self.buf) >= _HEAD.size:
                kind, n = _HEAD.unpack_from(self.buf)
                end = _HEAD.size + 8 * n
                if n < 0:
                    raise GuestGone(f"a malformed record in {OUT_NAME}")
                if len(self.buf) >= end:
                    payload = bytes(self.buf[_HEAD.size : end])
                    del self.buf[:end]
                    return kind, payload
            data = os.read(self.fd, 1 << 20)
            if data:
                self.buf += data
                continue
            if not alive():
                data = os.read(self.fd, 1 << 20)  # what it wrote before it went
                if data:
                    self.buf += data
                    continue
                raise GuestGone("the guest ended")
            if time.monotonic() > deadline:
                raise GuestGone("the guest sent nothing in time")
            select.select([], [], [], POLL_S)


def parse_facts(payload: bytes) -> list[tuple[str, str]]:
    text = Words(payload).raw().decode("utf-8", "replace")
    return [tuple(line.split("\t", 1)) for line in text.splitlines() if "\t" in line]  # type: ignore[misc]


def parse_result(payload: bytes) -> CaseOutput:
    r = Words(payload)
    index, timed_out, took_ns = r.word(), r.word(), r.word()
    setup_error = r.raw().decode("utf-8", "replace")
    leftover = r.raw().decode("utf-8", "replace")
    endings = [(r.word(), r.word()) for _ in range(r.word())]
    arena = r.raw()
    init_status, memory_limit_hit = r.word(), bool(r.word())
    output, dropped = r.raw(), r.word()
    refused = r.raw().decode("utf-8", "replace")
    records = [r.raw() for _ in range(r.word())]
    run = CaseRun(records=records, endings=endings, timed_out=bool(timed_out))
    run.init_status, run.output, run.output_dropped = init_status, output, dropped
    out = CaseOutput(index, run, took_ns / 1e9, setup_error, leftover, arena, refused)
    out.memory_limit_hit = memory_limit_hit
    return out


def command(exe: Path, job: Path) -> list[str]:
    """The batch executor's command line, on JOB's two streams."""
    return [str(exe), "--batch", str(job / IN_NAME), str(job / OUT_NAME)]


@dataclass
class HostBatch:
    """A batch whose executor runs on this host, not in a guest, for the host's part
    (guestrun.drive) to drive: ``alive`` while it runs, ``status`` once it ended."""

    exe: Path
    writer: BatchWriter
    reader: OutputReader
    provision: Path  # where the host's part makes the cases' provisions
    alive: Callable[[], bool]
    status: int | None = None


@contextlib.contextmanager
def on_this_host(job: Path) -> Iterator[HostBatch]:
    """The executor built statically into JOB (as for a guest) and started on JOB's streams,
    its stderr in JOB/stderr.txt; at the end the streams are closed and it is waited for."""
    exe = build.build(job / "mmapconf-exec", static=True)
    provision = job / "provision"
    provision.mkdir()
    writer = BatchWriter(job / IN_NAME)
    reader = OutputReader(job / OUT_NAME)
    with open(job / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(command(exe, job), stderr=err)
    here = HostBatch(exe, writer, reader, provision, lambda: proc.poll() is None)
    try:
        yield here
    finally:
        writer.close()
        reader.close()
        here.status = proc.wait(timeout=HOST_EXIT_S)
