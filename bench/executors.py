"""The figures of issue 13 (the native executor), in one run.

Every time is a ratio to a unit measured in the same run (raw fork + wait of this process), or
a ratio of two figures of the same run; nothing here is asserted. CPU counts every process: the
harness, its workers, the native fork server and each case process (the server's share is read
from /proc while it lives and counted through wait4 once it is reaped).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from bench import percase
from bench.catalogue import ROOT, Timed, timed_command
from bench.stats import median
from runner import outcomes
from runner.engine.native import build, confinement
from runner.errors import ReportError
from runner.lang.loader import load_suite
from runner.report.model import load_report
from runner.session.runner import RunConfig, Runner

FLOOR_SOURCE = ROOT / "bench" / "casefloor.c"
KERNEL = "6.1"  # the row of issue 13: the catalogue under this kernel (qemu TCG), boot included
LOOP_STEPS = 20_000
TARGETS = {
    "one-process": 0.5,
    "two-process": 1.0,
    "fork": 1.0,
    "cpu per item": 2.8e-3,
    "cpu per loop step": 2e-6,
    "catalogue wall": 1.0,
    "cpu growth": 1.05,
    "rss growth": 1.5,
    "report": 2.0,
    "kernel wall": 30.0,
}

Verdict = Callable[[str, str, bool], None]


def per_case(fixtures: Path, runs: int, verdict: Verdict) -> None:
    """One-process, two-process and fork case-runs, over raw fork + wait; then the floor of a
    one-process case-run (bench/casefloor.c), measured in the same rounds."""
    names = ["bench-one-process[anon]", "bench-two-process[anon]", "bench-fork[anon]"]
    print(f"\n## issue 13: per case-run ({runs} runs, interleaved)")
    print(f"{'':34} {'median':>10} {'÷fork+wait':>11} {'cpu median':>11}")
    runner = Runner(RunConfig())
    try:
        items = {i.name: i for i in runner.plan(load_suite([str(fixtures)]))}
        with tempfile.TemporaryDirectory(prefix="mmapconf-bench-floor-") as tmp:
            floor = case_floor(Path(tmp))
            rows = percase.measure(runner, [items[n] for n in names], runs, floor=floor)
    finally:
        runner.close()
    base = median(rows[0].wall)
    print(f"{'raw fork + wait':34} {median(rows[0].wall) * 1e3:8.3f} ms")
    for row, key in zip(rows[1:4], ("one-process", "two-process", "fork"), strict=True):
        r = median(row.wall) / base
        print(
            f"{row.name:34} {median(row.wall) * 1e3:8.3f} ms "
            f"{r:10.2f}x {median(row.cpu) * 1e3:8.3f} ms"
        )
        target = TARGETS[key]
        verdict(f"{key} case-run / fork+wait <= {target}x", f"{r:.2f}x", r <= target)
    low = median(rows[4].wall) / base
    print(
        f"{'floor: one-process from C':34} {median(rows[4].wall) * 1e3:8.3f} ms {low:10.2f}x"
        "  (bench/casefloor.c: the same namespaces, mounts, Landlock, seccomp, rlimits, steps"
        " and reports, forked from a C parent)"
    )
    above = "above" if low > TARGETS["one-process"] else "below"
    print(f"(the floor is {above} the one-process target of {TARGETS['one-process']}x)")


def case_floor(folder: Path) -> Callable[[], float]:
    """bench/casefloor.c built into FOLDER with the confinement a one-process anon case gets
    (runner.engine.native.confinement.spec); returns one timed run of it, in seconds."""
    exe, spec = folder / "casefloor", folder / "spec"
    cc = [*build.compiler(), "-O2", "-static", "-o", str(exe), str(FLOOR_SOURCE)]
    subprocess.run(cc, check=True)
    spec.write_bytes(array("q", confinement.spec(None)).tobytes())

    def once() -> float:
        done = subprocess.run([exe, spec, "1"], capture_output=True, text=True, check=True)
        return float(done.stdout)

    return once


def loop_step(runs: int, verdict: Verdict) -> None:
    """CPU per step inside ``repeat``: runs of a loop of stores, less runs of the same case
    without the loop, each in its own runner that is closed (its fork server reaped) before
    the CPU is read, so every process's share is counted to the microsecond."""
    print(f"\n## issue 13: CPU per loop step inside repeat ({runs} runs)")
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-loop-") as tmp:
        steps = 100 * LOOP_STEPS
        cpu = [_runs_cpu(tmp, times, runs) for times in (0, steps)]
        step = (cpu[1] - cpu[0]) / (runs * steps)
        print(f"{step * 1e6:8.3f} us of CPU per step ({steps} steps a run)")
        verdict("CPU per loop step <= 2 us", f"{step * 1e6:.3f} us", step <= 2e-6)


def _runs_cpu(folder: str, times: int, runs: int) -> float:
    path = Path(folder, f"loop{times}.yaml")
    path.write_text(_loop_case(times))
    runner = Runner(RunConfig())
    (item,) = runner.plan(load_suite([str(path)]))
    c0 = percase._cpu()
    for _ in range(runs):
        runner.run_item(item)
    runner.close()
    return percase._cpu() - c0


def _loop_case(times: int) -> str:
    return f"""id: bench-loop-{times}
title: "bench: {times} stores in a repeat"
steps:
  - mmap: {{length: PAGE, prot: "PROT_READ|PROT_WRITE", flags: "MAP_PRIVATE|MAP_ANONYMOUS"}}
    as: m
  - repeat:
      times: {times}
      steps:
        - store: {{addr: m, hex: "01"}}
"""


def catalogue(paths: list[str], jobs: int, repeats: int, verdict: Verdict) -> None:
    """The catalogue under `mmapconf run -n N`; then 10x of it."""
    n_items = len(Runner(RunConfig()).plan(load_suite(paths)))
    print(f"\n## issue 13: the catalogue ({n_items} items), `mmapconf run -n {jobs}`")
    runs = [_run(paths, jobs) for _ in range(max(1, repeats))]
    base, size = min(runs, key=lambda t: t[0].wall_s)
    print(
        f"best wall {base.wall_s:6.2f} s of {len(runs)} "
        f"({', '.join(f'{x.wall_s:.2f}' for x, _ in runs)}), "
        f"cpu {base.cpu_s:6.2f} s = {base.cpu_s / n_items * 1e3:6.2f} ms/item, "
        f"peak RSS {base.peak_rss_kib / 1024:6.1f} MiB, report.json {size / 1e6:5.2f} MB  "
        f"[{base.summary}]"
    )
    per = base.cpu_s / n_items
    verdict("CPU per catalogue item <= 2.8 ms", f"{per * 1e3:.2f} ms", per <= 2.8e-3)
    verdict("catalogue wall <= 1 s", f"{base.wall_s:.2f} s", base.wall_s <= 1.0)
    verdict("report.json <= 2 MB", f"{size / 1e6:.2f} MB", size <= 2e6)
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-10x-") as tmp:
        _copies(paths, Path(tmp), 10)
        # Its files validated once first, as the 1x catalogue's were (bench/catalogue.warm):
        # both runs then read them from the cache of validated files, and the ratio compares a
        # run's work per item, not a first validation against none.
        cold = timed_command([sys.executable, "-m", "runner", "validate", tmp], "validate")
        t, _ = _run([tmp], jobs)
    # One more 1x run after the 10x one: the 1x CPU per item is the median of the runs on both
    # sides of it, so that a load that moved during the 10x minute moves the unit as well.
    after, _ = _run(paths, jobs)
    ones = [x.cpu_s for x, _ in runs] + [after.cpu_s]
    cpu = (t.cpu_s / (10 * n_items)) / (median(ones) / n_items)
    rss = t.peak_rss_kib / base.peak_rss_kib
    print(
        f"10x the catalogue: wall {t.wall_s:.2f} s, cpu {t.cpu_s:.2f} s ({cpu:.2f} per item "
        f"of the median 1x run's: cpu {', '.join(f'{c:.2f}' for c in ones)} s, the last one "
        f"after the 10x run), peak RSS {t.peak_rss_kib / 1024:.1f} MiB ({rss:.2f} of the best "
        f"1x run's)  [{t.summary}]; validating its files the first time, before it: cpu "
        f"{cold.cpu_s:.2f} s ({cold.cpu_s / (10 * n_items) * 1e3:.2f} ms per item)"
    )
    verdict("CPU per item at 10x / 1x <= 1.05", f"{cpu:.2f}", cpu <= 1.05)
    verdict("peak RSS at 10x / 1x <= 1.5", f"{rss:.2f}", rss <= 1.5)


def _run(paths: list[str], jobs: int) -> tuple[Timed, int]:
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-report-") as report_dir:
        argv = [sys.executable, "-m", "runner", "run", *paths, "-n", str(jobs)]
        argv += ["--report-dir", report_dir]
        t = timed_command(argv, f"mmapconf run -n {jobs}")
        report = Path(report_dir, "report.json")
        return t, report.stat().st_size if report.exists() else 0


def kernel_catalogue(paths: list[str], verdict: Verdict) -> None:
    """The catalogue under `mmapconf run --kernel 6.1`: qemu boots the kernel (TCG here) and the
    guest runs the catalogue; the wall time includes the boot."""
    print(f"\n## issue 13: the catalogue under `mmapconf run --kernel {KERNEL}` (boot included)")
    why = kernel_unavailable()
    if why:
        print(f"not measured: {why}")
        verdict(f"--kernel {KERNEL} catalogue wall <= 30 s", f"not measured ({why})", False)
        return
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-kernel-") as report_dir:
        argv = [sys.executable, "-m", "runner", "run", *paths, "--kernel", KERNEL]
        argv += ["--report-dir", report_dir]
        t = timed_command(argv, f"mmapconf run {' '.join(paths)} --kernel {KERNEL}")
        for report in sorted(Path(report_dir).rglob("report.json")):  # one per kernel
            _print_remarkable(report)
    print(
        f"wall {t.wall_s:.1f} s, cpu {t.cpu_s:.1f} s (qemu's included), exit {t.exit_code}  "
        f"[{t.summary}]"
    )
    target = TARGETS["kernel wall"]
    what = f"--kernel {KERNEL} catalogue wall <= {target:.0f} s"
    verdict(what, f"{t.wall_s:.1f} s", t.wall_s <= target)


def _print_remarkable(report: Path) -> None:
    """Each result that failed a gate, with its reason: the report is removed with its folder,
    so this is all that tells afterwards what went wrong in a long guest run."""
    try:
        results = load_report(report)["results"]
    except ReportError as exc:
        print(f"no report to read: {exc}")
        return
    for r in results:
        if outcomes.fails_gate(r.get("outcome", "?")):
            print(f"  {r.get('outcome')} {r.get('id')}: {str(r.get('reason', ''))[:300]}")


def kernel_unavailable() -> str:
    """Why the kernel row cannot be measured here, or "" (from `mmapconf kernels list`)."""
    if shutil.which("qemu-system-x86_64") is None:
        return "no qemu-system-x86_64"
    argv = [sys.executable, "-m", "runner", "kernels", "list", "--json"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        rows = json.loads(done.stdout[done.stdout.index("[") :])
    except ValueError:
        return f"`mmapconf kernels list` said: {(done.stderr or done.stdout).strip()[:200]}"
    state = next((r["state"] for r in rows if r.get("series") == KERNEL), "not in the lock file")
    if not state.startswith("cached"):
        return f"kernel {KERNEL} is {state}: `mmapconf kernels fetch {KERNEL}` first"
    return ""


def _copies(paths: list[str], out: Path, k: int) -> None:
    """``k`` copies of the catalogue's case files, their ids made unique per copy."""
    files = [p for path in paths for p in sorted(Path(ROOT, path).rglob("*.yaml"))]
    for n in range(k):
        for f in files:
            text = re.sub(r"(?m)^id: *(\S+)", rf"id: \1-copy{n}", f.read_text())
            dest = out / f"copy{n}" / f.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)


def section(
    paths: list[str], fixtures: Path, runs: int, jobs: int, repeats: int, v: Verdict
) -> None:
    start = time.perf_counter()
    per_case(fixtures, runs, v)
    loop_step(3, v)
    catalogue(paths, jobs, repeats, v)
    print(f"(issue 13 section took {time.perf_counter() - start:.1f} s)")
