"""Where a case-run's CPU goes: ``python3 bench/phases.py [ITEM...]``.

Wraps engine functions with ``time.thread_time()`` counters kept in a shared anonymous page, so
the case processes (forks) add to the same totals as the harness. Prints CPU ms per case-run for
each phase, beside a raw fork + wait child's CPU. The wrapped names follow the engine as it is;
one that no longer exists is skipped and named, not an error.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.engine import backings, caseinit, executor, process  # noqa: E402
from runner.lang.loader import load_suite  # noqa: E402
from runner.session import runner as session  # noqa: E402
from runner.session.runner import RunConfig, Runner  # noqa: E402

DEFAULT_ITEMS = ["bench-one-process[anon]", "bench-two-process[anon]", "bench-fork[anon]"]
AFTER_FORK, CHILD_TOTAL, RAW_CHILD = (
    "case process: after fork (fork return, Python's at-fork hooks)",
    "case process: whole (CPU until _exit)",
    "raw fork + wait child: whole",
)
# (label, owner, attribute): "c" rows run in case processes, "h" rows in the harness.
PHASES: list[tuple[str, Any, str]] = [
    ("c Process.begin", process.Process, "begin"),
    ("c   sandbox.confine", getattr(process, "sandbox", None), "confine"),
    ("c   _limit_address_space", process, "_limit_address_space"),
    ("c   faults.install", process.faults, "install"),
    ("c reports: json.dumps + socket.send", process.Process, "send"),
    ("c steps' own work (perform)", process.Process, "perform"),
    ("c argument resolution", process.Process, "resolve"),
    ("h run_item", session.Runner, "run_item"),
    ("h   scratch folder: make", backings.Backing, "scratch"),
    ("h   scratch folder: remove", session, "remove_scratch"),
    ("h   execute", session, "execute"),
    ("h     _collect: poll loop", executor, "_collect"),
    ("h       _drain: recv + json.loads", executor, "_drain"),
    ("h     _kill_and_reap", executor, "_kill_and_reap"),
    ("h   verdict", session, "judge_execution"),
]


class Counters:
    """Seconds and calls per label, in memory shared with every fork."""

    def __init__(self, labels: list[str]):
        self.labels = labels
        self._page = mmap.mmap(-1, 16 * len(labels))
        self._cells = (ctypes.c_double * (2 * len(labels))).from_buffer(self._page)

    def add(self, label: str, seconds: float) -> None:
        i = self.labels.index(label)
        self._cells[2 * i] += seconds
        self._cells[2 * i + 1] += 1

    def reset(self) -> None:
        ctypes.memset(ctypes.addressof(self._cells), 0, ctypes.sizeof(self._cells))

    def rows(self) -> list[tuple[str, float, float]]:
        c = self._cells
        return [(lb, c[2 * i], c[2 * i + 1]) for i, lb in enumerate(self.labels) if c[2 * i + 1]]


def _timed(counters: Counters, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            counters.add(label, time.thread_time() - t0)

    return wrapper


def instrument(counters: Counters) -> list[str]:
    """Wrap every phase that exists; returns the labels of those that do not."""
    missing = []
    for label, owner, attr in PHASES:
        fn = getattr(owner, attr, None) if owner is not None else None
        if fn is None:
            missing.append(label)
            continue
        setattr(owner, attr, _timed(counters, label, fn))
    case_main, real_exit = caseinit.case_main, os._exit  # the case's init calls it

    def timed_case_main(*args: Any) -> None:
        counters.add(AFTER_FORK, time.thread_time())  # a fork's thread clock starts at 0
        case_main(*args)

    def timed_exit(code: int) -> None:
        counters.add(CHILD_TOTAL, time.thread_time())
        real_exit(code)

    setattr(caseinit, "case_main", timed_case_main)  # noqa: B010 - a monkeypatch, untyped on purpose
    setattr(os, "_exit", timed_exit)  # noqa: B010 - only case processes call it, never the harness
    return missing


def raw_fork_wait(counters: Counters, real_exit: Callable[[int], None]) -> float:
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        counters.add(RAW_CHILD, time.thread_time())
        real_exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    names = argv or DEFAULT_ITEMS
    os.chdir(ROOT)
    counters = Counters([AFTER_FORK, CHILD_TOTAL, RAW_CHILD, *(p[0] for p in PHASES)])
    real_exit = os._exit
    missing = instrument(counters)
    keep = load_suite(["cases"])  # a real run's heap size: fork cost grows with it
    runner = Runner(RunConfig(executor="python"))  # the phases are the Python executor's
    items = {i.name: i for i in runner.plan(load_suite([str(ROOT / "bench" / "fixtures")]))}
    runs = 200
    for name in names:
        item = items[name]
        for _ in range(5):
            runner.run_item(item)
        counters.reset()
        walls = []
        for _ in range(runs):
            runner.run_item(item)
            walls.append(raw_fork_wait(counters, real_exit))
        print(
            f"== {name}: CPU ms per case-run, mean of {runs} "
            f"(harness holds {len(keep.cases)} cases; raw fork + wait wall median "
            f"{statistics.median(walls) * 1e3:.3f} ms)"
        )
        for label, seconds, calls in counters.rows():
            print(f"   {label:58} {seconds / runs * 1e3:7.3f} ms  ({calls / runs:g} calls)")
    if missing:
        print("not found in the engine (skipped): " + ", ".join(missing))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
