"""Runaway cases: spinning, blocking, forking without end, eating memory, dumping core.

Each must end (``timeout`` within its timeout + 1 s, or ``error``/``failed`` at once), with every
process of the case gone, and leave the harness as it was.
"""

from __future__ import annotations

import os
import re
import resource
import time

import pytest
from hostile_util import children, run_text

from runner.engine.arena import MAX_CASE_PROCESSES
from runner.engine.native.server import GRACE_S

SPIN = """
id: spin
title: "a loop of millions of steps, each one quick: the process never sleeps"
timeout: 1
steps:
  - repeat:
      times: 1 << 60
      steps:
        - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}
          as: m
        - store: {addr: m, hex: "01"}
        - munmap: {addr: m, length: PAGE}
"""

BLOCK_IN_C = """
id: block
title: sem_wait on a semaphore nobody posts blocks inside libc, where Python cannot interrupt it
timeout: 1
steps:
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED|MAP_ANONYMOUS}
    as: m
  - sem_init: {addr: m, value: 0}
  - fork:
      steps:
        - sem_wait: m
    as: c
  - sem_wait: m
"""

BLOCK_ON_EVENT = """
id: block-event
title: two processes each wait for an event that the other never posts
timeout: 1
setup:
  - file: f
    size: PAGE
processes:
  a:
    steps:
      - wait_for: from_b
      - post: from_a
  b:
    steps:
      - wait_for: from_a
      - post: from_b
"""


SLEEP = """
id: sleepy
title: sleeps for 35 years
timeout: 1
steps:
  - sleep: 1 << 40
"""


PIPE = """
id: pipe-read
title: reads from a pipe whose write end it holds itself and never writes
timeout: 1
steps:
  - pipe: {read: r, write: w}
  - read: {fd: r, length: 1}
"""


@pytest.mark.parametrize(
    "text",
    [SPIN, BLOCK_IN_C, BLOCK_ON_EVENT, SLEEP, PIPE],
    ids=["spin", "sem", "events", "sleep", "pipe"],
)
def test_a_runaway_case_ends_within_the_kill_grace_of_its_timeout(tmp_path, text):
    """The bound is the harness's own promise (server.GRACE_S after the kill, or the case is an
    error): a tighter one failed under load with a qemu guest beside it (2.66 s)."""
    before = children()
    start = time.monotonic()
    results = run_text(tmp_path, text, backings=["tmpfs", "anon"])
    took = time.monotonic() - start
    assert results, "nothing ran"
    for result in results.values():
        assert result.outcome == "timeout", result
        assert result.duration_s <= 1 + GRACE_S, result.duration_s
        assert "timed out after 1 s" in result.reason
    assert took <= len(results) * (1 + GRACE_S)
    assert children() == before, "a case process outlived its case"
    assert not list(tmp_path.glob("mmapconf-*")), "a scratch folder was left behind"


def test_a_spinning_case_does_not_flood_the_harness(tmp_path):
    """Millions of step reports: the harness keeps a bounded trace of them, failures kept."""
    text = SPIN.replace("timeout: 1", "timeout: 3")
    result = run_text(tmp_path, text)["spin[anon]"]
    assert result.outcome == "timeout"
    assert len(result.steps) <= 20_000, len(result.steps)
    assert result.steps_left_out > 0  # the report says how many passed steps it left out
    # the step it was in when killed (the repeat, started first) is still shown, unfinished
    assert result.steps[0]["op"] == "repeat" and result.steps[0]["ok"] is None


FORK_BOMB = """
id: fork-bomb
title: every child forks again, and none ever ends
timeout: 30
steps:
  - repeat:
      times: 1 << 40
      steps:
        - fork:
            steps:
              - repeat:
                  times: 1 << 40
                  steps:
                    - fork:
                        steps:
                          - wait_for: never
"""


def test_a_fork_bomb_is_capped_and_ends_as_error(tmp_path):
    before = children()
    start = time.monotonic()
    result = run_text(tmp_path, FORK_BOMB)["fork-bomb[anon]"]
    took = time.monotonic() - start
    assert result.outcome == "error", result
    assert f"more than {MAX_CASE_PROCESSES} processes in one case" in result.reason
    assert took < 5, f"the cap took {took:.1f} s: it should act at once, not at the timeout"
    assert children() == before
    # the machine is still usable: this process can still fork
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0


def test_a_case_under_the_process_limit_is_not_affected(tmp_path):
    text = f"""
id: many-children
title: forks and waits for as many children as the limit allows
steps:
  - repeat:
      times: {MAX_CASE_PROCESSES - 1}
      steps:
        - fork: {{steps: [{{post: e}}]}}
          as: c
        - wait: c
          expect: {{value: {{exit: 0}}}}
"""
    assert run_text(tmp_path, text)["many-children[anon]"].outcome == "passed"


MEMORY_HOG = """
id: hog
title: maps 16 MiB at a time, populated (touched), without end
timeout: 30
steps:
  - repeat:
      times: 1 << 20
      steps:
        - mmap: {length: 16 << 20, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE}
"""

HUGE_MAP = """
id: huge-map
title: asks for 64 GiB at once
steps:
  - mmap: {length: 64 << 30, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE}
"""

HUGE_LOAD = """
id: huge-load
title: "a load of 1 TiB: the case process itself would have to allocate it"
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: m
  - load: {addr: m, length: 1 << 40}
"""


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.parametrize(
    ("text", "outcome", "needle"),
    [
        (MEMORY_HOG, "failed", "ENOMEM"),
        (HUGE_MAP, "failed", "ENOMEM"),
        (HUGE_LOAD, "error", "out of memory"),
    ],
    ids=["hog", "huge-map", "huge-load"],
)
def test_a_memory_hog_is_capped_and_the_harness_survives(tmp_path, text, outcome, needle):
    rss = _rss_kb()
    start = time.monotonic()
    (result,) = run_text(tmp_path, text).values()
    assert result.outcome == outcome, result
    assert re.search(needle, result.reason), result.reason
    assert time.monotonic() - start < 10
    assert _rss_kb() - rss < 64 * 1024, "the harness itself grew"


def test_the_address_space_limit_is_set_in_every_case_process(tmp_path):
    """Each process of a case, fork children included, has a finite RLIMIT_AS and no core."""
    text = """
id: limits
title: smaps of a fork child still works under the limits
steps:
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED|MAP_ANONYMOUS}
    as: m
  - fork:
      steps:
        - smaps: m
          expect: {value: {Size: 4}}
    as: c
  - wait: c
    expect: {value: {exit: 0}}
"""
    assert run_text(tmp_path, text)["limits[anon]"].outcome == "passed"
    # and the harness's own limits are untouched by its children's
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY


def test_no_core_file_is_written(tmp_path, monkeypatch):
    """A process that dies by SIGSEGV, SIGBUS or SIGABRT leaves no core in the working folder."""
    monkeypatch.chdir(tmp_path)
    text = """
id: crash
title: dies three ways, none of them expected
processes:
  segv:
    steps:
      - store: {addr: 8, hex: "01"}
  abrt:
    steps:
      - kill: {pid: 0, signal: SIGABRT}
  quit:
    steps:
      - kill: {pid: 0, signal: SIGQUIT}
"""
    result = run_text(tmp_path, text)["crash[anon]"]
    assert result.outcome == "failed", result
    time.sleep(0.2)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("core")]


def test_a_fork_bomb_after_setuid_beside_a_root_process_is_still_ended(tmp_path):
    """A process that gave up root cannot kill its root siblings: the harness kills the group."""
    text = """
id: fork-bomb-setuid
title: one process stays root and waits in libc (no abort flag reaches it), the other becomes nobody and forks without end
timeout: 30
processes:
  waiter:
    steps:
      - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED|MAP_ANONYMOUS}
        as: m
      - sem_init: {addr: m, value: 0}
      - sem_wait: m
  bomber:
    steps:
      - setuid: {uid: 65534, gid: 65534}
      - repeat:
          times: 1 << 40
          steps:
            - fork: {steps: [{wait_for: never}]}
"""
    before = children()
    start = time.monotonic()
    result = run_text(tmp_path, text)["fork-bomb-setuid[anon]"]
    assert result.outcome == "error", result
    assert "processes in one case" in result.reason
    assert time.monotonic() - start < 5
    assert children() == before
