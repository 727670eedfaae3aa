"""How a fork child its parent waits for is judged when it dies: by the step its death ended,
except when the case's own kill ended a step that expected no signal (the contract's exception)."""

from __future__ import annotations

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


KILL = "- wait_for: ready\n  - kill: {pid: c, signal: SIGKILL}"


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
