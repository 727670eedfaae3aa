"""The harness's side of the native fork server: one per worker process, one case at a time.

The server is exec'd once (per harness or ``-n`` worker process) and forks once per case. The
harness writes the case's program into a memfd, sends a RUN request with the case's report
socket attached, and reads back how each process of the case ended; the case's processes report
their steps on the report socket, which only they and the harness hold.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.engine import interrupt, libc
from runner.engine.arena import Arena
from runner.engine.native.build import executor_path

CTL_RUN, CTL_STARTED, CTL_ENDING, CTL_FINISHED = 1, 2, 3, 4
NATIVE_PROCS, NATIVE_MAPS = 64, 48
# struct nslot in executor.c
_NSLOT = struct.Struct(f"<iiiiqqiiq{2 * NATIVE_MAPS}q{NATIVE_MAPS}iii16i")
REPORT_MAX = 1 << 20
GRACE_S = 2.0  # after a kill, how long the server may take to reap the group


def _native_off() -> int:
    # PROCS_OFF + 64 in executor.c: the arena's own layout, then the native slots
    return Arena.SIZE - 32 + 64


class NativeArena(Arena):
    """The shared page of a case, in a memfd the fork server maps too: Arena's layout (events,
    abort word, siginfo slots, process count), then one native slot per process."""

    SIZE = _native_off() + 64 + NATIVE_PROCS * _NSLOT.size

    def __init__(self) -> None:
        self.fd = libc.memfd_create("mmapconf-arena", 0)
        os.ftruncate(self.fd, self.SIZE)
        self._map = mmap.mmap(self.fd, self.SIZE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))

    def load(self, snapshot: bytes) -> None:
        """The page as an executor elsewhere left it (a qemu guest's, same layout)."""
        if len(snapshot) != self.SIZE:
            raise ValueError(f"an arena of {len(snapshot)} bytes, not {self.SIZE}")
        self._map[:] = snapshot

    def native_slots(self) -> list[NativeSlot]:
        out = []
        start = _native_off() + 64
        for k in range(NATIVE_PROCS):
            raw = _NSLOT.unpack_from(self._map, start + k * _NSLOT.size)
            if raw[0] == 0:
                continue
            maps = raw[9 : 9 + 2 * NATIVE_MAPS]
            bound = raw[9 + 2 * NATIVE_MAPS : 9 + 3 * NATIVE_MAPS]
            depth = raw[9 + 3 * NATIVE_MAPS]
            stack = raw[11 + 3 * NATIVE_MAPS :]
            out.append(
                NativeSlot(
                    pid=raw[0],
                    in_step=bool(raw[1]),
                    step=raw[2],
                    iteration=raw[4],
                    si_addr=raw[5] if raw[6] else None,
                    nmaps=raw[7],
                    unsent=raw[8],
                    maps=[
                        (maps[2 * i], maps[2 * i + 1]) if bound[i] else None for i in range(raw[7])
                    ],
                    open_steps=list(stack[: min(depth, 16)]),
                )
            )
        return out


@dataclass
class NativeSlot:
    pid: int
    in_step: bool
    step: int
    iteration: int
    si_addr: int | None
    nmaps: int
    unsent: int
    maps: list[tuple[int, int] | None] = field(default_factory=list)
    open_steps: list[int] = field(default_factory=list)  # outermost first


@dataclass
class CaseRun:
    """What came back from one case: its report records, how each process ended."""

    records: list[bytes] = field(default_factory=list)
    endings: list[tuple[int, int]] = field(default_factory=list)  # (pid, wait status)
    timed_out: bool = False
    pgid: int = 0


class ForkServer:
    def __init__(self, arena: NativeArena):
        self.arena = arena
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.program_fd = libc.memfd_create("mmapconf-program", 0)
        binary = str(executor_path())
        fds = (theirs.fileno(), arena.fd, self.program_fd)
        # The harness's command line as a last argument: `ps` (and a test looking for a run's
        # processes) shows which run the server and its case processes belong to.
        harness = " ".join(sys.argv)[:512]
        self.proc = subprocess.Popen(
            [binary, *map(str, fds), harness], pass_fds=fds, stdin=subprocess.DEVNULL
        )
        theirs.close()
        self.pid = os.getpid()
        self.closed = False

    def close(self) -> None:
        """End of input ends the server; waiting for it counts its CPU (and its cases') in ours."""
        if self.closed:
            return
        self.closed = True
        self.control.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.program_fd)

    def run(
        self,
        program: bytes,
        scratch: str | None,
        timeout: float,
        confinement: list[int],
        on_record: Callable[[bytes], bool],
    ) -> CaseRun:
        """Run one program; ``on_record`` sees each report and returns True to end the case
        now (the process cap was hit)."""
        os.pwrite(self.program_fd, program, 0)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            path = (scratch or "").encode()
            req = array.array("q", [CTL_RUN, int(timeout * 1e9), len(program) // 8, len(path)])
            req.frombytes(path + b"\0" * (-len(path) % 8))
            req.extend(confinement)
            socket.send_fds(self.control, [req.tobytes()], [theirs.fileno()])
            theirs.close()
            out = CaseRun()
            try:
                return self._collect(ours, time.monotonic() + timeout, on_record, out)
            except BaseException:
                # An interrupt (or a broken server) must not leave the case running: kill its
                # group and let the server reap it before the next case.
                with interrupt.deferred():
                    self._kill(out.pgid)
                    self._finish(out)
                    self.close()  # an interrupted run is ending: nothing of it stays behind
                raise
        finally:
            ours.close()
            theirs.close()

    def _finish(self, out: CaseRun) -> None:
        """Wait (bounded) for the server's FINISHED after a kill; a server that does not
        answer is killed, and the next case starts a new one."""
        end = time.monotonic() + GRACE_S
        while time.monotonic() < end:
            if not select.select([self.control], [], [], max(end - time.monotonic(), 0))[0]:
                break
            try:
                if self._control(out):
                    return
            except (OSError, RuntimeError):
                break
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def _collect(
        self,
        sock: socket.socket,
        deadline: float,
        on_record: Callable[[bytes], bool],
        out: CaseRun,
    ) -> CaseRun:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self.control, select.POLLIN)
        finished = False
        kill_at: float | None = None
        while not finished:
            now = time.monotonic()
            if kill_at is None and now >= deadline:
                out.timed_out = True
                kill_at = now
                self._kill(out.pgid)
            if kill_at is not None and now > kill_at + GRACE_S:
                raise RuntimeError("the native fork server did not reap a killed case")
            wait = (deadline if kill_at is None else kill_at + GRACE_S) - now
            for fd, _ in poller.poll(max(wait, 0) * 1000):
                if fd == sock.fileno():
                    stop, ended = self._drain(sock, out, on_record)
                    if ended:  # its end of file stays readable: polling it again would spin
                        poller.unregister(sock)
                    if stop and kill_at is None:
                        kill_at = time.monotonic()
                        self._kill(out.pgid)
                else:
                    finished = self._control(out)
        self._drain(sock, out, on_record)
        return out

    def _kill(self, pgid: int) -> None:
        if pgid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    def _drain(
        self, sock: socket.socket, out: CaseRun, on_record: Callable[[bytes], bool]
    ) -> tuple[bool, bool]:
        """Read what the case sent so far: (whether ``on_record`` ended the case, whether
        every case process has closed the socket)."""
        stop = False
        while True:
            try:
                data = sock.recv(REPORT_MAX, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return stop, False
            if not data:
                return stop, True
            out.records.append(data)
            stop = on_record(data) or stop

    def _control(self, out: CaseRun) -> bool:
        data = self.control.recv(64)
        if not data:
            raise RuntimeError("the native fork server exited")
        kind, a, b = struct.unpack("<qqq", data)
        if kind == CTL_STARTED:
            out.pgid = a
        elif kind == CTL_ENDING:
            out.endings.append((a, b))
        elif kind == CTL_FINISHED:
            return True
        return False


_servers: dict[int, ForkServer] = {}


def server_for(arena: NativeArena) -> ForkServer:
    """This process's fork server (a forked ``-n`` worker starts its own)."""
    pid = os.getpid()
    srv = _servers.get(pid)
    if srv is None or srv.closed or srv.arena is not arena or srv.proc.poll() is not None:
        srv = _servers[pid] = ForkServer(arena)
    return srv


def close_server() -> None:
    """Stop this process's fork server, if it started one (the next case starts a new one)."""
    srv = _servers.pop(os.getpid(), None)
    if srv is not None:
        srv.close()


def server_cpu_s() -> float:
    """CPU seconds of this process's live fork server and the case processes it reaped."""
    srv = _servers.get(os.getpid())
    if srv is None or srv.proc.poll() is not None:
        return 0.0
    try:
        with open(f"/proc/{srv.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime stime cutime cstime: fields 14-17 of stat(5), here counted after the name
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
