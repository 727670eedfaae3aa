"""What no harness work can go below: the catalogue run by the native executor alone.

The batch mode of a qemu guest's run (executor.c ``--batch IN OUT``) runs cases with no Python
anywhere: one exec, a fork server per lane, a fork per case, the scratch folder and provision
made natively. Here it runs on this host. A first pass (the host's part driving it, as for a
guest) writes the whole input: the facts query, every compiled program, the end. The executor is
then run again on that complete input, alone: its wall time and the CPU of it and of every
process it reaped (fork servers, case inits, case processes, mkfs) are the floor of a run's wall
and CPU on this machine. Its walls are fewer than a host run's (no cgroups: ``walls=False``), so
a host run's floor is if anything higher.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runner.lang.loader import load_suite
from runner.lang.model import Step
from runner.session.runner import RunConfig, Runner
from runner.vm import batch, guestrun


@dataclass
class Floor:
    items: int  # results of the batch
    wall_s: float
    cpu_s: float  # the executor and every process it reaped


def _write_input(paths: list[str], jobs: int, job: Path, disk: str) -> Path:
    """The batch input of PATHS with JOBS lanes, complete (a first, driven run writes it)."""
    argv = ["run", *paths, "--dir", disk, "--report-dir", str(job), "-n", str(jobs)]
    with batch.on_this_host(job) as here:
        guestrun.drive(argv, job, here.writer, here.reader, here.alive, str(here.provision), False)
    return here.exe


def native_floor(paths: list[str], jobs: int) -> Floor:
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-floor-") as tmp:
        job, disk = Path(tmp, "job"), Path(tmp, "disk")
        job.mkdir()
        disk.mkdir()
        exe = _write_input(paths, jobs, job, str(disk))
        again = job / "again.out"
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(exe), "--batch", str(job / batch.IN_NAME), str(again)])
        _, _, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = 0  # reaped by wait4 above
        items = _results(again)
    return Floor(items, wall, usage.ru_utime + usage.ru_stime)


def _results(path: Path) -> int:
    """How many case results the batch output holds (records: a kind, a word count, words)."""
    words = memoryview(path.read_bytes()).cast("q")
    at = count = 0
    while at + 2 <= len(words):
        count += words[at] == batch.RESULT
        at += 2 + words[at + 1]
    return count


def sleeps_s(paths: list[str]) -> float:
    """The seconds the catalogue's items spend in ``sleep`` steps (a case's processes sleep side
    by side: its longest process counts): time no CPU can shorten. An item this host skips
    (a power-cut case, a swap area: only under --kernel) does not count."""
    runner = Runner(RunConfig())
    total = 0.0
    for item in runner.plan(load_suite(paths)):
        case = item.case
        if case is not None and not runner.new_result(item)[0].reason:
            longest = max((_sleep(steps) for steps in case.processes.values()), default=0.0)
            total += _sleep(case.setup) + longest
    runner.close()
    return total


def _sleep(steps: list[Step]) -> float:
    total = 0.0
    for s in steps:
        inner = _sleep(s.steps)
        times = s.args.get("times") if s.op == "repeat" else 1
        total += inner * (times if isinstance(times, int) else 1)
        if s.op == "sleep" and isinstance(s.args.get("ms"), int):
            total += s.args["ms"] / 1000
    return total
