"""The isolation loop: fork the case into its own process group, collect its step reports,
poll with a deadline, kill the group, reap everything, and keep how each process ended.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from runner.engine import interrupt, libc
from runner.engine.arena import Arena
from runner.engine.process import case_main
from runner.lang.conditions import Facts
from runner.lang.model import Case

POLL_SLICE_S = 0.05
# A case that loops over millions of steps would otherwise fill the harness's memory (and the
# report) with their reports: past this many, steps that passed are dropped from the middle.
MAX_MESSAGES = 20_000
KEEP_FIRST_MESSAGES = 2_000


@dataclass
class Ending:
    """How one process ended, from the harness's wait status."""

    pid: int
    exit: int | None = None
    signal: int | None = None


@dataclass
class Execution:
    """Everything observed while one case ran on one backing."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    endings: dict[int, Ending] = field(default_factory=dict)
    timed_out: bool = False
    duration_s: float = 0.0
    dropped_steps: int = 0  # passed steps left out of ``messages`` to bound its size
    compact_at: int = MAX_MESSAGES


_subreaper_pid = 0


def _become_subreaper() -> None:
    """Orphaned case processes come back to us (not to init), so we reap and judge them all."""
    global _subreaper_pid
    # Keyed by pid: the attribute is not inherited by fork, so a -n worker sets its own.
    if _subreaper_pid != os.getpid():
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        _subreaper_pid = os.getpid()


def execute(case: Case, facts: Facts, arena: Arena, scratch: str | None) -> Execution:
    """Run ``case`` in forked processes; always returns with every one of them reaped."""
    _become_subreaper()
    arena.reset()
    result = Execution()
    start = time.monotonic()
    deadline = start + case.timeout
    # SIGINT/SIGTERM stay blocked across fork: the child must never run the harness's handler
    # (it would unwind into harness code); it unblocks them once their default action is back.
    mask = interrupt.block()
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except BaseException:
            ours.close()
            theirs.close()
            raise
    except BaseException:
        interrupt.unblock(mask)
        raise
    if pid == 0:
        ours.close()
        try:
            os.setpgid(0, 0)
        finally:
            case_main(case, facts, arena, theirs, scratch, deadline)
    try:
        _setpgid(pid)
        theirs.close()
        interrupt.unblock(mask)  # a pending interrupt is raised here, inside the try
        _collect(ours, pid, deadline, arena, result)
    finally:
        with interrupt.deferred():
            interrupt.unblock(mask)
            _kill_and_reap(pid, result)
            ours.close()
            result.duration_s = time.monotonic() - start
    return result


def _setpgid(pid: int) -> None:
    try:
        os.setpgid(pid, pid)  # also in the child: whichever runs first wins the race
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.ESRCH):
            raise


def _collect(sock: socket.socket, pgid: int, deadline: float, arena: Arena, out: Execution) -> None:
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    expected_deaths: dict[int, dict[str, Any]] = {}
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            out.timed_out = True
            return
        if poller.poll(min(remaining, POLL_SLICE_S) * 1000) and _drain(sock, out, expected_deaths):
            return  # every process has closed its end: all have exited
        for ending in _reap(pgid, out, block=False):
            if _unexpected(ending, expected_deaths):
                arena.abort()


def _drain(sock: socket.socket, out: Execution, pending: dict[int, dict[str, Any]]) -> bool:
    """Read every queued report; True at end of file (or when the case must be ended now)."""
    while True:
        try:
            data = sock.recv(1 << 17)
        except BlockingIOError:
            return False
        if not data:
            return True
        msg = json.loads(data)
        out.messages.append(msg)
        if msg.get("limit"):
            # The process cap was hit: the case killed its group, but a process that changed
            # its uid (setuid) may not have been allowed to kill them all. We always are.
            return True
        if msg["t"] == "start":
            pending[msg["pid"]] = msg["expect"]
        elif msg["t"] == "end":
            pending.pop(msg["pid"], None)
            if len(out.messages) > out.compact_at:
                _compact(out)


def _compact(out: Execution) -> None:
    """Drop start/end pairs of passed steps after the first few: failures and open steps stay."""
    stacks: dict[int, list[int]] = {}
    drop: set[int] = set()
    for i, msg in enumerate(out.messages):
        if msg["t"] == "start":
            stacks.setdefault(msg["pid"], []).append(i)
        elif msg["t"] == "end" and stacks.get(msg["pid"]):
            begun = stacks[msg["pid"]].pop()
            if msg["ok"] and begun >= KEEP_FIRST_MESSAGES:
                drop |= {begun, i}
    out.messages = [m for i, m in enumerate(out.messages) if i not in drop]
    out.dropped_steps += len(drop) // 2
    # What could not be dropped (many processes' open steps) waits for twice as much: no O(n^2).
    out.compact_at = max(MAX_MESSAGES, 2 * len(out.messages))


def _unexpected(ending: Ending, pending: dict[int, dict[str, Any]]) -> bool:
    if ending.signal is None:
        return ending.exit not in (0, None)
    want = pending.get(ending.pid, {})
    return not (want.get("kind") == "signal" and signal.Signals[want["signal"]] == ending.signal)


def _reap(pgid: int, out: Execution, block: bool) -> list[Ending]:
    found: list[Ending] = []
    while True:
        try:
            pid, status = os.waitpid(-pgid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return found
        except InterruptedError:
            continue
        if pid == 0:
            return found
        ending = Ending(pid)
        if os.WIFSIGNALED(status):
            ending.signal = os.WTERMSIG(status)
        else:
            ending.exit = os.WEXITSTATUS(status)
        out.endings[pid] = ending
        found.append(ending)


def _kill_and_reap(pgid: int, out: Execution) -> None:
    """Nothing of the case outlives this: SIGKILL the group unless it is already empty."""
    _reap(pgid, out, block=False)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _reap(pgid, out, block=True)
