"""From what a case's processes reported, and how they ended, to one outcome with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.engine.arena import Arena
from runner.engine.execution import Ending, Execution
from runner.engine.matching import (
    Observation,
    describe_expect,
    describe_observation,
    fmt_addr,
    judge,
)
from runner.engine.protocol import EXIT_ABORTED, EXIT_DONE, EXIT_ERROR, EXIT_FAILED
from runner.lang import names

ADDR_ARGS = ("addr", "new_addr")
NOT_FINISHED = "not finished"


@dataclass
class StepTrace:
    """One step as the report shows it."""

    process: str
    step: str
    op: str
    line: int
    args: dict[str, Any]
    expected: str
    observed: str = NOT_FINISHED
    ok: bool | None = None
    result: Any = None
    errno: str | None = None
    signal: str | None = None
    si_code: str | None = None
    si_addr: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Verdict:
    outcome: str  # passed | failed | error | timeout
    reason: str = ""
    steps: list[StepTrace] = field(default_factory=list)


class _Judge:
    def __init__(self, run: Execution, arena: Arena, timeout: float):
        self.run, self.arena, self.timeout = run, arena, timeout
        self.procs: dict[int, str] = {}
        # per pid, the steps started and not yet ended (a repeat encloses its own steps)
        self.open: dict[int, list[tuple[StepTrace, dict[str, Any], dict]]] = {}
        # How the processes that a case process reaped itself (``wait``) ended: the harness
        # never sees those endings, and they are judged exactly as the ones it sees.
        self.reaped: dict[int, Ending] = {}
        self.kills: list[tuple[int, int]] = []  # (target pid, or <= 0 for the group; signo)
        self.done: set[int] = set()
        self.steps: list[StepTrace] = []
        self.failures: list[str] = []
        self.errors: list[str] = []
        self.reported: dict[int, set[str]] = {}  # pid -> the kinds of final report it sent
        # Threads of case processes, by thread id: their process and name. A thread's messages
        # carry its own id (its steps are judged on their own); what ends the process (a final
        # report, a death) counts for the process.
        self.threads: dict[int, int] = {}
        self.thread_names: dict[int, str] = {}

    def verdict(self) -> Verdict:
        for msg in self.run.messages:
            getattr(self, f"_on_{msg['t']}")(msg)
        if self.run.timed_out:
            running = [_where(t) for st in self.open.values() for t, _, _ in st[-1:]]
            where = f"; still running: {', '.join(running)}" if running else ""
            return Verdict("timeout", f"timed out after {self.timeout:g} s{where}", self.steps)
        if self.run.init_status:
            status = self.run.init_status
            self.errors.append(f"the case's init ended unexpectedly (wait status {status})")
        for pid, ending in {**self.run.endings, **self.reaped}.items():
            self._ending(pid, ending)
        for pid, name in self.procs.items():
            if pid not in self.run.endings and pid not in self.reaped:
                self.errors.append(f"{name} (pid {pid}) was never seen to end")
        if not self.failures and any("aborted" in r for r in self.reported.values()):
            self.errors.append("a process was released by an abort that no failure explains")
        if self.errors:
            return Verdict("error", self.errors[0], self.steps)
        if self.failures:
            return Verdict("failed", "; ".join(self.failures[:3]), self.steps)
        unjudged = next((t for t in self.steps if t.observed == NOT_FINISHED), None)
        if unjudged is not None:
            # No pass without every step judged: a step that began and neither ended nor met
            # a death (the class of a waited child's fault, once never judged) is no evidence.
            return Verdict("error", f"{_where(unjudged)} began and was never judged", self.steps)
        return Verdict("passed", "", self.steps)

    # -- messages --------------------------------------------------------------------------
    def _on_proc(self, msg: dict) -> None:
        self.procs[msg["pid"]] = msg["name"]

    def _on_thread(self, msg: dict) -> None:
        self.threads[msg["pid"]] = msg["process"]
        self.thread_names[msg["pid"]] = msg["name"]

    def _process_of(self, pid: int) -> int:
        return self.threads.get(pid, pid)

    def _on_start(self, msg: dict) -> None:
        maps = msg["maps"]
        args = {
            k: (fmt_addr(v, maps) if k in ADDR_ARGS and isinstance(v, int) else v)
            for k, v in msg["args"].items()
        }
        trace = StepTrace(
            msg["proc"],
            msg["step"],
            msg["op"],
            msg["line"],
            args,
            describe_expect(msg["expect"], maps),
        )
        self.steps.append(trace)
        self.open.setdefault(msg["pid"], []).append((trace, msg["expect"], maps))

    def _on_end(self, msg: dict) -> None:
        if not self.open.get(msg["pid"]):
            self.errors.append(f"pid {msg['pid']} reported the end of a step it never started")
            return
        trace, _, _ = self.open[msg["pid"]].pop()
        trace.ok, trace.errno, trace.result = msg["ok"], msg["errno"], msg["result"]
        trace.observed = msg["observed"]
        if not msg["ok"]:
            self.reported.setdefault(self._process_of(msg["pid"]), set()).add("failed")
            self.failures.append(_failure(trace, msg["expected"], msg["observed"]))

    def _on_error(self, msg: dict) -> None:
        where = (
            f"{msg['proc']} step {msg['step']} ({msg['op']}): "
            if msg["step"]
            else f"{msg['proc']}: "
        )
        self.errors.append(where + msg["message"])
        self.reported.setdefault(self._process_of(msg["pid"]), set()).add("error")
        self.open.pop(msg["pid"], None)

    def _on_aborted(self, msg: dict) -> None:
        self.reported.setdefault(self._process_of(msg["pid"]), set()).add("aborted")
        self.open.pop(msg["pid"], None)

    def _on_done(self, msg: dict) -> None:
        self.done.add(msg["pid"])

    def _on_reaped(self, msg: dict) -> None:
        self.reaped[msg["child"]] = Ending(msg["child"], exit=msg["exit"], signal=msg["signal"])

    def _on_killed(self, msg: dict) -> None:
        self.kills.append((msg["target"], msg["signal"]))

    # -- endings ---------------------------------------------------------------------------
    def _ending(self, pid: int, ending: Ending) -> None:
        """Positive evidence only: an exit status counts with the final report that goes with
        it (done, a failure, an abort, an error); a signal with the step that expected it."""
        name = self.procs.get(pid, f"pid {pid}")
        if ending.signal is not None:
            self._death(pid, name, ending.signal)
            return
        self._threads_ended(pid, name, ending)
        evidence = {EXIT_DONE: "done", EXIT_FAILED: "failed", EXIT_ABORTED: "aborted"}
        want = evidence.get(ending.exit) if ending.exit is not None else None
        if want == "done" and pid in self.done:
            return
        if want is not None and want in self.reported.get(pid, set()):
            return
        if ending.exit == EXIT_ERROR and "error" in self.reported.get(pid, set()):
            return
        self.errors.append(
            f"{name} exited with status {ending.exit} without the final report that goes with it"
        )

    def _threads_ended(self, pid: int, name: str, ending: Ending) -> None:
        """A process that exits ends its threads. One that finished its steps with a thread still
        running is an error (the validator has every thread joined); after a failure or an error
        elsewhere in the process its threads' open steps are simply not finished."""
        for tid in [t for t, p in self.threads.items() if p == pid]:
            stack = self.open.pop(tid, [])
            if not stack or tid in self.done:
                continue
            for trace, _, _ in stack:
                trace.observed = f"{NOT_FINISHED}: {name} exited"
            if ending.exit == EXIT_DONE:
                where = _where(stack[-1][0])
                self.errors.append(f"{where} was still running when {name} ended")

    def _faulting(self, pid: int, signo: int, info: Any) -> int:
        """Which task of process PID a death by SIGNO is the step of: the thread whose handler
        recorded it (a synchronous SIGSEGV/SIGBUS goes to the faulting thread), else the one in a
        step expecting it, else the process's own first thread."""
        tasks = [pid, *(t for t, p in self.threads.items() if p == pid)]
        if info is not None and info.signo == signo and info.tid in tasks:
            return int(info.tid)
        sig = names.SIGNAL_NAME.get(signo, str(signo))
        for task in tasks:
            stack = self.open.get(task)
            if stack and stack[-1][1]["kind"] == "signal" and stack[-1][1]["signal"] == sig:
                return task
        return pid

    def _death(self, pid: int, name: str, signo: int) -> None:
        """A death is judged by the step it ended, whichever process reaped it. The one excuse
        (the contract's): a child that its parent waits for, killed by the case's own ``kill``
        in a step that expected no signal, is judged by that ``wait`` alone. In a process with
        threads, it is the step of the thread it came from; the others' open steps end with it."""
        info = self.arena.siginfo(pid)
        sig = names.SIGNAL_NAME.get(signo, str(signo))
        code = addr = None
        if info is not None and info.signo == signo:
            code, addr = names.si_code_name(sig, info.code), info.addr
        killed = pid in self.reaped and self._killed_by_case(pid, signo)
        task = self._faulting(pid, signo, info)
        stack = self.open.pop(task, [])
        by = _where(stack[-1][0]) if stack else self.thread_names.get(task, name)
        others = {pid, *(t for t, p in self.threads.items() if p == pid)} - {task}
        for other in others:  # the process's other threads, in steps when it died
            for trace, _, _ in self.open.pop(other, []):
                trace.observed = f"{NOT_FINISHED}: {by} ended the process by {sig}"
        name = self.thread_names.get(task, name)
        if not stack:
            if not killed:
                self.failures.append(f"{name} died by {sig} outside any step")
            return
        trace, expect, maps = stack[-1]
        for outer, _, _ in stack[:-1]:  # the repeats around it end with it
            outer.observed = f"{NOT_FINISHED}: step {trace.step} ended the process"
        trace.signal, trace.si_code = sig, code
        trace.si_addr = fmt_addr(addr, maps) if addr is not None else None
        ip = info.ip if info is not None and "ip" in expect else None
        obs = Observation(signal=sig, si_code=code, si_addr=addr, ip=ip)
        trace.observed = describe_observation(obs, maps)
        if killed and expect["kind"] != "signal":
            trace.observed += " (the case's kill; its wait judges it)"
            return
        trace.ok = judge(expect, obs, {})
        if not trace.ok:
            self.failures.append(_failure(trace, trace.expected, trace.observed))

    def _killed_by_case(self, pid: int, signo: int) -> bool:
        return any(s == signo and (target == pid or target <= 0) for target, s in self.kills)


def _where(trace: StepTrace) -> str:
    return f"{trace.process} step {trace.step} ({trace.op})"


def _failure(trace: StepTrace, expected: str, observed: str) -> str:
    return f"{_where(trace)}: expected {expected}, got {observed}"


def judge_execution(run: Execution, arena: Arena, timeout: float) -> Verdict:
    """The case's outcome. Call before the arena is reset for the next case."""
    return _Judge(run, arena, timeout).verdict()
