"""The whole suite, run again and again in one process, leaves nothing behind.

After a warm-up pass (imports, the arena, caches), each further pass of cases/ must bring open
file descriptors, threads, child processes, mappings and scratch folders back to where they were.
Scratch folders go to folders of this test's own (``--dir`` and the tmpfs backing's folder), so a
neighbouring test worker's cases cannot be mistaken for a leak.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from hostile_util import ROOT, children, wait_until

from runner.engine import backings, confine
from runner.engine.owner import owner_tag
from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner

PASSES = 3  # one warm-up, then two that must each end where the warm-up ended
MAPS_SLACK = 8  # the allocator may keep or drop an arena or two between passes


def _count(path: str) -> int:
    return len(os.listdir(path))


def _maps() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def _snapshot(dirs: list[Path]) -> dict[str, int]:
    gc.collect()
    return {
        "fds": _count("/proc/self/fd"),
        "threads": threading.active_count(),
        "tasks": _count("/proc/self/task"),
        "children": len(children()),
        "maps": _maps(),
        "scratch": sum(_count(str(d)) for d in dirs),
    }


@pytest.fixture
def private_scratch(monkeypatch):
    disk = Path(tempfile.mkdtemp(prefix="hostile-leaks-"))
    shm = Path(tempfile.mkdtemp(prefix="hostile-leaks-", dir=backings.SHM_DIR))
    monkeypatch.setattr(backings, "SHM_DIR", str(shm))
    yield [disk, shm]
    for d in (disk, shm):
        for leftover in d.iterdir():
            os.system(f"rm -rf {leftover}")  # noqa: S605 - only our own temp folders
        d.rmdir()


def test_running_the_whole_suite_repeatedly_leaks_nothing(private_scratch):
    suite = load_suite([str(ROOT / "cases")])
    assert len(suite.cases) > 50
    runner = Runner(RunConfig(dirs=[str(private_scratch[0])]))
    assert runner.kinds["tmpfs"][0].dir == str(private_scratch[1])
    items = runner.plan(suite)
    seen = []
    for n in range(PASSES):
        start = time.monotonic()
        outcomes = [runner.run_item(item).outcome for item in items]
        after = _snapshot(private_scratch)
        seen.append(after)
        print(f"pass {n + 1}: {len(outcomes)} items in {time.monotonic() - start:.1f} s; {after}")
        assert "timeout" not in outcomes  # a hung case would hide leaks behind its kill
    base = seen[0]
    for n, now in enumerate(seen[1:], start=2):
        for key in ("fds", "threads", "tasks", "children", "scratch"):
            assert now[key] == base[key], f"pass {n}: {key} went from {base[key]} to {now[key]}"
        assert now["scratch"] == 0
        assert now["maps"] <= base["maps"] + MAPS_SLACK, f"pass {n}: mappings {base} -> {now}"
    runner.close()  # the native executor's fork server lives as long as its runner
    assert _snapshot(private_scratch)["children"] == 0


def test_parallel_runs_leave_no_worker_fd_or_scratch_behind(private_scratch):
    """-n 2 twice over cases/article: the pool's workers, pipes and scratch folders all go."""
    from runner.session.parallel import run_parallel

    runner = Runner(RunConfig(dirs=[str(private_scratch[0])]))
    items = runner.plan(load_suite([str(ROOT / "cases" / "article")]))
    seen = []
    for _ in range(3):
        outcomes = [r.outcome for r in run_parallel(runner, items, 2)]
        assert len(outcomes) == len(items) and "timeout" not in outcomes
        seen.append(_snapshot(private_scratch))
    for now in seen[1:]:
        for key in ("fds", "threads", "tasks", "children", "scratch"):
            assert now[key] == seen[0][key], f"{key}: {seen[0]} -> {now}"
    assert seen[-1]["children"] == 0 and seen[-1]["scratch"] == 0


# -- a killed harness: what it leaves, and what the next run removes --------------------------
MARK = "MMAPCONF_LEAK_MARK"


def _marked(mark: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if f"{MARK}={mark}".encode() in Path(f"/proc/{entry}/environ").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _leftovers(tags: set[str], dirs: list[Path]) -> list[str]:
    """Cgroup and scratch folders named after any of ``tags`` (their owners' pid.starttime)."""
    out = []
    for controller in ("pids", "memory"):
        root = Path(confine.CGROUP_ROOT, controller)
        out += [str(p) for p in root.glob(f"**/{confine.CGROUP_DIR}/*") if p.name in tags]
    for d in dirs:
        out += [str(p) for p in d.glob("mmapconf-*") if p.name.split("-")[1] in tags]
    return out


def _our_mounts(tmp_path: Path) -> list[str]:
    """Host mounts a run of ours could have made (others' tests may mount elsewhere meanwhile)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [m for m in lines if str(tmp_path) in m]


COMMANDS = {
    "run": lambda d: [sys.executable, "-m", "runner", "run", "cases/article", str(d / "slow"), "-n", "2", "--dir", str(d), "--report-dir", str(d / "r")],
    "pytest": lambda d: [sys.executable, "-m", "pytest", "cases/article", str(d / "slow"), "-n", "2", "-q", "-p", "no:cacheprovider", "--dir", str(d)],
}  # fmt: skip
# Beside the article's cases, which are quick enough for every scratch folder to come and go
# between two looks on a loaded machine: one that holds its folder for a while.
SLOW = """
id: slow-disk-case
title: holds its scratch folder for 20 s
timeout: 30
steps:
  - file: f
  - sleep: 20000
"""


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name
)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_killed_run_leaves_nothing_the_next_run_does_not_remove(tmp_path, command, sig):
    mark, tags = str(uuid.uuid4()), set()
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "slow.yaml").write_text(SLOW)
    mounts_before = _our_mounts(tmp_path)
    dirs = [tmp_path, Path(backings.SHM_DIR)]
    proc = subprocess.Popen(
        COMMANDS[command](tmp_path), cwd=ROOT, env={**os.environ, MARK: mark},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline, started = time.monotonic() + 60, False
        while time.monotonic() < deadline and not started:
            tags |= {owner_tag(p) for p in _marked(mark)} - {""}
            # remembered, not looked at again: a quick case's folder can go between two looks
            started = any(tmp_path.glob("mmapconf-*"))
            time.sleep(0.01)
        tags |= {owner_tag(p) for p in _marked(mark)} - {""}
        assert started, "no case started"
        os.killpg(proc.pid, sig)  # as a terminal (or CI's timeout) would: the whole group
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    wait_until(lambda: not _marked(mark), 5)
    assert not _marked(mark), "a process of the killed run lives on"
    assert _our_mounts(tmp_path) == mounts_before == []
    # SIGKILL gives no process a chance to clean up; nor does SIGTERM to pytest's xdist workers,
    # whose default action it is. For those the next run is the clean-up.
    if sig == signal.SIGINT or (sig == signal.SIGTERM and command == "run"):
        assert not _leftovers(tags, dirs), "an interrupted run left these"
    Runner(
        RunConfig(dirs=[str(tmp_path)])
    )  # the next run: its start sweeps the dead owners' folders
    assert not _leftovers(tags, dirs), "the next run did not remove these"
