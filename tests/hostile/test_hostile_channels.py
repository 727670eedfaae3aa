"""Property tests: whatever arrives on the report channel or the worker channel, the run ends in
time, writes its results, and every other case keeps its true outcome.

The report channel is written from inside a case, by machine code (write(3, bytes)); the worker
channel by a worker that sends what hypothesis chose instead of its result.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import time

import pytest
from hostile_util import run_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.lang.loader import load_suite
from runner.session import parallel
from runner.session.runner import RunConfig, Runner

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 machine code")
TIMEOUT_S = 2


def write_fd3(data: bytes) -> str:
    """mov edi,3; lea rsi,[rip+13]; mov edx,LEN; mov eax,1 (write); syscall; ret; data"""
    return f"bf03000000488d350d000000ba{struct.pack('<I', len(data)).hex()}b8010000000f05c3" + (
        data.hex()
    )


def lying_case(messages: list[bytes]) -> str:
    steps = "".join(
        "  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE|PROT_EXEC, "
        f"flags: MAP_PRIVATE|MAP_ANONYMOUS}}\n    as: c{i}\n"
        f'  - store: {{addr: c{i}, hex: "{write_fd3(m)}"}}\n  - call: c{i}\n'
        for i, m in enumerate(messages)
    )
    return f"id: liar\ntitle: sends what it likes on its report socket\ntimeout: {TIMEOUT_S}\nsteps:\n{steps}"


HONEST = f"""
---
id: honest
title: passes
timeout: {TIMEOUT_S}
steps:
  - mmap: {{length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
---
id: honest-failure
title: fails
timeout: {TIMEOUT_S}
steps:
  - mmap: {{length: 0, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
"""
TRUE_OUTCOMES = {"honest[anon]": "passed", "honest-failure[anon]": "failed"}
ALL_TRUE = {**TRUE_OUTCOMES, "again[anon]": "passed", "again-failure[anon]": "failed"}

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=20))
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_kinds = st.sampled_from(
    ["proc", "start", "end", "error", "aborted", "done", "reaped", "killed", "bogus"]
)


@st.composite
def lying_message(draw) -> bytes:
    """A report of a real type, with the fields it needs, whose values lie (other pids, steps
    never started, expectations of signals, nonsense results)."""
    kind = draw(_kinds)
    msg = {"t": kind, "pid": draw(st.integers(-5, 40))}
    fields = {
        "proc": {"name": st.text(max_size=10), "parent": st.none()},
        "start": {
            "proc": st.just("main"), "step": st.text(max_size=4), "op": st.sampled_from(["mmap", "wait", "call"]),
            "line": st.integers(0, 99), "args": st.dictionaries(st.sampled_from(["addr", "pid", "length"]), _scalar),
            "expect": st.sampled_from([{"kind": "success"}, {"kind": "signal", "signal": "SIGSEGV", "si_code": None, "si_addr": None}, {"kind": "errno", "errno": ["EINVAL"]}, {"kind": "nope"}]),
            "maps": st.dictionaries(st.text(max_size=4), st.lists(st.integers(0, 2**40), min_size=2, max_size=2)),
        },
        "end": {
            "proc": st.just("main"), "step": st.text(max_size=4), "ok": st.booleans(),
            "errno": st.sampled_from([None, "EINVAL"]), "result": _json, "expected": st.text(max_size=10),
            "observed": st.text(max_size=10), "maps": st.just({}),
        },
        "error": {"proc": st.text(max_size=5), "step": st.text(max_size=3), "op": st.text(max_size=3), "message": st.text(max_size=20)},
        "aborted": {"proc": st.text(max_size=5), "step": st.text(max_size=3)},
        "reaped": {"child": st.integers(-3, 40), "exit": st.one_of(st.none(), st.integers(0, 255)), "signal": st.one_of(st.none(), st.integers(0, 64))},
        "killed": {"target": st.integers(-3, 40), "signal": st.integers(0, 64)},
    }.get(kind, {})  # fmt: skip
    for key, strategy in fields.items():
        if draw(st.integers(0, 9)):  # now and then a field is missing
            msg[key] = draw(strategy)
    return json.dumps(msg).encode()[:4000]


def _native_text(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<q", len(raw)) + raw + b"\0" * (-len(raw) % 8)


@st.composite
def native_record(draw) -> bytes:
    """A record in the native executor's own framing (executor.c's REC_*), well-formed, whose
    words lie: other pids, children never forked, signals never sent, steps that do not exist."""
    kind = draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8]))
    words = struct.pack("<qq", kind, draw(st.integers(-5, 40)))
    small = st.integers(-3, 70)
    if kind == 1:  # REC_PROC: has a parent, name, parent
        words += struct.pack("<q", draw(st.integers(0, 1)))
        words += _native_text(draw(st.text(max_size=8))) + _native_text(draw(st.text(max_size=8)))
    elif kind in (3, 4, 2):  # REC_ERROR (step, iteration, message), REC_ABORTED, REC_END (step)
        words += struct.pack("<qq", draw(small), draw(small))
        if kind == 3:
            words += _native_text(draw(st.text(max_size=20)))
    elif kind == 7:  # REC_REAPED: child, by signal, code
        words += struct.pack("<qqq", draw(small), draw(st.integers(0, 1)), draw(small))
    elif kind == 8:  # REC_KILLED: target, signal
        words += struct.pack("<qq", draw(small), draw(small))
    return words


def flooding_case(message: bytes, processes: int = 8) -> str:
    """PROCESSES processes that each send MESSAGE on their report socket, again and again."""
    # 1: mov edi,3; lea rsi,[rip+14]; mov edx,LEN; mov eax,1 (write); syscall; jmp 1b; data
    length = struct.pack("<I", len(message)).hex()
    loop = f"bf03000000488d350e000000ba{length}b8010000000f05ebe6{message.hex()}"
    steps = (
        "    steps:\n      - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE|PROT_EXEC, "
        "flags: MAP_PRIVATE|MAP_ANONYMOUS}\n        as: c\n"
        f'      - store: {{addr: c, hex: "{loop}"}}\n      - call: c\n'
    )
    procs = "".join(f"  p{i}:\n{steps}" for i in range(processes))
    return f"id: liar\ntitle: floods its report socket\ntimeout: {TIMEOUT_S}\nprocesses:\n{procs}"


_message = st.one_of(st.binary(min_size=0, max_size=300), lying_message(), native_record())


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages=st.lists(_message, min_size=1, max_size=4), flood=st.booleans())
def test_whatever_a_case_sends_the_run_ends_in_time_and_others_keep_their_outcomes(
    tmp_path_factory, messages, flood
):
    """FLOOD: eight processes send the last message without end (a well-formed record too)."""
    tmp = tmp_path_factory.mktemp("lie")
    liar = flooding_case(messages[-1]) if flood else lying_case(messages)
    start = time.monotonic()
    results = run_text(tmp, liar + HONEST)
    took = time.monotonic() - start
    assert took <= len(results) * (TIMEOUT_S + 1), f"{took:.1f} s for {len(results)} cases"
    assert {n: results[n].outcome for n in TRUE_OUTCOMES} == TRUE_OUTCOMES
    liar = results["liar[anon]"]
    assert liar.outcome in ("passed", "failed", "error", "timeout")
    assert liar.uses_machine_code


def _items(tmp) -> tuple[Runner, list]:
    (tmp / "c.yaml").write_text(HONEST.replace("---\n", "", 1) + HONEST.replace("honest", "again"))
    runner = Runner(RunConfig(dirs=[str(tmp)]))
    return runner, runner.plan(load_suite([str(tmp / "c.yaml")]))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    garbage=st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda n, b: struct.pack("=I", n) + b, st.integers(0, 2**32 - 1), st.binary(max_size=32)
        ),
        st.builds(
            lambda obj: (lambda d: struct.pack("=I", len(d)) + d)(json.dumps(obj).encode()), _json
        ),
    ),
    stall=st.booleans(),
)
def test_whatever_a_worker_sends_the_pool_ends_in_time_and_others_keep_their_outcomes(
    tmp_path_factory, monkeypatch, garbage, stall
):
    """The first worker answers its first item with ``garbage`` (then stalls or exits): that
    item errs, a new worker takes over, and every other item gets its true outcome."""
    tmp = tmp_path_factory.mktemp("worker")
    runner, items = _items(tmp)
    real = parallel._worker_main
    first = [True]

    def lying_worker(runner, items, inbox, outbox, parent_pid, mask):
        if first[0]:
            try:  # a forked copy of this test process: it must never return into pytest
                parallel.recv_frame(inbox)
                os.write(outbox, garbage)
                if stall:
                    time.sleep(30)
            finally:
                os._exit(0)
        real(runner, items, inbox, outbox, parent_pid, mask)

    monkeypatch.setattr(parallel, "_worker_main", lying_worker)
    original_init = parallel._Worker.__init__

    def only_the_first_lies(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        first[0] = False  # in the harness: workers forked from now on are honest

    monkeypatch.setattr(parallel._Worker, "__init__", only_the_first_lies)
    start = time.monotonic()
    got = {}
    for index, result in parallel.run_parallel_indexed(runner, items, 1):
        got[items[index].name] = result.outcome
    took = time.monotonic() - start
    # a worker that stalls is killed once it has not been heard from for LIVENESS_S
    assert took <= len(items) * (TIMEOUT_S + 1), f"{took:.1f} s for {len(items)} items"
    assert len(got) == len(items)
    lost = items[0].name
    assert got[lost] in ("error", TRUE_OUTCOMES.get(lost)), got  # a lie about its own item only
    for name, outcome in got.items():
        if name != lost:
            assert outcome == ALL_TRUE[name]


def test_a_worker_stopped_mid_item_is_killed_within_its_time(tmp_path, monkeypatch):
    """A real worker (its heartbeat running) stops dead in its first item (SIGSTOP stops every
    thread of it): it is killed once not heard from, within the item's timeout + 1 s, and every
    other item keeps its true outcome."""
    runner, items = _items(tmp_path)
    real = Runner.run_item

    def stops_on_the_first(self, item):
        if item is items[0]:
            os.kill(os.getpid(), signal.SIGSTOP)
        return real(self, item)

    monkeypatch.setattr(Runner, "run_item", stops_on_the_first)
    start = time.monotonic()
    got = {items[i].name: r for i, r in parallel.run_parallel_indexed(runner, items, 1)}
    took = time.monotonic() - start
    assert took <= len(items) * (TIMEOUT_S + 1), f"{took:.1f} s for {len(items)} items"
    assert "not heard from for 1 s, and neither running nor runnable" in got[items[0].name].reason
    assert {n: r.outcome for n, r in got.items() if n != items[0].name} == {
        n: o for n, o in ALL_TRUE.items() if n != items[0].name
    }
