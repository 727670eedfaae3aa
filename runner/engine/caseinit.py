"""The case's init: harness code, pid 1 of the case's PID namespace, never a case process.

It joins the case's cgroups and mount view (runner.engine.confine), forks the case's first
process, then only reaps: every process of the case that ends (an orphan included, whatever
its session) is reported to the harness as ``(pid, wait status)`` on a pipe no case process
holds. It exits when the namespace is empty; when the harness kills it, the kernel kills every
process left in the namespace.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
from typing import NoReturn

from runner.engine import confine, libc
from runner.engine.arena import Arena
from runner.engine.process import case_main
from runner.engine.protocol import EXIT_ERROR
from runner.lang.conditions import Facts
from runner.lang.model import Case

ENDING = struct.Struct("=ii")  # pid (in the case's namespace), wait status
CHANNEL_FD = 3  # where a case process holds its report socket: every other fd above 2 is closed
_DEFAULTS = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP)


def init_main(
    conf: confine.Confinement,
    case: Case,
    facts: Facts,
    arena: Arena,
    channel: socket.socket,
    relay: int,
    output: int,
    scratch: str | None,
    deadline: float,
) -> NoReturn:
    """Run in the freshly forked init; never returns."""
    code = EXIT_ERROR
    try:
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setpgid(0, 0)
        if not conf.pid_ns:  # without a namespace, orphans at least come back to us
            libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        for sig in _DEFAULTS:
            signal.signal(sig, signal.SIG_DFL)
        _standard_fds(output)
        try:
            confine.enter(conf, scratch)
        except OSError as e:
            _refuse(channel, f"the case could not be confined: {e}")
        first = os.fork()
        if first == 0:
            os.close(relay)
            if conf.pid_ns:  # its own group: -1 must never be the case's group (the init's)
                os.setpgid(0, 0)
            case_main(case, facts, arena, _only_channel(channel), scratch, deadline)
        channel.close()
        _reap(relay)
        code = 0
    finally:
        os._exit(code)


def _standard_fds(output: int) -> None:
    """stdin from /dev/null; stdout and stderr into the harness's bounded capture pipe."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)


def _only_channel(channel: socket.socket) -> socket.socket:
    """Close every descriptor above 2 but the report socket, which moves to CHANNEL_FD: a case
    process holds nothing of the harness's (no worker pipe, no relay, no pytest channel)."""
    fd = channel.detach()
    if fd != CHANNEL_FD:
        os.dup2(fd, CHANNEL_FD)
    libc.syscall("close_range", CHANNEL_FD + 1, 0xFFFFFFFF, 0)
    return socket.socket(fileno=CHANNEL_FD)


def _refuse(channel: socket.socket, message: str) -> NoReturn:
    msg = {"t": "error", "proc": "init", "step": "", "op": "", "message": message, "pid": 1}
    channel.send(json.dumps(msg).encode())
    os._exit(EXIT_ERROR)


def _reap(relay: int) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return  # the namespace is empty
        except InterruptedError:
            continue
        os.write(relay, ENDING.pack(pid, status))
