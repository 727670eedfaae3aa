"""Helpers shared by the hostile-input tests: run case text, watch processes and scratch folders."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

from runner.lang.loader import load_suite
from runner.session.runner import Result, RunConfig, Runner

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int | None = None) -> set[int]:
    """Live children of ``pid`` (default: this process). The harness is a child subreaper, so
    once a case has been reaped, no descendant of it can hide anywhere but here."""
    pid = pid or os.getpid()
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry))
    return out


def run_text(
    tmp_path: Path, text: str, backings: list[str] | None = None, name: str = "case.yaml"
) -> dict[str, Result]:
    """Run the case(s) in ``text`` in this process; results by item name."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    runner = Runner(RunConfig(backings=backings, dirs=[str(tmp_path)]))
    suite = load_suite([str(path)])
    try:
        return {r.name: r for r in map(runner.run_item, runner.plan(suite))}
    finally:
        runner.close()  # the native executor's fork server is the runner's, not the case's


def mmapconf(*args: str) -> list[str]:
    return [sys.executable, "-m", "runner", *args]


def wait_until(predicate, timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
