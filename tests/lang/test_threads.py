"""Threads of a case process (docs/case-format.md, "Threads"): the faulting thread is named, a
thread that is not joined or still runs when its process ends is handled, a hanging thread ends
with its case at the timeout, each thread's steps are judged on their own, and the validator
locates what is wrong. Every expectation kind in a thread context, right and wrong, is in the
self-test matrix (tests/matrix: the `thread` and `thread-in-fork` contexts)."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from native_util import problems, run_native

from runner.engine import libc
from runner.lang.conditions import Facts
from runner.lang.loader import load_suite
from runner.repro.program import Target, generate

HEAD = "id: f\ntitle: t\ntimeout: 5\nsteps:\n"
RO = "  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}\n    as: m\n"


def _passed_steps(tmp_path: Path, body: str) -> list[dict]:
    """The traced steps of HEAD, the read-only page m, then BODY: a case that must pass."""
    result = run_native(tmp_path, HEAD + RO + body)
    assert result.outcome == "passed", result.reason
    return result.steps


def test_an_unexpected_fault_names_the_thread_and_its_step(tmp_path):
    text = (
        HEAD
        + RO
        + (
            "  - thread: t1\n"
            "    steps:\n"
            "      - sleep: 1\n"
            "      - store: {addr: m + 8, hex: '01'}\n"
            "  - join: t1\n"
        )
    )
    result = run_native(tmp_path, text)
    assert result.outcome == "failed", result.reason
    assert result.reason == (
        "main/t1 step 2.2 (store): expected success, got SIGSEGV/SEGV_ACCERR at m+8"
    )
    join = next(s for s in result.steps if s["op"] == "join")
    assert join["observed"] == (
        "not finished: main/t1 step 2.2 (store) ended the process by SIGSEGV"
    )


def test_the_fault_is_the_faulting_threads_while_another_waits_in_a_step(tmp_path):
    """The main thread sits in wait_for (expecting no signal) when its sibling faults: the death
    is the sibling's, whose step expected it. The sibling sleeps first so that the main thread
    is in wait_for when it faults (without it, under load the fault came first and there was no
    wait_for step to look at)."""
    steps = _passed_steps(
        tmp_path,
        "  - thread: t1\n"
        "    steps:\n"
        "      - sleep: {ms: 300}\n"
        "      - store: {addr: m, hex: '01'}\n"
        "        expect: {signal: SIGSEGV, si_code: SEGV_ACCERR, si_addr: m}\n"
        "  - wait_for: never\n"
        "  - join: t1\n",
    )
    waiting = next(s for s in steps if s["op"] == "wait_for")
    assert waiting["process"] == "main" and waiting["observed"].startswith("not finished: main/t1")


def test_each_thread_is_judged_by_its_own_steps(tmp_path):
    """Two threads in steps at once, each with its own expectations: the wrong one is named by
    its thread, the right one in the other thread passes."""
    text = HEAD + (
        "  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED|MAP_ANONYMOUS}\n"
        "    as: m\n"
        "  - thread: a\n"
        "    steps:\n"
        "      - store: {addr: m, data: A}\n"
        "      - post: a-stored\n"
        "      - wait_for: b-stored\n"
        "      - load: {addr: m + 1, length: 1}\n"
        "        expect: {value: {data: B}}\n"
        "      - post: a-checked\n"
        "  - thread: b\n"
        "    steps:\n"
        "      - wait_for: a-stored\n"
        "      - store: {addr: m + 1, data: B}\n"
        "      - post: b-stored\n"
        "      - wait_for: a-checked\n"
        "      - load: {addr: m, length: 1}\n"
        "        expect: {value: {data: Z}}\n"
        "  - join: a\n"
        "  - join: b\n"
    )
    result = run_native(tmp_path, text)
    assert result.outcome == "failed", result.reason
    assert result.reason.startswith("main/b step 3.5 (load): expected value {data: 'Z'}, got")
    load_a = next(s for s in result.steps if s["process"] == "main/a" and s["op"] == "load")
    assert load_a["ok"] is True


def test_a_thread_ended_by_its_process_s_expected_death_is_not_a_failure(tmp_path):
    """The process's own thread dies as its last step expects, with a thread still running
    (never joined: a list of steps that ends the process ends its threads with it)."""
    steps = _passed_steps(
        tmp_path,
        "  - thread: t1\n"
        "    steps:\n"
        "      - wait_for: never\n"
        "  - sleep: 20\n"
        "  - store: {addr: m, hex: '01'}\n"
        "    expect: {signal: SIGSEGV, si_code: SEGV_ACCERR}\n",
    )
    waiting = next(s for s in steps if s["process"] == "main/t1")
    assert waiting["observed"] == "not finished: main step 4 (store) ended the process by SIGSEGV"


def test_a_failed_step_in_a_thread_ends_its_process(tmp_path):
    text = HEAD + (
        "  - thread: t1\n"
        "    steps:\n"
        "      - munmap: {addr: 1, length: PAGE}\n"
        "  - wait_for: never\n"
        "  - join: t1\n"
    )
    result = run_native(tmp_path, text)
    assert result.outcome == "failed", result.reason  # not a timeout: main's wait_for released
    assert result.reason == "main/t1 step 1.1 (munmap): expected success, got errno EINVAL"


def test_a_hanging_thread_ends_with_its_case_at_the_timeout(tmp_path):
    text = HEAD.replace("timeout: 5", "timeout: 1") + (
        "  - thread: t1\n    steps:\n      - sleep: 60000\n  - join: t1\n"
    )
    start = time.monotonic()
    result = run_native(tmp_path, text)
    assert time.monotonic() - start < 30  # not the thread's 60 s: killed with its case
    assert result.outcome == "timeout", result.reason
    assert "main/t1 step 1.1 (sleep)" in result.reason


def test_threads_started_one_after_another_reuse_their_slots(tmp_path):
    """A joined thread gives back its slot and its place in the case's count: 100 threads in
    turn, past the 32 processes a case may have at once."""
    text = HEAD + (
        "  - repeat: {times: 100, var: i}\n"
        "    steps:\n"
        "      - thread: w\n"
        "        steps:\n"
        "          - let: i\n"
        "            as: seen\n"
        "      - join: w\n"
        "      - let: seen\n"
        "        expect: {value: i}\n"
    )
    result = run_native(tmp_path, text)
    assert result.outcome == "passed", result.reason


def test_too_many_threads_at_once_end_the_case(tmp_path):
    steps = "".join(f"  - thread: t{k}\n    steps:\n      - wait_for: go\n" for k in range(40))
    joins = "".join(f"  - join: t{k}\n" for k in range(40))
    result = run_native(tmp_path, HEAD + steps + "  - post: go\n" + joins)
    assert result.outcome == "error", result.reason
    assert "threads" in result.reason


@pytest.mark.parametrize(
    "steps, message",
    [
        ("  - join: t1\n", "5:5: join: 't1' is not a thread started earlier in this list"),
        (
            "  - thread: t1\n    steps:\n      - let: 1\n",
            "4:1: thread t1: thread 't1' is never joined in these steps",
        ),
        (
            "  - thread: t1\n    steps:\n      - let: 1\n"
            "  - fork:\n      - join: t1\n  - join: t1\n",
            "9:9: join: 't1' is not a thread started earlier in this list",
        ),
        (
            "  - thread: t1\n    steps:\n      - let: 1\n  - join: t1\n"
            "  - thread: t1\n    steps:\n      - let: 2\n  - join: t1\n",
            "9:13: name: a second thread named 't1'",
        ),
        (
            "  - thread: t1\n    stack: 0\n    steps:\n      - let: 1\n  - join: t1\n",
            "5:5: thread: 'stack' (its lowest address) and 'stack_size' go together",
        ),
        (
            "  - thread: t1\n    steps:\n      - let: 1\n        as: v\n  - let: v\n  - join: t1\n",
            "9:10: value: 'v' is not bound before this step",
        ),
        (
            "  - thread: t1\n    steps:\n      - load: 0\n        expect: {signal: SIGSEGV}\n"
            "  - join: t1\n  - let: 1\n",
            "10:5: step 3: comes after a step that expects the process to die",
        ),
        ("  - thread: 'a b'\n    steps:\n      - let: 1\n", "5:13: name: a thread name is"),
    ],
)
def test_malformed_threads_are_located(tmp_path, steps, message):
    got = problems(tmp_path, HEAD + steps)
    assert got and got[0].startswith(message), got


def test_names_a_thread_binds_are_bound_after_its_join(tmp_path):
    text = HEAD + (
        "  - thread: t1\n"
        "    steps:\n"
        "      - let: 6 * 7\n"
        "        as: v\n"
        "  - join: t1\n"
        "  - let: v\n"
        "    expect: {value: 42}\n"
    )
    assert problems(tmp_path, text) == []
    result = run_native(tmp_path, text)
    assert result.outcome == "passed", result.reason


PROBE = Path(__file__).parent / "probes" / "threads.c"
CASES = Path(__file__).resolve().parents[2] / "cases" / "threads" / "threads.yaml"


def _probe(tmp_path: Path) -> dict[str, dict[str, str]]:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler for tests/lang/probes/threads.c")
    exe = tmp_path / "threads"
    subprocess.run([cc, "-O2", "-pthread", str(PROBE), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: dict(re.findall(r"(\w+)=(\S+)", line)) for line in out.splitlines()}


def _expects(case_id: str) -> list[dict]:
    (case,) = [c for c in load_suite([str(CASES)]).cases if c.id == case_id]
    out = []
    todo = [s for steps in case.processes.values() for s in steps]
    while todo:
        step = todo.pop(0)
        out.append(step.expect[0].to_json() | {"op": step.op, "value": step.expect[0].value})
        todo = step.steps + todo
    return out


def test_the_probe_shows_what_the_thread_cases_expect(tmp_path):
    """Plain pthreads, no harness: the fault is the faulting thread's, with the si_code the
    cases expect; the MAP_GROWSDOWN thread stack grows, or faults SEGV_MAPERR when blocked; one
    of two NOREPLACE racers wins."""
    got = _probe(tmp_path)
    assert got["fault"] == {"tid": "thread", "si_code": "SEGV_ACCERR"}
    assert got["grow"] == {"ok": "1", "grown": "1"}
    assert got["blocked"] == {"si_code": "SEGV_MAPERR"}
    assert got["noreplace"] == {"won": "1", "eexist": "1"}
    blocked = _expects("threads-growsdown-thread-stack-blocked-segv")
    assert {"kind": "signal", "signal": "SIGSEGV", "si_code": "SEGV_MAPERR"}.items() <= next(
        e for e in blocked if e["op"] == "grow_stack"
    ).items()
    mprotect = _expects("threads-mprotect-seen-by-sibling")
    assert any(e.get("si_code") == got["fault"]["si_code"] for e in mprotect)
    race = _expects("threads-fixed-noreplace-race")
    assert next(e for e in race if e["op"] == "let")["value"] == int(got["noreplace"]["won"])


# Each operation of threads, right (passes) and wrong (fails naming process, step and both
# sides): (the steps, with EXPECT where the expectation goes, the failure text)
OPERATIONS = {
    "thread": (
        "  - thread: t\n    steps:\n      - let: 1\n    expect: EXPECT\n  - join: t\n",
        "{}",
        "{errno: EAGAIN}",
        "main step 1 (thread): expected errno EAGAIN, got success",
    ),
    "thread stack too small": (
        "  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}\n"
        "    as: s\n"
        "  - thread: t\n    stack: s\n    stack_size: 64\n    steps:\n      - let: 1\n"
        "    expect: EXPECT\n  - join: t\n    expect: {errno: ESRCH}\n",
        "{errno: EINVAL}",
        "{}",
        "main step 2 (thread): expected success, got errno EINVAL",
    ),
    "join": (
        "  - thread: t\n    steps:\n      - let: 1\n  - join: t\n    expect: EXPECT\n",
        "{}",
        "{errno: ESRCH}",
        "main step 2 (join): expected errno ESRCH, got success",
    ),
    "grow_stack": (
        "  - proc_maps: {path: '[stack]'}\n    as: st\n"
        "  - grow_stack: st.start\n    expect: EXPECT\n",
        "{value: {le: st.start, gt: st.start - PAGE}}",
        "{value: {gt: st.start}}",
        "main step 2 (grow_stack): expected value {gt: ",
    ),
}


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_right_expectation_of_a_thread_operation_passes(tmp_path, op):
    steps, good, _, _ = OPERATIONS[op]
    result = run_native(tmp_path, HEAD + steps.replace("EXPECT", good))
    assert result.outcome == "passed", result.reason


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_wrong_expectation_of_a_thread_operation_fails(tmp_path, op):
    steps, _, bad, text = OPERATIONS[op]
    result = run_native(tmp_path, HEAD + steps.replace("EXPECT", bad))
    assert result.outcome == "failed", result.reason
    assert result.reason.startswith(text), result.reason


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_the_reproducer_judges_thread_operations_as_the_engine_does(tmp_path, op, right):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    steps, good, bad, text = OPERATIONS[op]
    path = tmp_path / "c.yaml"
    path.write_text(HEAD + steps.replace("EXPECT", good if right else bad))
    (case,) = load_suite([str(path)]).cases
    source = generate(case, Target("anon", None, Facts(syscall_probe=libc.syscall_exists)))
    (tmp_path / "r.c").write_text(source)
    subprocess.run([cc, "-O2", "-pthread", "r.c", "-o", "r"], cwd=tmp_path, check=True)
    run = subprocess.run([str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert run.returncode == (0 if right else 1), run.stdout
    if not right:
        assert f"FAIL {text.split(': expected')[0]}: expected" in run.stdout


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 machine code")
@pytest.mark.parametrize("ip, outcome", [("code + 4", "passed"), ("code + 8", "failed")])
def test_a_thread_s_fault_ip_is_its_own(tmp_path, ip, outcome):
    """The instruction address comes from the faulting thread's slot (four nops, then a store
    to address 0: tests/lang/probes/fault_ip.c), while the main thread waits in join."""
    text = HEAD + (
        "  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}\n"
        "    as: code\n"
        '  - store: {addr: code, hex: "90909090c704250000000000000000c3"}\n'
        "  - mprotect: {addr: code, length: PAGE, prot: PROT_READ|PROT_EXEC}\n"
        "  - thread: t\n"
        "    steps:\n"
        "      - call: code\n"
        f"        expect: {{signal: SIGSEGV, si_code: SEGV_MAPERR, ip: {ip}}}\n"
        "  - join: t\n"
    )
    result = run_native(tmp_path, text)
    assert result.outcome == outcome, result.reason
    if outcome == "failed":
        assert result.reason == (
            "main/t step 4.1 (call): expected SIGSEGV/SEGV_MAPERR, ip code+8, "
            "got SIGSEGV/SEGV_MAPERR at 0x0, ip code+4"
        )
