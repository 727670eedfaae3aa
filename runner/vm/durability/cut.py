"""One power-cut case on one filesystem under one kernel: two boots, two (or more) results.

1. The cut boot: a fresh disk through qemu's blklogwrites filter; the native executor's batch
   runs the case's processes in the guest, planned, compiled and judged here (batchboot.py).
   When the process at ``power_cut`` says "stored", the batch writes its marker to the disk past
   the filesystem (marker.py) and then passes "stored" to its stderr (a file of the job folder,
   shared over 9p); the host waits ``after_ms`` on its own monotonic
   clock, polling the write log's size every POLL_S, and kills qemu's process group (SIGKILL):
   the power cut. "stored" is placed in the log at the marker's entry, by content; the host's
   clock gives only the times after "stored".
2. The disk models: **submitted**, the image as qemu left it (everything the guest's disk had
   completed: a disk without a volatile cache), and **flushed**, a clean copy of the disk made
   before the boot with the log replayed up to its last flush (a cut that also loses the disk's
   write cache); with ``at: every_flush`` also the disk at each flush after "stored".
3. The judge boot: every model attached read-only (snapshot=on); the batch mounts each and
   runs ``after_reboot`` on it, one case per disk, judged here.

A guest that never says "stored" (or brings no judgement back) within the timeout is booted once
more, then its results are errors. Everything (qemu, disks, log) lives in one temporary folder
removed whatever the outcome, an interrupt included; console logs of failed boots are kept.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.engine import interrupt
from runner.engine.backings import Backing
from runner.lang.model import Case
from runner.lang.ops import DISK_MODELS
from runner.session.runner import Item
from runner.vm import guestrun, qemu
from runner.vm.batch import MarkerEntry

from . import marker, writelog
from .batchboot import DISK_DIR, STORED, Driver, JudgedDisk, cut_case, judge_case, wait_for_guest
from .survival import survival

POLL_S = 0.005
# The filesystem's 512 MiB (mkfs.xfs wants 300 MB; below 512 MiB mkfs.ext4 makes 1 KiB blocks),
# then 1 MiB of the disk that is never the filesystem's: the marker's place (marker.py). Sparse.
FS_BYTES = 512 << 20
DISK_BYTES = FS_BYTES + (1 << 20)
DEVICE = "/dev/vda"  # the logged disk, as the cut boot's guest sees it
MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F", "{disk}", f"{FS_BYTES >> 10}k"],
    "xfs": ["mkfs.xfs", "-q", "-f", "-d", f"size={FS_BYTES}", "{disk}"],
    "btrfs": ["mkfs.btrfs", "-q", "-f", "-b", str(FS_BYTES), "{disk}"],
}
CLOCK = (
    f"host CLOCK_MONOTONIC, polling the write log's size every {POLL_S * 1000:g} ms, from the "
    "poll that first saw the marker's entry in the log"
)
MAX_POINTS = 12  # crash points judged for one case
# Disks of one judge boot: qemu's microvm has 24 virtio-mmio slots with ACPI (its second
# IOAPIC), 8 without, and the 9p shares take two or three of them.
MAX_DISKS = {True: 16, False: 5}


@dataclass(frozen=True)
class Options:
    """What the user chose of the power cut (``run --cut-model``, ``--disk-cache``,
    ``--judge-boots``): the disk models judged, qemu's cache mode for the logged disk, and how
    many boots judge the same disks (their judgements must agree)."""

    models: tuple[str, ...] = DISK_MODELS
    cache: str = "writeback"
    judge_boots: int = 1


@dataclass
class Boots:
    """What the caller (runner/vm/run.py) knows how to make: the GuestSpec of one boot, and the
    guest's command, the native executor's batch on the job folder's streams. ``keep`` is where
    console logs of failed boots go."""

    spec: Callable[..., qemu.GuestSpec]  # (job, fs, disk=, disk_log=, more_disks=)
    command: Callable[[Path], None]  # (job): writes JOB/cmd.sh
    keep: Path
    timeout: float
    options: Options = Options()
    log: Callable[[str], None] = print


@dataclass
class Watch:
    """What the host saw of the cut boot."""

    stored_s: float | None = None  # host monotonic time of "stored"
    nonce: str = ""  # of the boot that said "stored": its marker in the log
    marker_end: int = 0  # where the marker's entry ends in the log (bytes)
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (s after stored, log size)
    exited: bool = False  # the guest ended by itself (before "stored")
    hung: bool = False
    boots_s: list[float] = field(default_factory=list)  # wall time of each boot
    result: dict[str, Any] | None = None  # the case's, when it ended before "stored"


@dataclass
class Cut:
    """One case after its cut boot: its disks by model, waiting for the judge boot."""

    case: Case
    spec: dict[str, Any]
    models: dict[str, Path]
    points: dict[str, int]
    log: writelog.Log
    stored: int
    watch: Watch
    after_ms: int
    points_left_out: int = 0  # crash points after MAX_POINTS
    # per judge boot, each model's result (a boot that brought nothing back: none)
    judged: list[dict[str, dict[str, Any]]] = field(default_factory=list)


def run_cases(boots: Boots, cases: list[Case], fs: str) -> list[dict[str, Any]]:
    """The results of each of CASES on FS: ID[disk/submitted], ID[disk/flushed] (and crash
    points). Each case has its own cut boot; one judge boot judges the disks of several."""
    work = Path(tempfile.mkdtemp(prefix="mmapconf-cut."))
    try:
        return _run(boots, cases, fs, work)
    finally:
        with interrupt.deferred():  # a second interrupt does not leave the images behind
            shutil.rmtree(work, ignore_errors=True)


def run_case(boots: Boots, case: Case, fs: str) -> list[dict[str, Any]]:
    return run_cases(boots, [case], fs)


def _run(boots: Boots, cases: list[Case], fs: str, work: Path) -> list[dict[str, Any]]:
    done: list[Cut | list[dict[str, Any]]] = []
    for i, case in enumerate(cases):
        t0 = time.monotonic()
        done.append(_cut(boots, case, fs, work / f"case-{i}"))
        boots.log(f"  {case.id} [{fs}]: cut boot {time.monotonic() - t0:.1f} s")
    cuts = [c for c in done if isinstance(c, Cut)]
    most = MAX_DISKS[boots.spec(work, fs).acpi]
    batch: list[Cut] = []
    for c in cuts:
        if batch and sum(len(b.models) for b in batch) + len(c.models) > most:
            _judge_boot(boots, batch, work, fs)
            batch = []
        batch.append(c)
    if batch:
        _judge_boot(boots, batch, work, fs)
    out: list[dict[str, Any]] = []
    for item in done:
        out += item if isinstance(item, list) else _results(item, boots.options.cache)
    return out


def _cut(boots: Boots, case: Case, fs: str, work: Path) -> Cut | list[dict[str, Any]]:
    cut_step = case.power_cut
    assert cut_step is not None
    after_ms = int(cut_step.args.get("after_ms", 0))
    spec = {"id": case.id, "fs": fs}
    work.mkdir()
    watch, disk, base, log_path = _cut_boot(boots, case, spec, work, after_ms)
    if watch.stored_s is None:
        return _before_cut(boots, case, fs, work, watch)
    log, stored_index, why = _placed(log_path, watch)
    if why:
        return [_error(case, fs, m, why) for m in boots.options.models]
    models = {"submitted": disk} if "submitted" in boots.options.models else {}
    if "flushed" in boots.options.models:
        models["flushed"] = writelog.replay(
            log_path, log, base, work / "flushed.img", writelog.last_flush(log)
        )
    points, left_out = _points(log, stored_index, cut_step.args.get("at"))
    for name, upto in points.items():
        models[name] = writelog.replay(log_path, log, base, work / f"{name}.img", upto)
    base.unlink()
    log_path.unlink()
    return Cut(case, spec, models, points, log, stored_index, watch, after_ms, left_out)


def _placed(log_path: Path, watch: Watch) -> tuple[writelog.Log, int, str]:
    """The log without the marker, "stored" (the marker's index: the entries before it), and
    why there is none: no marker, or writes past the filesystem other than the marker."""
    log = writelog.read_log(log_path)
    found = marker.find(log_path, log, FS_BYTES, watch.nonce)
    if found.entry is None:
        return log, 0, "the guest said 'stored' but its marker is not in the write log"
    if found.foreign:
        why = f"{found.foreign} write(s) past the filesystem besides the marker (a harness fault)"
        return log, 0, why
    watch.marker_end = found.entry.end
    return marker.without(log, found.entry), found.entry.index, ""


def _results(c: Cut, cache: str) -> list[dict[str, Any]]:
    facts = _facts(c.log, c.stored, c.watch, c.after_ms, cache)
    out = []
    fs = c.spec["fs"]
    first = c.judged[0] if c.judged else {}
    for model in c.models:
        r = first.get(model) or _error(c.case, fs, model, "the judge boot brought no result")
        r.setdefault("facts", {}).update({"backing": "disk", "fs": fs, "disk": model})
        r["durability"] = {**facts, "data": survival(c.case, r)}
        if len(c.judged) > 1:
            _agree(r, [j.get(model) for j in c.judged])
        if model.startswith("point-"):
            r["durability"]["point"] = _describe_point(c.log, c.points[model], c.stored, c.watch)
        out.append(r)
    points = [r for r in out if "point" in r["durability"]]
    for r in out if points else []:
        if "point" not in r["durability"]:
            r["durability"]["first_survived"] = _first_survived(points, r["facts"]["disk"])
            r["durability"]["points_judged"] = len(points)
            r["durability"]["points_left_out"] = c.points_left_out
    return out


def _judgement(r: dict[str, Any] | None) -> str:
    """What a judge boot said of one disk: the outcome, its reason and every step's
    observation (not the times)."""
    if r is None:
        return "no result"
    steps = "; ".join(
        f"step {s.get('step')} ({s.get('op')}): {s.get('observed')}" for s in r.get("steps") or []
    )
    return f"{r.get('outcome')}: {r.get('reason') or 'as expected'} [{steps}]"


def _agree(r: dict[str, Any], judged: list[dict[str, Any] | None]) -> None:
    """R judged again by the later boots: an error if any of them judged its disk otherwise
    (a disk replayed from the log is the same disk every time: its result must be too)."""
    said = [_judgement(j) for j in judged]
    same = len(set(said)) == 1
    r["durability"]["judge_boots"] = {"boots": len(judged), "same": same}
    if not same:
        r["outcome"] = "error"
        r["reason"] = "the judge boots judged this disk differently: " + " | ".join(
            f"boot {i}: {text}" for i, text in enumerate(said, 1)
        )


def _first_survived(points: list[dict[str, Any]], model: str) -> dict[str, Any] | None:
    """The first crash point from which the data survives a cut in MODEL: the disk at "stored"
    or after any later entry for a disk without a volatile cache (submitted), only the disk at a
    flush for one that loses its cache (flushed)."""
    for r in sorted(points, key=lambda r: r["durability"]["point"]["entries_replayed"]):
        p = r["durability"]["point"]
        if model == "flushed" and p["last_op"] not in ("flush", "nothing"):
            continue
        if model == "submitted" and p["entries_after_stored"] < 0:
            continue  # the flushed disk at "stored", not the one without a volatile cache
        if r["durability"]["data"] == "survived":
            made_by = (
                "the case, before 'stored'"
                if p["before_stored"]
                else f"a {p['last_op']} after 'stored' (writeback or a filesystem commit: "
                "the case made no call)"
            )
            return {"point": r["facts"]["disk"], "t_s": p["t_s"], "made_by": made_by}
    return None


def _cut_boot(
    boots: Boots, case: Case, spec: dict[str, Any], work: Path, after_ms: int
) -> tuple[Watch, Path, Path, Path]:
    job = work / "cut"
    job.mkdir()
    disk, base, log_path = work / "disk.img", work / "base.img", work / "disk.log"
    watch = Watch()
    backing = Backing("disk", "disk", DISK_DIR, spec["fs"])
    item = Item(f"{case.id}[disk]", backing, case=cut_case(case))
    for attempt in (1, 2):
        nonce = secrets.token_hex(16)  # this boot's: a marker of no other boot matches
        boots.command(job)
        for p in (disk, base, log_path, job / "stderr.txt"):
            p.unlink(missing_ok=True)
        _mkfs(spec["fs"], disk)
        writelog.sparse_copy(disk, base)
        log_path.touch()  # qemu opens the log, it does not create it
        gs = boots.spec(job, spec["fs"], disk=disk, disk_log=log_path)
        gs.disk_cache = boots.options.cache
        driver = Driver(job, lambda facts: [item], MarkerEntry(DEVICE, FS_BYTES, nonce))
        watch = _watch(gs, job, log_path, after_ms, boots.timeout, driver)
        watch.nonce = nonce
        if watch.exited:
            _keep_console(boots, job, spec, "cut")
        if not watch.hung:
            break
        _keep_console(boots, job, spec, f"cut.attempt{attempt}")
        boots.log(f"  {spec['id']} [{spec['fs']}]: the guest hung before 'stored' ({attempt})")
    return watch, disk, base, log_path


def _watch(
    gs: qemu.GuestSpec, job: Path, log_path: Path, after_ms: int, timeout: float, driver: Driver
) -> Watch:
    w = Watch()
    p: subprocess.Popen | None = None
    t0 = time.monotonic()
    with open(job / "console.log", "wb") as console:
        try:
            # An interrupt while qemu starts is raised once p is known, so it is killed.
            with interrupt.deferred():
                p = subprocess.Popen(
                    qemu.command(gs),
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            driver.start(lambda: p.poll() is None)
            _poll(p, w, job / "stderr.txt", log_path, after_ms, t0 + timeout, driver.silent)
        finally:
            with interrupt.deferred():
                if p is not None and p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)  # the power cut, or a hung guest's end
                if p is not None:
                    p.wait()
                results = driver.join()
            w.boots_s.append(round(time.monotonic() - t0, 2))
    if w.stored_s is None and results:
        w.result = results[0].to_json()
    return w


def _poll(
    p: subprocess.Popen,
    w: Watch,
    stderr: Path,
    log_path: Path,
    after_ms: int,
    deadline: float,
    silent: threading.Event,
) -> None:
    """Watch the cut boot until "stored" and AFTER_MS more (the cut), its guest's own end, or a
    hang: past DEADLINE, or SILENT (its facts never came: hung early, booted again at once)."""
    while True:
        now = time.monotonic()
        if w.stored_s is None:
            if _said_stored(stderr):  # the marker is in the log: the guest wrote it before
                w.stored_s = time.monotonic()  # after the read: a delay before it inflates nothing
                w.timeline.append((0.0, _size(log_path)))
            elif p.poll() is not None:
                w.exited = True
                return
            elif now > deadline or silent.is_set():
                w.hung = True
                return
        else:
            size = _size(log_path)
            since = time.monotonic() - w.stored_s
            if size != w.timeline[-1][1]:
                w.timeline.append((round(since, 4), size))
            if since * 1000 >= after_ms or p.poll() is not None:
                return
        time.sleep(POLL_S)


def _said_stored(stderr: Path) -> bool:
    try:
        with open(stderr, "rb") as f:
            return STORED in f.read()
    except FileNotFoundError:
        return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _judge_boot(boots: Boots, batch: list[Cut], work: Path, fs: str) -> None:
    """Every disk of BATCH (each case's models) judged in each of the judge boots the options
    ask for, each case's results filled in."""
    for n in range(1, boots.options.judge_boots + 1):
        for c in batch:
            c.judged.append({})
        _judge_once(boots, batch, work, fs, n)


def _judge_once(boots: Boots, batch: list[Cut], work: Path, fs: str, n: int) -> None:
    """One boot judging every disk of BATCH (one case each, the disks in the order qemu
    attaches them: /dev/vda, vdb, ...), into each case's last judgement; a boot that does not
    bring every judgement back is tried once more."""
    disks = [(c, m, p) for c in batch for m, p in c.models.items()]
    items = [
        Item(f"{c.case.id}[disk/{m}]", JudgedDisk(f"disk/{m}", "disk", None, fs,
             device=f"/dev/vd{chr(ord('a') + i)}", model=m), case=judge_case(c.case))
        for i, (c, m, _) in enumerate(disks)
    ]  # fmt: skip
    job = work / f"judge-{batch[0].case.id}-{n}"
    job.mkdir(parents=True, exist_ok=True)
    boots.command(job)
    spec = boots.spec(job, fs, more_disks=[p for _, _, p in disks])
    ids = ", ".join(c.case.id for c in batch)
    for attempt in (1, 2):
        t0 = time.monotonic()
        driver = Driver(job, lambda facts: items)
        with qemu.Guest(spec) as guest:
            driver.start(guest.alive)
            wall = round(wait_for_guest(guest, driver, boots.timeout).wall_s, 2)
        results = driver.join()
        boots.log(f"  {ids} [{fs}]: judge boot {n}: {time.monotonic() - t0:.1f} s")
        for c in batch:
            c.watch.boots_s.append(wall)
        judged = 0
        for (c, m, _), r in zip(disks, results, strict=False):
            if not r.reason.startswith(guestrun.NO_RESULT):
                c.judged[-1][m] = r.to_json()
                judged += 1
        if judged == len(disks):
            return
        _keep_console(boots, job, batch[0].spec, f"judge{n}.attempt{attempt}")
        got = f"{judged} of {len(disks)} judgements"
        boots.log(f"  {ids} [{fs}]: judge boot {n} brought {got} back ({attempt})")


def _before_cut(
    boots: Boots, case: Case, fs: str, work: Path, watch: Watch
) -> list[dict[str, Any]]:
    """No "stored": the case ended before its power cut (its result says why), or the guest
    hung twice."""
    pre = watch.result
    out = []
    for model in boots.options.models:
        if pre is None:
            why = "the guest hung twice before 'stored'" if watch.hung else _said(work / "cut")
            r = _error(case, fs, model, f"{why} (console logs in {boots.keep})")
        else:
            r = dict(pre, name=f"{case.id}[disk/{model}]", backing=f"disk/{model}")
            r["reason"] = "before the power cut: " + (r.get("reason") or "the case ended")
            if r.get("outcome") == "passed":
                r["outcome"] = "error"  # a case that never reached its cut judged nothing
        r.setdefault("facts", {}).update({"backing": "disk", "fs": fs, "disk": model})
        out.append(r)
    return out


def _said(job: Path) -> str:
    """Why a guest that ended before "stored" brought no result: the end of its stderr."""
    try:
        tail = (job / "stderr.txt").read_text(errors="replace").strip()[-300:]
    except OSError:
        tail = ""
    return "the guest ended before 'stored' with no result" + (f": {tail}" if tail else "")


def _error(case: Case, fs: str, model: str, reason: str) -> dict[str, Any]:
    return {
        "name": f"{case.id}[disk/{model}]",
        "id": case.id,
        "backing": f"disk/{model}",
        "file": case.file,
        "line": case.line,
        "outcome": "error",
        "reason": reason,
        "title": case.title,
        "claim": case.claim,
        "refs": case.refs,
        "tags": case.tags,
        "steps": [],
        "facts": {"backing": "disk", "fs": fs, "disk": model},
    }


def _mkfs(fs: str, disk: Path) -> None:
    with open(disk, "wb") as f:
        f.truncate(DISK_BYTES)
    argv = [a.replace("{disk}", str(disk)) for a in MKFS[fs]]
    subprocess.run(argv, check=True, capture_output=True)


def _keep_console(boots: Boots, job: Path, spec: dict[str, Any], what: str) -> None:
    boots.keep.mkdir(parents=True, exist_ok=True)
    for name in ("console.log", "stderr.txt"):
        src = job / name
        if src.is_file():
            shutil.copyfile(src, boots.keep / f"{spec['id']}-{spec['fs']}-{what}.{name}")


def _points(log: writelog.Log, stored: int, at: str | None) -> tuple[dict[str, int], int]:
    """The crash points judged besides the two models, as entry counts of the log replayed onto
    the clean disk: the disk at "stored" in each model, then after each flush (or each
    completed write) that followed; and how many MAX_POINTS left out. The flushes are kept
    before the writes, so the flushed model's first point is never left out for a write's."""
    if at is None:
        return {}, 0
    after = log.entries[stored:]
    flushes = [e.index + 1 for e in after if e.kind == "flush"]
    writes = [e.index + 1 for e in after if e.kind == "write"] if at == "every_write" else []
    kept = (flushes + writes)[:MAX_POINTS]
    counts = sorted({writelog.last_flush(log, before=stored), stored, *kept})
    return {f"point-{n}": n for n in counts}, len(flushes) + len(writes) - len(kept)


def _facts(
    log: writelog.Log, stored: int, watch: Watch, after_ms: int, cache: str
) -> dict[str, Any]:
    after = log.entries[stored:]
    return {
        "cut_after_ms": after_ms,
        # by content: the guest's marker write past the filesystem, STORED entries into the log
        "stored_at": {"by": "marker", "entry": stored, "disk_offset": FS_BYTES},
        "qemu_cache": cache,
        "flushes_after_stored": sum(e.kind == "flush" for e in after),
        "writes_after_stored": sum(e.kind == "write" for e in after),
        "bytes_written_after_stored": sum(
            e.sectors * log.sector_size for e in after if e.kind == "write"
        ),
        "flushes_before_stored": sum(e.kind == "flush" for e in log.entries[:stored]),
        "boots_s": watch.boots_s,
        "timeline_clock": CLOCK,
        "timeline": _timeline(after, watch),
    }


def _seen_s(entry: writelog.Entry, watch: Watch) -> float | None:
    """When the host first saw ENTRY complete in the log, in seconds after its first poll that
    saw the marker there (the poll that saw "stored": the guest wrote the marker first)."""
    marker_s = next((t for t, size in watch.timeline if size >= watch.marker_end), 0.0)
    seen = next((t for t, size in watch.timeline if size >= entry.end), None)
    return None if seen is None else round(seen - marker_s, 4)


def _timeline(after: list[writelog.Entry], watch: Watch) -> list[dict[str, Any]]:
    """The log after "stored", writes between two flushes taken together."""
    out: list[dict[str, Any]] = []
    for e in after:
        t = _seen_s(e, watch)
        last = out[-1] if out else None
        if e.kind == "write" and last is not None and last["op"] == "writes":
            last["count"] += 1
            last["bytes"] += e.sectors * 512
            continue
        op = "writes" if e.kind == "write" else e.kind
        item = {"t_s": t, "op": op, "count": 1, "bytes": e.sectors * 512 if op == "writes" else 0}
        out.append(item)
    return out[:100]


def _describe_point(log: writelog.Log, upto: int, stored: int, watch: Watch) -> dict[str, Any]:
    entry = log.entries[upto - 1] if upto > 0 else None
    after = upto > stored and entry is not None
    return {
        "entries_replayed": upto,
        "entries_after_stored": upto - stored,
        "before_stored": not after,
        "last_op": entry.kind if entry else "nothing",
        "t_s": _seen_s(entry, watch) if after and entry else 0.0,
    }
