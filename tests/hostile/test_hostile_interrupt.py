"""Interrupted runs: SIGINT/SIGTERM stop cleanly with a report; SIGKILL leaves no runaway.

Each test runs the real command line (or pytest) as a subprocess in a session of its own, stops it
mid-case, and then looks at what is left: the report, the scratch folders and any process whose
command line carries the run's unique folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hostile_util import ROOT, mmapconf, wait_until

QUICK = """
id: quick
title: passes at once
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
"""

# Blocks on disk with a scratch folder and a fork child, until its (long) timeout.
BLOCKED = """
id: blocked-{n}
title: a process and its fork child wait for ever
timeout: {timeout}
backings: [disk]
steps:
  - file: f
    size: PAGE
  - fork: {{steps: [{{wait_for: never}}]}}
  - wait_for: never
"""

# Two processes started together, each with a fork child, all blocked.
BLOCKED_PROCESSES = """
id: blocked-procs
title: two processes, each with a child, all waiting for ever
timeout: {timeout}
backings: [disk]
setup:
  - file: f
    size: PAGE
processes:
  a:
    steps:
      - fork: {{steps: [{{wait_for: never}}]}}
      - wait_for: never
  b:
    steps:
      - fork: {{steps: [{{wait_for: never}}]}}
      - wait_for: never
"""


def _suite(tmp_path: Path, timeout: int, blocked: int = 2) -> Path:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "a-quick.yaml").write_text(QUICK)
    for n in range(blocked):
        (cases / f"b-blocked-{n}.yaml").write_text(BLOCKED.format(n=n, timeout=timeout))
    (cases / "c-procs.yaml").write_text(BLOCKED_PROCESSES.format(timeout=timeout))
    (tmp_path / "scratch").mkdir()
    return cases


def _marked(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (the harness, its workers, its cases)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmd and state != "Z":
            found.append(int(entry))
    return found


def _start_run(tmp_path: Path, cases: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        mmapconf(
            "run",
            str(cases),
            "--dir",
            str(tmp_path / "scratch"),
            "--report-dir",
            str(tmp_path / "report"),
            *extra,
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: a killpg reaches it and its workers, not us
    )


def _scratch_busy(tmp_path: Path) -> bool:
    return any((tmp_path / "scratch").glob("mmapconf-*"))


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("how", ["SIGINT-group", "SIGTERM-harness"])
def test_an_interrupted_run_cleans_up_and_reports(tmp_path, jobs, how):
    cases = _suite(tmp_path, timeout=60)
    proc = _start_run(tmp_path, cases, "-n", jobs)
    try:
        assert wait_until(lambda: _scratch_busy(tmp_path), 20), "the blocked case never started"
        time.sleep(0.3)  # let the case's processes fork their children
        assert len(_marked(str(tmp_path))) > 2
        start = time.monotonic()
        if how == "SIGINT-group":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            os.kill(proc.pid, signal.SIGTERM)  # what `kill PID` or a CI runner's stop does
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    want = 128 + (signal.SIGINT if how == "SIGINT-group" else signal.SIGTERM)
    assert proc.returncode == want, (proc.returncode, err.decode())
    assert b"Traceback" not in err, err.decode()
    assert took < 3, f"took {took:.2f} s from the signal to the exit"
    assert not _scratch_busy(tmp_path), "a scratch folder was left behind"
    assert wait_until(lambda: not _marked(str(tmp_path)), 2), "a case process outlived the run"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["interrupted"] is True
    outcomes = {r["name"]: r["outcome"] for r in report["results"]}
    assert outcomes.get("quick[anon]") == "passed", outcomes
    assert not any(name.startswith("blocked") for name in outcomes), outcomes
    assert "INTERRUPTED" in out.decode()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_sigkilled_run_leaves_the_old_report_and_no_process_past_the_timeout(tmp_path, jobs):
    timeout = 2
    cases = _suite(tmp_path, timeout=timeout, blocked=1)
    report = tmp_path / "report" / "report.json"
    report.parent.mkdir()
    report.write_text('{"previous": true}\n')
    proc = _start_run(tmp_path, cases, "-n", jobs)
    try:
        assert wait_until(lambda: _scratch_busy(tmp_path), 20)
        time.sleep(0.3)
        assert len(_marked(str(tmp_path))) > 2
        killed = time.monotonic()
        proc.kill()  # the harness only: its workers and cases must go by themselves
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # PR_SET_PDEATHSIG takes workers and each case's first process at once; every other case
    # process has its alarm(): timeout + 2 s from its case's start at the latest.
    assert wait_until(lambda: not _marked(str(tmp_path)), timeout + 3), _marked(str(tmp_path))
    assert time.monotonic() - killed <= timeout + 3
    assert json.loads(report.read_text()) == {"previous": True}
    assert not list(report.parent.glob(".report.json.*")), "a torn temporary report was left"


PYTEST_FILE = """
import textwrap
from pathlib import Path

from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner


def test_blocked():
    path = Path({cases!r})
    runner = Runner(RunConfig(backings=["disk"], dirs=[{scratch!r}]))
    for item in runner.plan(load_suite([str(path)])):
        runner.run_item(item)
"""


@pytest.mark.parametrize("how", ["test-file", "plugin"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_pytest_session_cleans_up(tmp_path, sig, how):
    """A pytest session running cases (a test calling runner.session.runner, or the conformance plugin
    collecting the YAML itself) stops as a Ctrl-C would stop it."""
    cases = _suite(tmp_path, timeout=60, blocked=1)
    case_file = cases / "b-blocked-0.yaml"
    if how == "plugin":
        # -p: the plugin loads whether or not the package is installed (harmless if it is)
        args = ["-p", "conformance", str(case_file), "--mmapconf-dir", str(tmp_path / "scratch")]
    else:
        test_file = tmp_path / "test_blocked_cases.py"
        test_file.write_text(
            textwrap.dedent(PYTEST_FILE).format(
                cases=str(case_file), scratch=str(tmp_path / "scratch")
            )
        )
        args = [str(test_file)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: _scratch_busy(tmp_path), 20)
        time.sleep(0.3)
        os.kill(proc.pid, sig)
        # The harness's part (kill the case, remove its folder) is quick; pytest's own report
        # of the interruption takes it a few seconds more, which is not ours to judge.
        cases_gone = wait_until(
            lambda: not _scratch_busy(tmp_path) and _marked(str(tmp_path)) == [proc.pid], 2
        )
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert cases_gone, "the case outlived the interrupt by more than 2 s"
    assert proc.returncode == 2, out.decode()  # pytest's "interrupted"
    assert b"Interrupted: SIG" in out, out.decode()
    assert not _scratch_busy(tmp_path)
    assert wait_until(lambda: not _marked(str(tmp_path)), 2), _marked(str(tmp_path))


def test_a_worker_killed_under_its_case_costs_that_case_only(tmp_path):
    """-n 2: SIGKILL one worker mid-case; its item ends as error, the run goes on and ends."""
    cases = _suite(tmp_path, timeout=3, blocked=3)
    proc = _start_run(tmp_path, cases, "-n", "2")
    try:
        assert wait_until(lambda: _scratch_busy(tmp_path), 20)
        time.sleep(0.3)
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            workers = [int(p) for p in f.read().split()]
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    outcomes = [r["outcome"] for r in report["results"]]
    assert len(outcomes) == 5 and report["interrupted"] is False  # quick, 3 blocked, procs
    lost = [r for r in report["results"] if "worker process running it" in r["reason"]]
    assert len(lost) == 1 and lost[0]["outcome"] == "error", report["results"]
    assert outcomes.count("timeout") == 3
    # the dead worker's case processes go by PR_SET_PDEATHSIG and their alarm()
    assert wait_until(lambda: not _marked(str(tmp_path)), 3 + 3), _marked(str(tmp_path))
