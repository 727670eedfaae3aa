"""Run a case on the native executor and hand back the ``Execution`` the verdict reads.

The executor's records are turned into step messages (start, end, error, ...): every reported
observation is judged again here, in Python, by ``matching.judge`` (the executor's own judging
only steers its control flow: stop at a failed step, end a repeat ... until). A disagreement is
an ``error`` naming the step. A process that died mid-step, or still runs at the deadline, is
named from its native slot on the shared page: its step, its iteration, what it expected.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from runner.engine import confine
from runner.engine.native import confinement
from runner.engine.native.program import Compiler, NotCompilable, Program, StepInfo
from runner.engine.native.server import (
    CaseRun,
    NativeArena,
    NativeSlot,
    close_server,
    server_for,
)
from runner.lang import names
from runner.lang.conditions import Facts

__all__ = ["NativeArena", "close_server", "execute"]
from runner.engine.execution import Ending, Execution
from runner.engine.matching import (
    Observation,
    describe_expect,
    describe_observation,
    judge,
    seen,
    shown,
    to_json,
)
from runner.lang.model import Case
from runner.lang.ops import CONSTANTS, OPS

REC_PROC, REC_END, REC_ERROR, REC_ABORTED, REC_DONE, REC_LIMIT, REC_REAPED, REC_KILLED = range(1, 9)
REC_THREAD = 9  # a thread of a case process started: its id, its process, its name
V_NONE, V_INT, V_BYTES, V_TEXT, V_LIST, V_MAP, V_FLOAT, V_BOOL = range(8)
_TOO_LARGE = object()
# A program reports each step outside a loop once, and each step inside one at most twice (its
# first pass, its failure), plus a record per child reaped and per signal sent: the catalogue's
# largest case sends 30. The bound is what a flood of well-formed records costs the harness
# after its deadline (each one kept is judged again once the case has ended): 10,000 keeps that
# well under the timeout's +1 s on a loaded machine.
MAX_RECORDS = 10_000
# Programs kept for items run again (--repeat, explain, the benchmark): a few hundred, each about
# 10 KB; a -n worker of a large catalogue would otherwise hold one for every item it ran.
MAX_PROGRAMS = 256
_PROGRAMS: dict[tuple[int, str, bool], tuple[Case, Program]] = {}


def program_for(case: Case, facts: Facts, has_scratch: bool) -> Program:
    """Compiled once per case and backing kind: a repeated item pays nothing again. The entry
    holds its case, so the id it is found by cannot be reused by another case meanwhile."""
    key = (id(case), facts.backing or "", has_scratch)
    entry = _PROGRAMS.get(key)
    if entry is None or entry[0] is not case:
        if len(_PROGRAMS) >= MAX_PROGRAMS:
            _PROGRAMS.clear()
        entry = _PROGRAMS[key] = (case, Compiler(case, facts, has_scratch).compile())
    return entry[1]


def execute(case: Case, facts: Facts, arena: NativeArena, scratch: str | None) -> Execution:
    """Run ``case`` in the native executor (ARENA a new one: a new memfd reads as zeros);
    always returns with every process reaped."""
    try:
        program = program_for(case, facts, scratch is not None)
    except NotCompilable as e:
        return not_compilable(e)
    reader = _Reader(program)
    conf = confine.current()
    server = server_for(conf)
    limit = case.provision.memory_limit if case.provision else None
    with confine.case_memory(conf, server.proc.pid, limit) as walled:
        memory_before = confine.memory_failures(walled)
        walls = confinement.request_words(conf, scratch)
        # a scratch folder (in the init's view) or a provision is undone once the init is gone
        wait_for_init = scratch is not None or case.provision is not None
        run = server.run(arena, program.words, scratch, case.timeout, walls, reader, wait_for_init)
        hit = confine.memory_failures(walled) > memory_before
    result = _execution(reader, run, arena)
    result.memory_limit_hit = hit
    return result


def not_compilable(e: NotCompilable) -> Execution:
    """The execution of a case the compiler refused: an error naming why."""
    result = Execution()
    result.messages.append(_error(0, "main", "", "", f"not runnable natively: {e}"))
    result.endings[0] = Ending(0, exit=70)
    return result


def replay(program: Program, run: CaseRun, arena: NativeArena, refused: str = "") -> Execution:
    """The execution of PROGRAM from what an executor elsewhere sent (a qemu guest's batch:
    its records, its endings, its output, its arena as the case left it, and REFUSED, why it
    stopped taking the case's reports), decoded and judged here as if it had arrived from this
    host's fork server."""
    reader = _Reader(program)
    for record in run.records:
        reader.on_record(record)
    if refused:
        reader.refuse(refused)
    return _execution(reader, run, arena)


def _execution(reader: _Reader, run: CaseRun, arena: NativeArena) -> Execution:
    result = Execution()
    result.timed_out = run.timed_out
    result.init_status = run.init_status
    result.output, result.output_dropped = run.output, run.output_dropped
    for pid, status in run.endings:
        if os.WIFSIGNALED(status):
            result.endings[pid] = Ending(pid, signal=os.WTERMSIG(status))
        else:
            result.endings[pid] = Ending(pid, exit=os.WEXITSTATUS(status))
    for slot in arena.native_slots():
        result.dropped_steps += slot.unsent
        if slot.in_step:
            reader.open_steps(slot)
    result.messages = reader.messages
    return result


class _Reader:
    """Decodes records as they arrive, into the verdict's message dicts."""

    def __init__(self, program: Program):
        self.program = program
        self.messages: list[dict[str, Any]] = []
        self.names: dict[int, str] = {}
        self.maps_seen: dict[int, dict[str, tuple[int, int]]] = {}
        self.count = 0

    def on_record(self, data: bytes) -> bool:
        """Decode one record; True ends the case. A case process can write anything to its
        report socket (machine code through ``call``): a record that does not decode, or one
        too many, ends the case as ``error`` and the run goes on."""
        self.count += 1
        if self.count > MAX_RECORDS:
            self.messages.append(_error(0, "harness", "", "", f"more than {MAX_RECORDS} reports"))
            return True
        try:
            r = Words(data)
            stop = self._decode(r)
            if 8 * r.at != len(data):
                raise ValueError(f"{len(data) - 8 * r.at} bytes after the record")
            return stop
        except Exception as e:  # noqa: BLE001 - hostile input: any failure to decode is one
            message = f"a malformed report ({len(data)} bytes): {type(e).__name__}: {e}"[:300]
            self.messages.append(_error(0, "harness", "", "", message))
            return True

    def refuse(self, reason: str) -> bool:
        """The server refused a report before decoding (too large, too many bytes)."""
        self.messages.append(_error(0, "harness", "", "", f"the case sent {reason}"))
        return True

    def _decode(self, r: Words) -> bool:
        kind, pid = r.word(), r.word()
        if kind == REC_PROC:
            has_parent, name, parent = r.word(), r.text(), r.text()
            self.names[pid] = name
            self.messages.append(
                {"t": "proc", "pid": pid, "name": name, "parent": parent if has_parent else None}
            )
        elif kind == REC_THREAD:
            process, name, parent = r.word(), r.text(), r.text()
            self.names[pid] = name
            self.messages.append(
                {"t": "thread", "pid": pid, "process": process, "name": name, "parent": parent}
            )
        elif kind == REC_END:
            self._end(pid, r)
        elif kind == REC_ERROR:
            sid, _iteration, message = r.word(), r.word(), r.text()
            info = self.program.steps.get(sid)
            label = self._label(pid, info)
            step = info.step.label if info else ""
            op = info.step.op if info else ""
            self.messages.append(_error(pid, label, step, op, message))
        elif kind == REC_ABORTED:
            info = self.program.steps[r.word()]
            self.messages.append(
                {
                    "t": "aborted",
                    "pid": pid,
                    "proc": self._label(pid, info),
                    "step": info.step.label,
                }
            )
        elif kind == REC_REAPED:
            child, by_signal, code = r.word(), r.word(), r.word()
            self.messages.append(
                {
                    "t": "reaped",
                    "pid": pid,
                    "child": child,
                    "exit": None if by_signal else code,
                    "signal": code if by_signal else None,
                }
            )
        elif kind == REC_KILLED:
            target, signo = r.word(), r.word()
            self.messages.append({"t": "killed", "pid": pid, "target": target, "signal": signo})
        elif kind == REC_DONE:
            self.messages.append({"t": "done", "pid": pid})
        elif kind == REC_LIMIT:
            name, message = r.text(), r.text()
            self.messages.append({**_error(pid, name, "", "", message), "limit": True})
            return True
        else:
            raise ValueError(f"no record of kind {kind}")
        return False

    def _label(self, pid: int, info: StepInfo | None) -> str:
        if info is not None and info.setup:
            return "setup"
        return self.names.get(pid, f"pid {pid}")

    def _maps(self, r: Words) -> dict[str, tuple[int, int]]:
        n = r.word()
        out = {}
        for k in range(n):
            bound, addr, length = r.word(), r.word(), r.word()
            if bound and k < len(self.program.map_names):
                out[self.program.map_names[k]] = (addr, length)
        return out

    def _end(self, pid: int, r: Words) -> None:
        sid = r.word()
        info = self.program.steps[sid]
        _iteration, c_ok, ends_loop, err = r.word(), r.word(), r.word(), r.word()
        result, trusted = r.value(), True
        if result is _TOO_LARGE:  # the executor's judgement stands: nothing to judge again
            result, trusted = r.value(), False
        ints = {info.arg_keys.get(k, str(k)): v for k, v in (r.pair() for _ in range(r.word()))}
        has_si_addr, si_addr = r.word(), r.word()
        env: dict[str, Any] = dict(CONSTANTS)
        for _ in range(r.word()):
            slot, bound = r.word(), r.word()
            if bound:
                env[self.program.slot_names[slot]] = r.value()
        maps = self._maps(r)
        before = self._maps_before(pid, info, maps)
        want = dict(info.want)
        if has_si_addr:
            want["si_addr"] = si_addr
        step = info.step
        label = self._label(pid, info)
        obs = Observation(result=result, errno=names.ERRNO_NAME.get(err, str(err)) if err else None)
        ok = bool(c_ok)
        if trusted:
            ok = bool(ends_loop) or judge(want, obs, env)
        self.messages.append(
            {
                "t": "start",
                "pid": pid,
                "sid": sid,
                "proc": label,
                "step": step.label,
                "op": step.op,
                "line": step.line,
                "args": _shown_args(step, ints),
                "expect": want,
                "maps": before,
            }
        )
        self.messages.append(
            {
                "t": "end",
                "pid": pid,
                "proc": label,
                "step": step.label,
                "ok": ok,
                "errno": obs.errno,
                "result": to_json(obs.result),
                # what a failure says it expected (a passed step's trace shows its start's)
                "expected": "" if ok else describe_expect(shown(want, obs, env, maps), maps),
                "observed": describe_observation(seen(step.op, want, obs, maps), maps),
                "maps": maps,
            }
        )
        if ok != bool(c_ok):
            self.messages.append(
                _error(
                    pid,
                    label,
                    step.label,
                    step.op,
                    f"the native executor judged this step {'passed' if c_ok else 'failed'}, "
                    "the harness's judge did not",
                )
            )

    def _maps_before(
        self, pid: int, info: StepInfo, maps: dict[str, tuple[int, int]]
    ) -> dict[str, tuple[int, int]]:
        """The mappings bound before this step (the record carries those after it)."""
        seen = self.maps_seen.get(pid, {})
        before = dict(maps)
        bind = info.step.bind
        if bind in before:
            if bind in seen:
                before[bind] = seen[bind]
            else:
                del before[bind]
        self.maps_seen[pid] = maps
        return before

    def open_steps(self, slot: NativeSlot) -> None:
        """The start messages of the steps a process was in when it died or the case ended
        (a repeat and the step in it), each where a step's start belongs in the trace:
        before the reports of the steps inside it, whose ids come after its own."""
        for sid in slot.open_steps or [slot.step]:
            innermost = sid == (slot.open_steps or [slot.step])[-1]
            msg = self._start_of(slot, sid, slot.si_addr if innermost else None)
            at = next(
                (
                    i
                    for i, m in enumerate(self.messages)
                    if m["pid"] == slot.pid and m.get("sid", -1) > sid
                ),
                len(self.messages),
            )
            self.messages.insert(at, msg)

    def _start_of(self, slot: NativeSlot, sid: int, si_addr: int | None) -> dict[str, Any]:
        info = self.program.steps[sid]
        want = dict(info.want)
        if si_addr is not None:
            want["si_addr"] = si_addr
        if "ip" in want and sid == (slot.open_steps or [slot.step])[-1]:  # the step it died in
            want["ip"] = slot.ip_want if isinstance(want["ip"], dict) else slot.ip_want.get("eq")
        maps = {
            name: m
            for name, m in zip(self.program.map_names, slot.maps, strict=False)
            if m is not None
        }
        step = info.step
        return {
            "t": "start",
            "pid": slot.pid,
            "sid": sid,
            "proc": self._label(slot.pid, info),
            "step": step.label,
            "op": step.op,
            "line": step.line,
            "args": _shown_args(step, {}),
            "expect": want,
            "maps": maps,
        }


def _error(pid: int, proc: str, step: str, op: str, message: str) -> dict[str, Any]:
    return {"t": "error", "pid": pid, "proc": proc, "step": step, "op": op, "message": message}


def _shown_args(step: Any, ints: dict[str, int]) -> dict[str, Any]:
    spec = OPS[step.op]
    out: dict[str, Any] = {**spec.defaults, **step.args}
    out.update(ints)
    return {k: (v[:200] if isinstance(v, str) else v) for k, v in out.items() if k != "steps"}


class Words:
    """A record read word by word (the executor's int64s, in this machine's order); reading
    past its end raises IndexError, a malformed record."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0
        self.ints = memoryview(data)[: len(data) & ~7].cast("q")

    def word(self) -> int:
        v = self.ints[self.at]
        self.at += 1
        return v

    def pair(self) -> tuple[int, int]:
        return self.word(), self.word()

    def raw(self) -> bytes:
        n = self.word()
        start = 8 * self.at
        if not 0 <= n <= len(self.data) - start:
            raise ValueError(f"a length of {n} bytes past the record's end")
        b = self.data[start : start + n]
        self.at += (n + 7) // 8
        return b

    def text(self) -> str:
        return self.raw().decode("utf-8", "replace")

    def value(self) -> Any:
        t = self.word()
        if t == V_NONE:
            return None
        if t == V_INT:
            return self.word()
        if t == V_BOOL:
            return bool(self.word())
        if t == V_FLOAT:
            return struct.unpack("<d", struct.pack("<q", self.word()))[0]
        if t == V_BYTES:
            return self.raw()
        if t == V_TEXT:
            return self.text()
        if t == V_LIST:
            return [self.value() for _ in range(self.word())]
        if t == V_MAP:
            return {self.text(): self.value() for _ in range(self.word())}
        if t == -1:
            return _TOO_LARGE
        raise ValueError(f"bad value tag {t}")
