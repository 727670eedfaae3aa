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
# Timed commands import compiled bytecode, as an installed mmapconf does, whatever this shell's
# PYTHONDONTWRITEBYTECODE says (compiling every module again costs a command about 0.25 s of CPU):
# kept in a folder of the benchmark's own, not in the tree.
PYCACHE = Path(tempfile.gettempdir(), "mmapconf-bench-pycache")


def command_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(PYCACHE)}


def warm(paths: list[str]) -> None:
    """One untimed `mmapconf validate`: the bytecode written, the case files' cache filled."""
    argv = [sys.executable, "-m", "runner", "validate", *paths]
    subprocess.run(argv, cwd=ROOT, env=command_env(), capture_output=True, check=False)


@dataclass
class Timed:
    """One timed command: wall seconds, peak RSS and how it ended."""

    command: str
    wall_s: float
    cpu_s: float  # user + system, of the process and every descendant it reaped
    peak_rss_kib: int  # the harness's own: its process and its -n workers
    exit_code: int
    summary: str = ""


def load_times(paths: list[str], repeats: int, cached: bool) -> tuple[list[float], Suite]:
    """``load_suite`` CPU times, every file validated (``cached`` False) or, as a run loads a
    catalogue it has seen before, from the cache of validated files (runner.lang.cache)."""
    times, suite = [], Suite()
    before = os.environ.get("MMAPCONF_NO_CACHE")
    os.environ["MMAPCONF_NO_CACHE"] = "0" if cached else "1"
    try:
        for _ in range(repeats):
            t0 = time.process_time()
            suite = load_suite(paths)
            times.append(time.process_time() - t0)
    finally:
        if before is None:
            del os.environ["MMAPCONF_NO_CACHE"]
        else:
            os.environ["MMAPCONF_NO_CACHE"] = before
    return times, suite


def import_cpu(module: str, repeats: int = 5) -> float:
    """The least CPU a new interpreter takes to import ``module`` (``""``: to start at all)."""
    code = "import resource\n" + (f"import {module}\n" if module else "")
    code += "r = resource.getrusage(resource.RUSAGE_SELF)\nprint(r.ru_utime + r.ru_stime)"
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=command_env(), capture_output=True
        )
        for _ in range(repeats)
    ]
    return min(float(r.stdout) for r in runs)


def timed_command(argv: list[str], shown: str) -> Timed:
    """Run ``argv`` from the repository root. ``wait4`` gives its CPU (of every descendant it
    reaped); its peak RSS is the harness's own: the largest VmHWM of the process and of its
    children that run Python (the -n workers), sampled while it runs. wait4's peak would be the
    largest of any descendant, a mkfs of a case's provision included."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=command_env(), stdout=out, stderr=subprocess.STDOUT
        )
        peak, status, usage = 0, 0, None
        while usage is None:
            peak = max(peak, _harness_hwm_kib(proc.pid))
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                usage = ru
            else:
                time.sleep(0.05)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
        out.seek(0)
        output = out.read().decode(errors="replace")
    lines = [ln for ln in output.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if " in " in ln and "passed" in ln), "")
    if not summary and lines:
        summary = lines[-1][:200]
    cpu = usage.ru_utime + usage.ru_stime
    return Timed(shown, wall, cpu, peak, proc.returncode, summary.strip())


def _harness_hwm_kib(pid: int) -> int:
    """The largest VmHWM of ``pid`` and of its children running this Python (0 when gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return 0
    exe = os.path.realpath(sys.executable)
    peak = 0
    for p in [pid, *children]:
        try:
            if p != pid and os.path.realpath(f"/proc/{p}/exe") != exe:
                continue
            with open(f"/proc/{p}/status") as f:
                hwm = next((ln for ln in f if ln.startswith("VmHWM:")), "VmHWM: 0")
        except OSError:
            continue
        peak = max(peak, int(hwm.split()[1]))
    return peak


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
