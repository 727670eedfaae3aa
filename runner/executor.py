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

from runner import libc
from runner.arena import Arena
from runner.conditions import Facts
from runner.model import Case
from runner.process import case_main

POLL_SLICE_S = 0.05


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


_subreaper_set = False


def _become_subreaper() -> None:
    """Orphaned case processes come back to us (not to init), so we reap and judge them all."""
    global _subreaper_set
    if not _subreaper_set:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        _subreaper_set = True


def execute(case: Case, facts: Facts, arena: Arena, scratch: str | None) -> Execution:
    """Run ``case`` in forked processes; always returns with every one of them reaped."""
    _become_subreaper()
    arena.reset()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    result = Execution()
    start = time.monotonic()
    deadline = start + case.timeout
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            os.setpgid(0, 0)
        finally:
            case_main(case, facts, arena, theirs, scratch, deadline)
    try:
        _setpgid(pid)
        theirs.close()
        _collect(ours, pid, deadline, arena, result)
    finally:
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
    """Read every queued report; True at end of file."""
    while True:
        try:
            data = sock.recv(1 << 17)
        except BlockingIOError:
            return False
        if not data:
            return True
        msg = json.loads(data)
        out.messages.append(msg)
        if msg["t"] == "start":
            pending[msg["pid"]] = msg["expect"]
        elif msg["t"] == "end":
            pending.pop(msg["pid"], None)


def _unexpected(ending: Ending, pending: dict[int, dict[str, Any]]) -> bool:
    if ending.signal is None:
        return ending.exit not in (0, None)
    want = pending.get(ending.pid, {})
    return not (want.get("kind") == "signal" and signal.Signals[want["signal"]] == ending.signal)


def _reap(pgid: int, out: Execution, block: bool) -> list[Ending]:
    found = []
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
