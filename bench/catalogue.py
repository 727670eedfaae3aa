"""Whole-catalogue figures: load + validate, a full run by each front end, and linearity."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runner.lang.loader import Suite, load_suite
from runner.session.pipeline import execute
from runner.session.runner import Item, Runner

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Timed:
    """One timed command: wall seconds, peak RSS and how it ended."""

    command: str
    wall_s: float
    cpu_s: float  # user + system, of the process and every descendant it reaped
    peak_rss_kib: int
    exit_code: int
    summary: str = ""


def load_times(paths: list[str], repeats: int) -> tuple[list[float], Suite]:
    """``load_suite`` wall times (the first is the coldest this process will see)."""
    times, suite = [], Suite()
    for _ in range(repeats):
        t0 = time.perf_counter()
        suite = load_suite(paths)
        times.append(time.perf_counter() - t0)
    return times, suite


def timed_command(argv: list[str], shown: str) -> Timed:
    """Run ``argv`` from the repository root. ``wait4`` gives its peak RSS: the largest of the
    process and of the descendants it reaped (case processes and workers are forks of it)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    lines = [ln for ln in output.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if " in " in ln and "passed" in ln), "")
    if not summary and lines:
        summary = lines[-1][:200]
    cpu = usage.ru_utime + usage.ru_stime
    return Timed(shown, wall, cpu, usage.ru_maxrss, proc.returncode, summary.strip())


def cli_run(paths: list[str], jobs: int) -> Timed:
    argv = [sys.executable, "-m", "runner", "run", *paths, "-n", str(jobs)]
    shown = f"mmapconf run {' '.join(paths)} -n {jobs}"
    # The reports (a few MB each) are not kept: removed with their folder.
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-report-") as report_dir:
        return timed_command([*argv, "--report-dir", report_dir], shown)


def cli_validate(paths: list[str]) -> Timed:
    argv = [sys.executable, "-m", "runner", "validate", *paths]
    return timed_command(argv, f"mmapconf validate {' '.join(paths)}")


def pytest_run(paths: list[str], jobs: int) -> Timed:
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-pytest-") as report_dir:
        return _pytest_run(paths, jobs, report_dir)


def _pytest_run(paths: list[str], jobs: int, report_dir: str) -> Timed:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "conformance",
        *paths,
        "-n",
        str(jobs),
        "-q",
        "-p",
        "no:cacheprovider",
        "--mmapconf-report-dir",
        report_dir,
    ]
    return timed_command(argv, f"pytest {' '.join(paths)} -n {jobs}")


def pytest_collects(paths: list[str]) -> tuple[bool, str]:
    """Whether ``pytest PATHS`` collects any case at all (the plugin may not be there yet)."""
    argv = [sys.executable, "-m", "pytest", "-p", "conformance", *paths, "--collect-only", "-q"]
    argv += ["-p", "no:cacheprovider"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit {done.returncode}"
    collected = done.returncode in (0, 1) and "::" in done.stdout  # 1: invalid cases, still ran
    return collected, last


def _cpu() -> float:
    """CPU of this process and of reaped descendants (pool workers count once the pool ends)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def in_process(
    runner: Runner, items: list[Item], factor: int, jobs: int
) -> tuple[float, float, dict]:
    """The item list repeated ``factor`` times, run as ``mmapconf run -n jobs`` runs it.
    Returns wall seconds, CPU seconds and the outcome counts."""
    todo = items * factor
    counts: dict[str, int] = {}
    c0 = _cpu()
    t0 = time.perf_counter()
    for _, result in execute(runner, todo, jobs):
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    wall = time.perf_counter() - t0
    return wall, _cpu() - c0, counts
