"""A case process: runs its steps, reports each one to the harness as it goes, and judges them.

Each step is announced ("start") before it runs and reported ("end") after, over a
SOCK_SEQPACKET socket shared by every process of the case, so a death names its step. A step whose
observation misses its expectation stops the process (exit 3) and releases the others' waits.
"""

from __future__ import annotations

import faulthandler
import json
import math
import os
import resource
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from runner.engine import faults, libc, sandbox
from runner.engine.actions import ACTIONS, SIGNALS_TO_DEFAULT
from runner.engine.arena import MAX_CASE_PROCESSES, Arena
from runner.engine.matching import (
    Observation,
    describe_expect,
    describe_observation,
    fmt_addr,
    judge,
    projected,
    resolved,
)
from runner.engine.protocol import EXIT_ABORTED, EXIT_DONE, EXIT_ERROR, EXIT_FAILED
from runner.errors import CaseRuntimeError
from runner.lang import names, ops
from runner.lang.conditions import Facts, holds
from runner.lang.expr import ExprError, parse
from runner.lang.model import SUCCESS, Case, Expect, Step
from runner.lang.ops import CONSTANTS, OPS, arg_kind

MAX_MESSAGE = 60_000
# Address space a case process may add to what it inherits from the harness, in pages (512 MiB
# with 4 KiB pages): cases map a few pages; this keeps a runaway one (a map-and-touch loop) from
# pushing the machine into the OOM killer.  In pages because the cases count pages: the
# max_map_count cases need ~65530 of them whatever the page size (1 GiB with 16 KiB pages).
CASE_ADDRESS_SPACE_PAGES = ops.CASE_ADDRESS_SPACE_PAGES  # the one number, in runner/lang/ops.py
PR_SET_DUMPABLE = 4


def choose(expects: Iterable[Expect], facts: Facts) -> Expect:
    """The first entry whose ``when`` holds (an entry without ``when`` always does)."""
    for e in expects:
        if e.when is None or holds(e.when, facts):
            return e
    return Expect("success")


def to_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


class Process:
    """One process of a case, after its fork: its bindings, files and channel to the harness."""

    def __init__(
        self,
        name: str,
        case: Case,
        facts: Facts,
        arena: Arena,
        channel: socket.socket,
        scratch: str | None,
        deadline: float,
    ):
        self.name, self.case, self.facts, self.arena = name, case, facts, arena
        self.channel, self.scratch, self.deadline = channel, scratch, deadline
        self.page = resource.getpagesize()
        self.env: dict[str, Any] = dict(CONSTANTS)
        self.maps: dict[str, tuple[int, int]] = {}
        self.files: dict[str, int] = {}
        self.reserved_fds = {channel.fileno()}
        self.stops: list[set[int]] = []  # errnos that end the enclosing repeat ... until

    # -- life ------------------------------------------------------------------------------
    def begin(self, parent: str | None) -> None:
        """Set up a freshly forked process: limits, signal dispositions, fault handlers."""
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # RLIMIT_CORE does not stop a core_pattern pipe (systemd-coredump, apport) from taking a
        # dump of every expected SIGSEGV; a non-dumpable process is dumped by nothing.
        libc.prctl(PR_SET_DUMPABLE, 0)
        _limit_address_space()
        # faulthandler (pytest turns it on) would print a traceback for a death by SIGABRT or
        # SIGFPE that a case means to observe: the case's dispositions are the defaults.
        faulthandler.disable()
        for sig in (*SIGNALS_TO_DEFAULT, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        # The harness blocks SIGINT/SIGTERM across its fork; with their defaults back they may
        # (and must, to end us) arrive. SIGALRM is the backstop below, so it must not be blocked.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGALRM})
        faults.install(self.arena)
        if not sandbox.applied():  # once per case: its other processes inherit the confinement
            sandbox.confine(self.scratch)
        # A backstop for a harness that died without killing us: SIGALRM's default kills.
        signal.alarm(max(1, math.ceil(self.deadline - time.monotonic()) + 2))
        self.send(t="proc", name=self.name, parent=parent)
        if not self.arena.claim_process():
            # A case that forks without end: root ignores RLIMIT_NPROC, so the case counts its
            # own processes and, past the limit, ends the whole group (this process included).
            self.send(
                t="error",
                proc=self.name,
                step="",
                op="",
                message=f"more than {MAX_CASE_PROCESSES} processes in one case: "
                "every process of the case was killed",
                limit=True,
            )
            self.arena.abort()
            os.killpg(0, signal.SIGKILL)
            os._exit(EXIT_ERROR)  # not reached unless killpg failed

    def finish(self, code: int) -> None:
        if code == EXIT_DONE:
            self.send(t="done")
        os._exit(code)

    def send(self, **msg: Any) -> None:
        msg["pid"] = os.getpid()
        data = json.dumps(msg, default=str).encode()
        if len(data) > MAX_MESSAGE:
            msg["result"] = f"<{len(data)} bytes, too large to report>"
            data = json.dumps(msg, default=str).encode()
        self.channel.send(data)

    # -- steps -----------------------------------------------------------------------------
    def run(self, steps: list[Step], proc_label: str | None = None) -> None:
        for step in steps:
            self.run_step(step, proc_label or self.name)

    def run_step(self, step: Step, label: str) -> None:
        expect = choose(step.expect, self.facts)
        if step.op == "repeat" and "until" in step.args and expect == SUCCESS:
            expect = Expect("errno", errno=tuple(_errno_list(step.args["until"])))
        try:
            args = self.resolve(step)
            want = self.resolve_expect(expect)
        except (ExprError, CaseRuntimeError) as e:
            self.send(t="error", proc=label, step=step.label, op=step.op, message=str(e))
            self.finish(EXIT_ERROR)
        self.send(
            t="start",
            proc=label,
            step=step.label,
            op=step.op,
            line=step.line,
            args=_shown_args(args),
            expect=want,
            maps=self.maps,
        )
        obs = self.perform(step, args, label)
        ends_loop = bool(self.stops) and names.ERRNO.get(obs.errno or "") in self.stops[-1]
        ok = ends_loop or judge(want, obs, self.env)
        if ok and step.bind and obs.result is not None:
            self.bind(step.bind, step, obs.result)
        self.send(
            t="end",
            proc=label,
            step=step.label,
            ok=ok,
            errno=obs.errno,
            result=to_json(obs.result),
            expected=describe_expect(self.shown(want, obs), self.maps),
            observed=describe_observation(self.seen(step, want, obs), self.maps),
            maps=self.maps,
        )
        if not ok:
            self.arena.abort()
            self.finish(EXIT_FAILED)
        if ends_loop:
            raise _LoopEnd(obs.errno or "")

    def perform(self, step: Step, args: dict[str, Any], label: str) -> Observation:
        try:
            if step.op == "fork":
                return Observation(self.fork(step))
            if step.op == "repeat":
                return self.repeat(step, args, label)
            if step.op in ("post", "wait_for"):
                self.event(step.op, args["event"], label, step)
                return Observation(None)
            return Observation(ACTIONS[step.op](self, args))
        except OSError as e:
            return Observation(errno=names.ERRNO_NAME.get(e.errno or 0, str(e.errno)))
        except CaseRuntimeError as e:
            self.send(t="error", proc=label, step=step.label, op=step.op, message=str(e))
            self.finish(EXIT_ERROR)
            raise  # not reached: finish() exits

    def shown(self, want: dict[str, Any], obs: Observation) -> dict[str, Any]:
        return shown(want, obs, self.env, self.maps)

    def seen(self, step: Step, want: dict[str, Any], obs: Observation) -> Observation:
        return seen(step.op, want, obs, self.maps)

    def bind(self, name: str, step: Step, result: Any) -> None:
        self.env[name] = result
        if OPS[step.op].result == "addr":
            length = step.args.get("length", step.args.get("new_length", 0))
            self.maps[name] = (result, self.eval(length))

    def fork(self, step: Step) -> int:
        pid = os.fork()
        if pid:
            return pid
        try:
            self.name = step.bind or f"{self.name}.{step.label}"
            self.stops = []  # a loop of the parent is not the child's to end
            self.begin(parent=None)
            self.run(step.steps)
            self.finish(EXIT_DONE)
        except BaseException as e:  # never let a child fall back into its parent's code
            _die(self, e)
        return 0  # not reached

    def repeat(self, step: Step, args: dict[str, Any], label: str) -> Observation:
        """Run the body ``times`` times; with ``until``, stop at the first step that fails with
        one of its errnos: the repeat then observes that errno, its result the iteration."""
        var, until = step.args.get("var"), "until" in step.args
        if until:
            self.stops.append({names.ERRNO[e] for e in _errno_list(step.args["until"])})
        try:
            for i in range(args["times"]):
                if var:
                    self.env[var] = i
                try:
                    self.run(step.steps, label)
                except _LoopEnd as end:
                    return Observation(result=i, errno=end.errno)
        finally:
            if until:
                self.stops.pop()
        return Observation()

    def event(self, op: str, index: int, label: str, step: Step) -> None:
        if op == "post":
            self.arena.post(index)
        elif not self.arena.wait(index):
            self.send(t="aborted", proc=label, step=step.label)
            self.finish(EXIT_ABORTED)

    # -- values ----------------------------------------------------------------------------
    def eval(self, value: Any) -> int:
        if isinstance(value, int):
            return value
        return parse(value).eval(self.env)

    def resolve(self, step: Step) -> dict[str, Any]:
        spec = OPS[step.op]
        out: dict[str, Any] = dict(spec.defaults)
        for key, value in step.args.items():
            kind, family = arg_kind(spec.args[key])
            if kind.resolve == "expr":
                out[key] = self.eval(value)
            elif kind.resolve == "flags":
                out[key] = flags_value(value, family)
            elif kind.resolve == "event":
                out[key] = self.case.events[value]
            else:
                out[key] = value
        if out.get("fd") in self.reserved_fds:
            # Writing (or dup'ing) it would let a plain case forge its own step reports.
            raise CaseRuntimeError(f"fd {out['fd']} belongs to the harness, not to the case")
        return out

    def resolve_expect(self, expect: Expect) -> dict[str, Any]:
        out = expect.to_json()
        if expect.kind == "signal" and expect.si_addr is not None:
            out["si_addr"] = self.eval(expect.si_addr)
        if expect.kind == "value":
            out["value"] = expect.value
        return out


class Address(int):
    """An address a step returned: shown in hex, or as the text given (``m+5``)."""

    text: str | None

    def __new__(cls, value: int, text: str | None = None) -> Address:
        self = super().__new__(cls, value)
        self.text = text
        return self

    def __repr__(self) -> str:
        return self.text or hex(self)


def shown(
    want: dict[str, Any], obs: Observation, env: dict[str, Any], maps: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """The expectation with its expressions evaluated, as failure messages show it (both
    executors describe their steps with this and ``seen``)."""
    if want["kind"] != "value":
        return want
    return {**want, "value": _fault_address(resolved(want["value"], obs.result, env), maps)}


def seen(
    op: str, want: dict[str, Any], obs: Observation, maps: dict[str, tuple[int, int]]
) -> Observation:
    """The observation as a failure shows it: an address in hex, of a mapping the fields
    expected."""
    if OPS[op].result == "addr" and type(obs.result) is int:
        return replace(obs, result=Address(obs.result))
    if want["kind"] != "value" or not isinstance(obs.result, dict):
        return obs
    return replace(obs, result=_fault_address(projected(want["value"], obs.result), maps))


def _fault_address(value: Any, maps: dict[str, tuple[int, int]]) -> Any:
    """A wait result's ``si_addr`` as deaths show theirs: relative to a bound mapping."""
    if isinstance(value, dict) and type(value.get("si_addr")) is int:
        return {**value, "si_addr": Address(value["si_addr"], fmt_addr(value["si_addr"], maps))}
    return value


class _LoopEnd(Exception):
    """Raised by the step whose errno ends the enclosing ``repeat ... until``."""

    def __init__(self, errno: str):
        super().__init__(errno)
        self.errno = errno


def _errno_list(until: dict[str, Any]) -> list[str]:
    errnos = until["errno"]
    return errnos if isinstance(errnos, list) else [errnos]


def flags_value(value: Any, family: str) -> int:
    table = names.FLAG_FAMILIES[family]
    total = 0
    for item in value if isinstance(value, list) else [value]:
        total |= item if isinstance(item, int) else parse(item).eval(table)
    return total


def _shown_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:200] if isinstance(v, str) else v) for k, v in args.items() if k != "steps"}


def _limit_address_space() -> None:
    """RLIMIT_AS = what this process has mapped now + CASE_ADDRESS_SPACE_PAGES, never raised."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # statm's first field is VmSize in pages. Read with os.read: in a fresh fork, a text-mode
    # open and a scan of /proc/self/status cost about 0.3 ms of CPU (mostly first touches of
    # copy-on-write pages), statm this way about half of that.
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        try:
            vm_pages = int(os.read(fd, 128).split()[0])
        finally:
            os.close(fd)
    except (OSError, IndexError, ValueError):
        return
    limit = (vm_pages + CASE_ADDRESS_SPACE_PAGES) * resource.getpagesize()
    # A fork child inherits its parent's limit and keeps it: the budget is per case process
    # tree, not renewed at each fork (nor could it be: raising a hard limit needs privilege).
    limit = min(x for x in (limit, soft, hard) if x != resource.RLIM_INFINITY)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _die(proc: Process, exc: BaseException) -> None:
    try:
        proc.send(t="error", proc=proc.name, step="", op="", message=f"harness error: {exc!r}")
    finally:
        os._exit(EXIT_ERROR)


def case_main(
    case: Case,
    facts: Facts,
    arena: Arena,
    channel: socket.socket,
    scratch: str | None,
    deadline: float,
) -> None:
    """The harness's direct child: set-up, then the case's process(es). Never returns."""
    first = "main" if list(case.processes) == ["main"] else "setup"
    proc = Process(first, case, facts, arena, channel, scratch, deadline)
    try:
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        proc.begin(parent=None)
        proc.run(case.setup, "setup")
        if first == "main":
            proc.run(case.processes["main"])
            proc.finish(EXIT_DONE)
        for name, steps in case.processes.items():
            if os.fork() == 0:
                proc.name = name
                proc.begin(parent="setup")
                proc.run(steps)
                proc.finish(EXIT_DONE)
        proc.finish(EXIT_DONE)
    except BaseException as e:
        _die(proc, e)
