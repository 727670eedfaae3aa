"""How a fork child its parent waits for is judged when it dies: by the step its death ended,
except when the case's own kill ended a step that expected no signal (the contract's exception);
and no case passes with a step that began and was never judged."""

from __future__ import annotations

from runner.engine.arena import Arena
from runner.engine.execution import Ending, Execution
from runner.engine.verdict import judge_execution

CHILD = """
id: t
title: t
steps:
  - mmap: {{length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS, fd: -1}}
    as: m
  - fork:
      steps:
        - {child}
    as: c
  {between}
  - wait: c
    expect: {{value: {{signal: {signal}}}}}
"""


# The child's next step has begun well before the kill: the language has no barrier for "a step
# has started", and a child killed between two steps is judged by the wait alone.
KILL = "- wait_for: ready\n  - sleep: {ms: 300}\n  - kill: {pid: c, signal: SIGKILL}"


def test_an_unexpected_fault_in_a_waited_child_fails_though_the_wait_expects_it(run_yaml):
    text = CHILD.format(child="store: {addr: m, data: X}", between="", signal="SIGSEGV")
    result = run_yaml(text)["anon"]
    assert result.outcome == "failed"
    assert result.reason == "c step 2.1 (store): expected success, got SIGSEGV/SEGV_ACCERR at m"


def test_a_waited_child_the_case_killed_is_judged_by_the_wait(run_yaml):
    text = CHILD.format(
        child="post: ready\n        - wait_for: never", between=KILL, signal="SIGKILL"
    )
    result = run_yaml(text)["anon"]
    assert (result.outcome, result.reason) == ("passed", "")
    child = next(s for s in result.steps if s["op"] == "wait_for" and s["process"] == "c")
    assert child["observed"] == "SIGKILL (the case's kill; its wait judges it)"
    assert child["ok"] is None


def test_a_kill_does_not_excuse_a_step_that_expected_another_signal(run_yaml):
    text = CHILD.format(
        child="post: ready\n        - wait_for: never\n          expect: {signal: SIGSEGV}",
        between=KILL,
        signal="SIGKILL",
    )
    result = run_yaml(text)["anon"]
    assert result.outcome == "failed"
    assert result.reason == "c step 2.2 (wait_for): expected SIGSEGV, got SIGKILL"


def test_a_step_that_began_and_was_never_judged_is_no_pass():
    """Whatever an executor reports, a begun step with no end and no death cannot pass."""
    start = {"t": "start", "pid": 7, "proc": "main", "step": "1", "op": "sleep", "line": 3}
    run = Execution(
        messages=[
            {"t": "proc", "pid": 7, "name": "main", "parent": None},
            {**start, "args": {}, "expect": {"kind": "success"}, "maps": {}},
            {"t": "done", "pid": 7},
        ],
        endings={7: Ending(7, exit=0)},
    )
    verdict = judge_execution(run, Arena(), 10)
    assert (verdict.outcome, verdict.reason) == (
        "error",
        "main step 1 (sleep) began and was never judged",
    )
