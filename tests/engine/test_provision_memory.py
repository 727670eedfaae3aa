"""``provision.memory``: the case runs in a memory cgroup of its own with the limit asked for,
a child of the one every case runs in; the fork server goes back and the cgroup is removed after
a pass, a failure and a timeout; skipped with the reason where no memory cgroup can be made."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from runner.engine import confine
from runner.engine.native.server import server_for
from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner

needs_cgroup = pytest.mark.skipif(
    confine.why_no_memory_limit() != "", reason="needs root and a v1 memory controller"
)
MIB = 1024 * 1024

# LTP mmap22's behaviour (cases/mmap/cgroup.yaml): droppable pages give way at the limit.
DROPPABLE = """\
id: prov-memory
title: t
requires: {kernel: ">=6.11", arch: x86_64}
provision:
  memory: {limit: 64 * 1024 * 1024}
steps:
  - mmap: {length: 32 * 1024 * 1024, prot: PROT_READ|PROT_WRITE, flags: MAP_DROPPABLE|MAP_ANONYMOUS|MAP_POPULATE, fd: -1}
    as: d
  - mmap: {length: 48 * 1024 * 1024, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, fd: -1}
  - smaps: d
    expect: {value: {Rss: RSS}}
"""
SLEEPER = """\
id: prov-memory-sleep
title: t
timeout: 1
provision:
  memory: {limit: 16 * 1024 * 1024}
steps:
  - sleep: 30000
"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def _run(tmp_path: Path, text: str):
    suite = load_suite([_write(tmp_path, text)])
    assert not suite.problems, suite.problems
    runner = Runner(RunConfig(dirs=[]))
    return [runner.run_item(item) for item in runner.plan(suite)]


def _undone() -> None:
    """No case cgroup is left, and the fork server is back in the owner's memory cgroup."""
    conf = confine.current()
    owner = conf.cgroups["memory"]
    assert not os.path.exists(os.path.join(owner, confine.CASE_CGROUP))
    server = server_for(conf).proc.pid
    with open(os.path.join(owner, "cgroup.procs")) as f:
        assert str(server) in f.read().split()


@pytest.mark.parametrize(
    ("provision", "message"),
    [
        ("memory: 5", "must be a mapping with limit"),
        ("memory: {limit: 1024}", "outside 1048576..1073741824"),
        ("memory: {limit: 2 * 1024 * 1024 * 1024}", "outside 1048576..1073741824"),
        ("memory: {limit: PAGE * 512, swap: 0}", "unknown provision.memory key"),
    ],
)
def test_validator_refuses(tmp_path: Path, provision: str, message: str) -> None:
    text = f"id: p\ntitle: t\nprovision:\n  {provision}\nsteps:\n  - sleep: 1\n"
    problems = [str(p) for p in load_suite([_write(tmp_path, text)]).problems]
    assert any(message in p and "case.yaml:" in p for p in problems), problems


@needs_cgroup
def test_right_expectation_under_the_limit_passes_and_is_undone(tmp_path: Path) -> None:
    (result,) = _run(tmp_path, DROPPABLE.replace("RSS", "{lt: 32 * 1024}"))
    assert result.outcome == "passed", result.reason
    _undone()


@needs_cgroup
def test_wrong_expectation_fails_naming_process_step_and_both_sides(tmp_path: Path) -> None:
    (result,) = _run(tmp_path, DROPPABLE.replace("RSS", "32 * 1024"))
    assert result.outcome == "failed"
    assert "main step 3 (smaps): expected value {Rss: 32768}" in result.reason, result.reason
    assert "got success, value {Rss: " in result.reason
    _undone()


@needs_cgroup
def test_the_limit_is_the_cases_own(tmp_path: Path) -> None:
    """Without the provision the same steps keep every droppable page: the limit did it."""
    text = DROPPABLE.replace("RSS", "32 * 1024").replace("provision:\n  memory:", "x-:\n  m:")
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("x-", "  m:")))
    (result,) = _run(tmp_path, text)
    assert result.outcome == "passed", result.reason


HOG = """\
id: prov-memory-hog
title: t
timeout: 30
provision:
  memory: {limit: 16 * 1024 * 1024}
steps:
  - mmap: {length: 64 * 1024 * 1024, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE, fd: -1}
"""


@needs_cgroup
def test_each_cases_own_oom_kill_is_seen_and_no_other(tmp_path: Path) -> None:
    """The OOM count is read from each case's own new cgroup (the harness keeps the file of a
    cgroup open between its reads): two cases killed at their limit in a row both say so, and
    a case after them in the owner's cgroup, which is not killed, does not."""
    runner = Runner(RunConfig(dirs=[]))
    hog = runner.plan(load_suite([_write(tmp_path, HOG)]))
    (tmp_path / "q").mkdir()
    plain = "id: prov-memory-none\ntitle: t\nsteps:\n  - sleep: 1\n"
    quiet = runner.plan(load_suite([_write(tmp_path / "q", plain)]))
    results = [runner.run_item(item) for item in hog + hog + quiet]
    for result in results[:2]:
        assert result.outcome != "passed" and "memory limit" in result.reason, result
    assert results[2].outcome == "passed", results[2].reason
    _undone()


@needs_cgroup
def test_undone_after_a_timeout(tmp_path: Path) -> None:
    (result,) = _run(tmp_path, SLEEPER)
    assert result.outcome == "timeout", result.reason
    _undone()


@pytest.mark.parametrize(
    ("patch", "why"),
    [("geteuid", "not root"), ("own_cgroup", "no cgroup v1 memory controller")],
)
def test_skipped_with_the_reason_where_no_memory_cgroup_can_be_made(
    tmp_path: Path, monkeypatch, patch: str, why: str
) -> None:
    if patch == "geteuid":
        monkeypatch.setattr(confine.os, "geteuid", lambda: 1000)
    else:

        def no_memory(controller: str) -> str:
            raise OSError(0, f"not in a {controller} cgroup")

        monkeypatch.setattr(confine, "_own_cgroup", no_memory)
    suite = load_suite([_write(tmp_path, SLEEPER)])
    runner = Runner(RunConfig(dirs=[]))
    (item,) = runner.plan(suite)
    result, _ = runner.new_result(item)
    assert result.outcome == "skipped"
    assert result.reason == f"provision.memory: needs a writable v1 memory controller ({why})"


@needs_cgroup
def test_a_killed_owners_cgroups_go_in_the_next_sweep_with_all_they_hold(monkeypatch) -> None:
    # A parent of this test's own: every Runner sweeps the shared ones, and another xdist
    # worker's sweep would take the dead owner first.
    parent = os.path.join(confine._cgroup_parents("memory")[0], f"selftest-{os.getpid()}")
    monkeypatch.setattr(confine, "_cgroup_parents", lambda controller: [parent])
    dead = os.path.join(parent, "4194000.1")  # pid above pid_max's default: no live owner
    live = os.path.join(parent, confine.owner_tag())
    # its case's cgroup, and what a fork of an adopted worker once left inside an owner's
    os.makedirs(os.path.join(dead, confine.CASE_CGROUP))
    os.makedirs(os.path.join(dead, confine.CGROUP_DIR, "4194001.1", confine.CASE_CGROUP))
    os.makedirs(live)
    try:
        assert confine.sweep([]) == [dead]
        assert not os.path.exists(dead)
        assert os.path.isdir(live)
    finally:
        for path in (live, parent):
            os.rmdir(path)


def test_a_process_in_an_owners_cgroup_makes_its_own_beside_it_not_inside(monkeypatch) -> None:
    owner = os.path.join(confine.CGROUP_ROOT, "pids", "a", confine.CGROUP_DIR, "77.88")
    monkeypatch.setattr(confine, "_own_cgroup", lambda controller: owner)
    assert confine._cgroup_parents("pids") == [
        os.path.join(confine.CGROUP_ROOT, "pids", "a", confine.CGROUP_DIR),
        os.path.join(confine.CGROUP_ROOT, "pids", confine.CGROUP_DIR),
    ]
