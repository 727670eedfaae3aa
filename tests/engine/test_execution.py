"""Processes, events, fork children, timeouts, errors, skips, and nothing left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

TWO_PROCESSES = """
id: t
title: t
setup:
  - file: f
    size: PAGE
processes:
  writer:
    steps:
      - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED, fd: f}
        as: m
      - store: {addr: m, data: "hi"}
      - post: written
  reader:
    steps:
      - wait_for: written
      - read: {fd: f, offset: 0, length: 2}
        expect: {value: {data: %s}}
"""


def test_processes_see_each_other_through_events(run_yaml):
    results = run_yaml(TWO_PROCESSES % "hi")
    assert {r.outcome for r in results.values()} == {"passed"}, results


def test_a_failing_process_is_named(run_yaml):
    result = run_yaml(TWO_PROCESSES % "ho", backings=["disk"])["disk"]
    assert result.outcome == "failed"
    assert "reader step 2 (read): expected value {data: 'ho'}" in result.reason


def test_a_waiter_is_released_when_the_poster_fails(run_yaml):
    text = TWO_PROCESSES.replace('data: "hi"}', 'data: "hi"}\n        expect: {errno: EIO}') % "hi"
    start = time.monotonic()
    result = run_yaml(text, backings=["tmpfs"])["tmpfs"]
    assert result.outcome == "failed"
    assert "writer step 2 (store): expected errno EIO, got success" in result.reason
    assert time.monotonic() - start < 2  # not the 10 s timeout


FORK = """
id: t
title: t
steps:
  - mmap: {length: 2 * PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED|MAP_ANONYMOUS}
    as: m
  - munmap: {addr: m + PAGE, length: PAGE}
  - fork:
      steps:
        - store: {addr: m, format: "<i", values: [100]}
        - post: stored
        - load: {addr: m + PAGE}
          expect: %s
    as: child
  - wait: child
    expect: {value: %s}
  - wait_for: stored
  - load: {addr: m, format: "<i"}
    expect: {value: 100}
"""


def test_a_waited_child_is_judged_by_the_wait(run_yaml):
    ok = run_yaml(FORK % ("{signal: SIGSEGV}", "{signal: SIGSEGV}"))["anon"]
    assert ok.outcome == "passed", ok.reason
    bad = run_yaml(FORK % ("{signal: SIGSEGV}", "{exit: 0}"))["anon"]
    assert bad.outcome == "failed"
    assert (
        "main step 4 (wait): expected value {exit: 0}, got success, value {signal: 'SIGSEGV'"
        in bad.reason
    )


def test_a_child_that_dies_unexpectedly_fails_the_case(run_yaml):
    text = FORK.replace("  - wait: child\n    expect: {value: %s}\n", "") % "{}"
    result = run_yaml(text)["anon"]
    assert result.outcome == "failed"
    assert (
        "child step 3.3 (load): expected success, got SIGSEGV/SEGV_MAPERR at m+4096"
        in result.reason
    )


SPIN = """
id: t
title: t
timeout: %s
steps:
  - post: never
  - wait_for: forever
"""


def test_timeout_ends_the_case_promptly(run_yaml):
    start = time.monotonic()
    result = run_yaml(SPIN % 1)["anon"]
    elapsed = time.monotonic() - start
    assert result.outcome == "timeout"
    assert "timed out after 1 s; still running: main step 2 (wait_for)" in result.reason
    assert elapsed < 2


def test_runtime_error_is_an_error(run_yaml):
    text = (
        "id: t\ntitle: t\nsteps:\n  - mmap: {length: 1 // 0, prot: PROT_READ, flags: MAP_PRIVATE}\n"
    )
    result = run_yaml(text)["anon"]
    assert result.outcome == "error"
    assert "division by zero" in result.reason


def test_unmet_requirement_is_a_skip_with_its_reason(run_yaml):
    text = "id: t\ntitle: t\nrequires: {kernel: '<2.0'}\nsteps:\n  - post: x\n"
    result = run_yaml(text)["anon"]
    assert result.outcome == "skipped"
    assert result.reason.startswith("kernel <2.0 required, have ")


def _children() -> set[int]:
    out = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        children = (task / "children").read_text().split()
        out |= {int(c) for c in children}
    return out


def test_nothing_is_left_behind(tmp_path, monkeypatch):
    import tempfile

    from runner.engine import backings
    from runner.lang.loader import load_suite
    from runner.session.runner import RunConfig, Runner

    # Scratch parents of our own, so runs elsewhere on the machine cannot blur the count.
    shm = tempfile.mkdtemp(prefix="selftest-", dir="/dev/shm")
    monkeypatch.setattr(backings, "SHM_DIR", shm)
    disk = tmp_path / "disk"
    disk.mkdir()
    case = tmp_path / "c.yaml"
    case.write_text("""
id: t
title: t
timeout: 1
steps:
  - file: f
    size: 4
  - fork: {steps: [{wait_for: never}]}
  - fork: {steps: [{fork: {steps: [{wait_for: never}]}}]}
  - wait_for: never
""")
    before = _children()
    runner = Runner(RunConfig(dirs=[str(disk)]))
    results = [runner.run_item(i) for i in runner.plan(load_suite([str(case)]))]
    runner.close()  # the native executor's fork server lives as long as its runner
    try:
        assert [r.outcome for r in results] == ["timeout"] * 3
        assert _children() == before
        assert list(disk.iterdir()) == []
        assert os.listdir(shm) == []
    finally:
        os.rmdir(shm)
