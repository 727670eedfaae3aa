"""The isolation loop: fork the case's init (runner.engine.caseinit) into a fresh PID
namespace, collect its step reports (checked, bounded), its relayed endings and its output, poll
with a deadline, then kill the init, which takes every process of the case with it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from runner.engine import confine, interrupt
from runner.engine.arena import Arena
from runner.engine.caseinit import ENDING, init_main
from runner.engine.protocol import MAX_REPORT_BYTES, MalformedReport, parse_report
from runner.lang import names
from runner.lang.conditions import Facts
from runner.lang.model import Case

POLL_SLICE_S = 0.05
# A case that loops over millions of steps would otherwise fill the harness's memory (and the
# report) with their reports: past this many, steps that passed are dropped from the middle.
MAX_MESSAGES = 20_000
KEEP_FIRST_MESSAGES = 2_000
# Hard bounds on the reports kept of one case, whatever it sends: forged ones (a start without
# its end, say) cannot be compacted away. Past them the case ends as error.
MAX_KEPT_REPORTS = 25_000
MAX_KEPT_BYTES = 64 << 20
SETUP_GRACE_S = 0.25
MAX_OUTPUT = 64 << 10  # of the case's stdout and stderr, kept in the result


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
    malformed: str = ""  # why the case's reports were refused (the case then ends as error)
    init_status: int = 0  # a wait status of the init that we did not cause (0: none)
    output: bytes = b""  # the first MAX_OUTPUT bytes of the case's stdout and stderr
    output_dropped: int = 0
    received: int = 0
    kept_bytes: int = 0
    reports_closed: bool = False
    compact_bytes_at: int = MAX_KEPT_BYTES // 4
    memory_limit_hit: bool = False


def execute(case: Case, facts: Facts, arena: Arena, scratch: str | None) -> Execution:
    """Run ``case`` under its init; always returns with every process of it gone."""
    conf = confine.current()
    arena.reset()
    result = Execution()
    memory_before = confine.memory_failures(conf)
    start = time.monotonic()
    deadline = start + case.timeout
    # SIGINT/SIGTERM stay blocked across fork: the child must never run the harness's handler
    # (it would unwind into harness code); the init puts their defaults back.
    mask = interrupt.block()
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        relay_r, relay_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        os.set_blocking(out_w, True)
        try:
            pid = confine.fork_init(conf)
        except BaseException:
            _close(ours, theirs, relay_r, relay_w, out_r, out_w)
            raise
    except BaseException:
        interrupt.unblock(mask)
        raise
    if pid == 0:
        _close(ours, relay_r, out_r)
        init_main(conf, case, facts, arena, theirs, relay_w, out_w, scratch, deadline)
    try:
        _setpgid(pid)
        _close(theirs, relay_w, out_w)
        interrupt.unblock(mask)  # a pending interrupt is raised here, inside the try
        _collect(_Channels(ours, relay_r, out_r), deadline, arena, result)
    finally:
        with interrupt.deferred():
            interrupt.unblock(mask)
            _kill_and_reap(pid, result)
            _close(ours, relay_r, out_r)
            result.duration_s = time.monotonic() - start
            result.memory_limit_hit = confine.memory_failures(conf) > memory_before
    return result


def _close(*objs: socket.socket | int) -> None:
    for obj in objs:
        with contextlib.suppress(OSError):
            obj.close() if isinstance(obj, socket.socket) else os.close(obj)


def _setpgid(pid: int) -> None:
    try:
        os.setpgid(pid, pid)  # also in the init: whichever runs first wins the race
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.ESRCH):
            raise


@dataclass
class _Channels:
    reports: socket.socket  # from every case process: untrusted
    relay: int  # from the case's init only: how each process ended
    output: int  # the case's stdout and stderr


def _collect(ch: _Channels, deadline: float, arena: Arena, out: Execution) -> None:
    ch.reports.setblocking(False)
    poller = select.poll()
    for fd in (ch.reports.fileno(), ch.relay, ch.output):
        poller.register(fd, select.POLLIN)
    expected_deaths: dict[int, dict[str, Any]] = {}
    relay_buf = b""
    # The case's time starts with its first report: the init's set-up (cgroups, mounts) is the
    # harness's time, not the case's, up to SETUP_GRACE_S of it.
    begun, given = time.monotonic(), deadline
    deadline += SETUP_GRACE_S
    while True:
        if begun and out.received:
            deadline = given + min(time.monotonic() - begun, SETUP_GRACE_S)
            begun = 0.0
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            out.timed_out = True
            return
        ready = {fd for fd, _ in poller.poll(min(remaining, POLL_SLICE_S) * 1000)}
        if ch.output in ready:
            _capture(ch.output, out)
        if ch.reports.fileno() in ready:
            if _drain(ch.reports, out, expected_deaths, deadline):
                return  # a report the case must end on (malformed, or the process cap)
            if out.reports_closed:
                poller.unregister(ch.reports.fileno())
        if ch.relay in ready:
            data = os.read(ch.relay, 1 << 12)
            relay_buf += data
            whole = len(relay_buf) - len(relay_buf) % ENDING.size
            for pid, status in ENDING.iter_unpack(relay_buf[:whole]):
                if _unexpected(_ending(pid, status, out), expected_deaths):
                    arena.abort()
            relay_buf = relay_buf[whole:]
            if not data:  # the init is gone: every process of the case has ended
                out.reports_closed = False
                _drain(ch.reports, out, expected_deaths, deadline)
                _capture(ch.output, out)
                return


def _ending(pid: int, status: int, out: Execution) -> Ending:
    ending = Ending(pid)
    if os.WIFSIGNALED(status):
        ending.signal = os.WTERMSIG(status)
    else:
        ending.exit = os.WEXITSTATUS(status)
    out.endings[pid] = ending
    return ending


def _capture(fd: int, out: Execution) -> None:
    """Keep the first MAX_OUTPUT bytes of what the case printed; count (and drop) the rest."""
    with contextlib.suppress(BlockingIOError):
        while data := os.read(fd, 1 << 16):
            room = MAX_OUTPUT - len(out.output)
            out.output += data[:room]
            out.output_dropped += max(0, len(data) - room)


def _drain(
    sock: socket.socket, out: Execution, pending: dict[int, dict[str, Any]], deadline: float
) -> bool:
    """Read every queued report; True when the case must be ended now."""
    while True:
        try:
            data, _, flags, _ = sock.recvmsg(MAX_REPORT_BYTES + 1)
        except BlockingIOError:
            return False
        if not data:
            # End of file (or an empty datagram, which no real report is): stop polling the
            # socket so a closed one does not spin us; what is left is read once all ended.
            out.reports_closed = True
            return False
        out.received += 1
        try:
            if flags & socket.MSG_TRUNC:
                raise MalformedReport(f"a report of more than {MAX_REPORT_BYTES} bytes")
            msg = parse_report(data, names.SIGNAL, names.ERRNO)
            _keep(out, msg, len(data))
        except MalformedReport as e:
            out.malformed = f"the case sent {e}: the case was ended"
            return True
        if msg.get("limit"):
            # The process cap was hit: the case killed its group, but a process that changed
            # its uid (setuid) may not have been allowed to kill them all. We always are.
            return True
        if msg["t"] == "start":
            pending[msg["pid"]] = msg["expect"]
        elif msg["t"] == "end":
            pending.pop(msg["pid"], None)
        if out.received % 64 == 0 and time.monotonic() >= deadline:
            return False  # a flood must not hold us past the deadline: the loop times out


def _keep(out: Execution, msg: dict[str, Any], size: int) -> None:
    msg["_bytes"] = size
    out.messages.append(msg)
    out.kept_bytes += size
    # the hard bounds are checked at every report, not only when compaction is next due (its
    # threshold grows past them once a case holds many reports it cannot leave out)
    count_due = min(out.compact_at, MAX_KEPT_REPORTS)
    if len(out.messages) > count_due or out.kept_bytes > min(out.compact_bytes_at, MAX_KEPT_BYTES):
        _compact(out)
        if len(out.messages) > MAX_KEPT_REPORTS or out.kept_bytes > MAX_KEPT_BYTES:
            raise MalformedReport(
                f"more reports than the harness keeps ({MAX_KEPT_REPORTS} or "
                f"{MAX_KEPT_BYTES >> 20} MiB, after leaving out passed steps)"
            )


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
    out.kept_bytes = sum(m["_bytes"] for m in out.messages)
    out.compact_bytes_at = max(MAX_KEPT_BYTES // 4, 2 * out.kept_bytes)


def _unexpected(ending: Ending, pending: dict[int, dict[str, Any]]) -> bool:
    if ending.signal is None:
        return ending.exit not in (0, None)
    want = pending.get(ending.pid, {})
    return not (want.get("kind") == "signal" and signal.Signals[want["signal"]] == ending.signal)


def _kill_and_reap(init: int, out: Execution) -> None:
    """Nothing of the case outlives this. The init's death kills its whole PID namespace;
    without one, the process group is what we can reach."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(init, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(init, signal.SIGKILL)
    while True:
        try:
            _, status = os.waitpid(init, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if not out.timed_out and not out.malformed and status != 0:
            out.init_status = status
        return
