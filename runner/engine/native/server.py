"""The harness's side of the native fork server: one per worker process, one case at a time.

The server is exec'd once (per harness or ``-n`` worker process) and forks once per case the
case's init (executor.c's ``case_init``), pid 1 of a fresh PID namespace in a private copy of
the read-only template view, which forks the case's first process and relays how each process
of the case ended. What is paid once per worker is paid at the server's start: it joins the case
cgroups (runner.engine.confine) and is handed the template mount namespace. Per case the harness
writes the program into a memfd and sends a RUN request with the case's report socket, output
pipe and fresh arena attached; the case's processes report their steps on the report socket,
which only they and the harness hold.
"""

from __future__ import annotations

import array
import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

from runner.engine import confine, interrupt
from runner.engine.arena import Arena, SigInfo
from runner.engine.native import confinement
from runner.engine.native.build import executor_path

CTL_RUN, CTL_STARTED, CTL_ENDING, CTL_FINISHED, CTL_WALLS, CTL_EMPTY = 1, 2, 3, 4, 5, 6
NATIVE_PROCS, NATIVE_MAPS = 64, 48
IP_WANTS = 6  # comparators of an ip expectation, resolved before the step
# struct nslot in executor.c
# its head: pid, in_step, step, pad, iteration, si_addr, has_si_addr, nmaps, unsent
_NSLOT_HEAD = struct.Struct("<iiiiqqiiq")
_NSLOT = struct.Struct(
    f"{_NSLOT_HEAD.format}{2 * NATIVE_MAPS}q{NATIVE_MAPS}iii16i{IP_WANTS + 1}qii{IP_WANTS}iqii"
)
_NEXT_SLOT = struct.Struct("<i")  # struct native_head's next_slot, before the slots
REPORT_MAX = 1 << 20
_MSG_TRUNC = int(socket.MSG_TRUNC)  # an int: `&` with the enum member costs 5 us a record
# What the harness keeps of one case's reports, whatever it sends (as executor.MAX_KEPT_BYTES).
MAX_KEPT_BYTES = 64 << 20
MAX_OUTPUT = 64 << 10  # of the case's stdout and stderr, kept in the result
GRACE_S = 2.0  # after a kill, how long the server may take to reap the group


# comparator codes of an ip expectation (program.py's COMPARATORS); "eq" for an address alone
IP_OPS = ("eq", "ne", "gt", "ge", "lt", "le")


def _native_off() -> int:
    # PROCS_OFF + 64 in executor.c: the arena's own layout, then the native slots
    return Arena.SIZE - 32 + 64


class NativeArena(Arena):
    """Arena's layout (events, abort word, siginfo slots, process count), then one native slot
    per process (executor.c's struct nslot)."""

    SIZE = _native_off() + 64 + NATIVE_PROCS * _NSLOT.size

    def siginfo(self, pid: int) -> SigInfo | None:
        """The base slot's siginfo, with the instruction address the native handler found."""
        info = super().siginfo(pid)
        task = info.tid if info is not None and info.tid else pid  # the thread that faulted
        slot = next((s for s in self.native_slots() if s.pid == task), None)
        return replace(info, ip=slot.fault_ip) if info is not None and slot else info

    def load(self, snapshot: bytes) -> None:
        """The page as an executor elsewhere left it (a qemu guest's, same layout), zeros past
        the end of SNAPSHOT."""
        if len(snapshot) > self.SIZE:
            raise ValueError(f"an arena of {len(snapshot)} bytes, more than {self.SIZE}")
        os.pwrite(self.fd, snapshot + bytes(self.SIZE - len(snapshot)), 0)

    def native_slots(self) -> list[NativeSlot]:
        """The slots the case's processes claimed: the first ``next_slot`` of them (a count
        the case can write, hence clamped; a slot past it was never claimed). Of a process
        not in a step only the head is read (its steps left unsent): the rest of a slot says
        where a process was in a step when it died or the case ended."""
        out = []
        (claimed,) = _NEXT_SLOT.unpack(self.read(_native_off(), _NEXT_SLOT.size))
        claimed = max(0, min(claimed, NATIVE_PROCS))
        page = self.read(_native_off() + 64, claimed * _NSLOT.size)
        for k in range(claimed):
            pid, in_step, step, _, iteration, si_addr, has_si_addr, nmaps, unsent = (
                _NSLOT_HEAD.unpack_from(page, k * _NSLOT.size)
            )
            if pid == 0:
                continue
            slot = NativeSlot(
                pid, bool(in_step), step, iteration, si_addr if has_si_addr else None, nmaps, unsent
            )
            if in_step:
                _in_step(slot, _NSLOT.unpack_from(page, k * _NSLOT.size))
            out.append(slot)
        return out


def _in_step(slot: NativeSlot, raw: tuple[int, ...]) -> None:
    """SLOT's mappings, open steps and instruction address, from its whole RAW words."""
    maps = raw[9 : 9 + 2 * NATIVE_MAPS]
    bound = raw[9 + 2 * NATIVE_MAPS : 9 + 3 * NATIVE_MAPS]
    depth = raw[9 + 3 * NATIVE_MAPS]
    stack = raw[11 + 3 * NATIVE_MAPS : 27 + 3 * NATIVE_MAPS]
    ip = raw[27 + 3 * NATIVE_MAPS : -3]  # then name_index, tgid, pad
    fault_ip, wants = ip[0], ip[1 : 1 + IP_WANTS]
    has_ip, nwant, ops = ip[1 + IP_WANTS], ip[2 + IP_WANTS], ip[3 + IP_WANTS :]
    # nmaps is the case's to write: no more than a slot holds
    slot.maps = [
        (maps[2 * i], maps[2 * i + 1]) if bound[i] else None
        for i in range(min(slot.nmaps, NATIVE_MAPS))
    ]
    slot.open_steps = list(stack[: min(depth, 16)])
    slot.fault_ip = fault_ip if has_ip else None
    slot.ip_want = {
        IP_OPS[ops[k]]: wants[k] for k in range(min(nwant, IP_WANTS)) if 0 <= ops[k] < len(IP_OPS)
    }


@dataclass
class NativeSlot:
    pid: int  # a thread's id; a process's own pid (its process: the REC_THREAD record)
    in_step: bool
    step: int
    iteration: int
    si_addr: int | None
    nmaps: int
    unsent: int
    maps: list[tuple[int, int] | None] = field(default_factory=list)
    open_steps: list[int] = field(default_factory=list)  # outermost first
    fault_ip: int | None = None  # where the process's fault handler found the instruction
    ip_want: dict[str, int] = field(default_factory=dict)  # the open step's ip, resolved


@dataclass
class CaseRun:
    """What came back from one case: its report records, how each process ended."""

    records: list[bytes] = field(default_factory=list)
    endings: list[tuple[int, int]] = field(default_factory=list)  # (pid, wait status)
    timed_out: bool = False
    init: int = 0  # the case's init, in our PID namespace
    init_status: int = 0  # its wait status, where we did not kill it
    killed: bool = False  # we end it (at its deadline, or on a report it must end on)
    kept_bytes: int = 0
    reports_closed: bool = False
    output: bytes = b""  # the first MAX_OUTPUT bytes of the case's stdout and stderr
    output_dropped: int = 0


class ForkServer:
    def __init__(self, conf: confine.Confinement):
        self.conf = conf
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.program_fd = os.memfd_create("mmapconf-program", 0)
        binary = str(executor_path())
        fds = (theirs.fileno(), self.program_fd)
        # The harness's command line as a last argument: `ps` (and a test looking for a run's
        # processes) shows which run the server and its case processes belong to. No arena:
        # each case brings its own.
        harness = " ".join(sys.argv)[:512]
        argv = [binary, str(fds[0]), "-1", str(fds[1]), harness]
        self.proc = subprocess.Popen(argv, pass_fds=fds, stdin=subprocess.DEVNULL)
        theirs.close()
        self.pid = os.getpid()
        self.closed = False
        # A case that ended at its init's EMPTY: its FINISHED (and its STARTED, which can come
        # after the EMPTY) are still to come, before anything of the next case.
        self.unfinished = 0
        try:
            origins = conf.origins()
            conf.host(self.proc.pid)  # before its first case: every init is born in them
            walls = [conf.template, conf.template_root] if conf.template >= 0 else []
            req = array.array("q", [CTL_WALLS, int(conf.pid_ns), len(origins)])
            req.extend(confinement.strings(*origins))
            socket.send_fds(self.control, [req.tobytes()], walls)
        except BaseException:
            self.close()
            raise

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
        self.conf.unhost(self.proc.pid)

    def run(
        self,
        arena: NativeArena,
        program: bytes,
        scratch: str | None,
        timeout: float,
        walls: bytes,
        reader: Reader,
        wait_for_init: bool = True,
    ) -> CaseRun:
        """Run one program under WALLS (confinement.request_words); ``reader`` sees each
        report and says when to end the case now (the process cap was hit, or its reports
        were refused). The case has ended when the server has reaped its init, or, unless
        WAIT_FOR_INIT (the host has something of the case to undo that the init's view holds),
        when the init says its PID namespace is empty: every process of the case has ended
        and been relayed, and the init's exit (the namespace's teardown) runs while the
        harness judges; the server reaps it before it reads the next request."""
        os.pwrite(self.program_fd, program, 0)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            os.set_blocking(out_w, True)
            path = (scratch or "").encode()
            req = array.array("q", [CTL_RUN, int(timeout * 1e9), len(program) // 8, len(path)])
            req.frombytes(path + b"\0" * (-len(path) % 8) + walls)
            socket.send_fds(self.control, [req.tobytes()], [theirs.fileno(), out_w, arena.fd])
            theirs.close()
            os.close(out_w)
            out = CaseRun()
            try:
                deadline = time.monotonic() + timeout
                return self._collect(ours, out_r, deadline, reader, out, wait_for_init)
            except BaseException:
                # An interrupt (or a broken server) must not leave the case running: kill its
                # init and let the server reap it before the next case.
                with interrupt.deferred():
                    self._kill(out)
                    self._finish(out)
                    self.close()  # an interrupted run is ending: nothing of it stays behind
                raise
        finally:
            ours.close()
            theirs.close()
            os.close(out_r)
            with contextlib.suppress(OSError):
                os.close(out_w)

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
        output: int,
        deadline: float,
        reader: Reader,
        out: CaseRun,
        wait_for_init: bool,
    ) -> CaseRun:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(output, select.POLLIN)
        poller.register(self.control, select.POLLIN)
        finished = False
        kill_at: float | None = None
        while not finished:
            now = time.monotonic()
            if kill_at is None and now >= deadline:
                out.timed_out = True
                kill_at = now
                self._kill(out)
            if kill_at is not None and now > kill_at + GRACE_S:
                raise RuntimeError("the native fork server did not reap a killed case")
            wait = (deadline if kill_at is None else kill_at + GRACE_S) - now
            for fd, _ in poller.poll(max(wait, 0) * 1000):
                if fd == sock.fileno():
                    if kill_at is not None:  # the case is ending: what it sends is not read
                        _discard(sock, out)
                    elif self._drain(sock, out, reader, deadline):
                        kill_at = time.monotonic()
                        self._kill(out)
                    if out.reports_closed:
                        poller.unregister(sock)
                elif fd == output:
                    if not _capture(output, out):
                        poller.unregister(output)
                else:
                    finished = self._control(out, at_empty=not wait_for_init)
        if kill_at is None:
            out.reports_closed = False
            self._drain(sock, out, reader, deadline)
        _capture(output, out)
        return out

    def _kill(self, out: CaseRun) -> None:
        """The init's death kills its whole PID namespace; without one, its process group is
        what we reach. Before the server has said which pid the init has, the kill waits for
        that (a case's first reports can arrive before it)."""
        out.killed = True
        if out.init > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(out.init, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(out.init, signal.SIGKILL)

    def _drain(self, sock: socket.socket, out: CaseRun, reader: Reader, deadline: float) -> bool:
        """Read the queued reports; True when the case must be ended now. A flood must not
        hold us past the deadline, nor in memory past MAX_KEPT_BYTES."""
        while not out.reports_closed:
            try:
                data, _, flags, _ = sock.recvmsg(REPORT_MAX, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return False
            if not data:
                # End of file (or an empty datagram, which no real report is): stop polling the
                # socket so a closed one does not spin us; what is left is read once all ended.
                out.reports_closed = True
                return False
            out.kept_bytes += len(data)
            if flags & _MSG_TRUNC:
                return reader.refuse(f"a report of more than {REPORT_MAX} bytes")
            if out.kept_bytes > MAX_KEPT_BYTES:
                return reader.refuse(f"more than {MAX_KEPT_BYTES >> 20} MiB of reports")
            out.records.append(data)
            if reader.on_record(data):
                return True
            if len(out.records) % 64 == 0 and time.monotonic() >= deadline:
                return False  # the loop times the case out
        return False

    def _control(self, out: CaseRun, at_empty: bool = False) -> bool:
        """Take one message of the server (or the case's init); True when the case has ended
        (AT_EMPTY: already at the init's EMPTY, unless we are killing the case)."""
        data = self.control.recv(64)
        if not data:
            raise RuntimeError("the native fork server exited")
        kind, a, b = struct.unpack("<qqq", data)
        if self.unfinished and kind in (CTL_STARTED, CTL_FINISHED):  # an earlier case's
            self.unfinished -= kind == CTL_FINISHED
        elif kind == CTL_EMPTY:
            if at_empty and not out.killed:
                self.unfinished += 1
                return True
        elif kind == CTL_STARTED:
            out.init = a
            if out.killed:
                self._kill(out)
        elif kind == CTL_ENDING:
            out.endings.append((a, b))
        elif kind == CTL_FINISHED:
            if a < 0:
                raise RuntimeError(f"the native fork server could not fork: {os.strerror(b)}")
            if b and not out.killed:
                out.init_status = b
            return True
        return False


def _discard(sock: socket.socket, out: CaseRun) -> None:
    """Empty the socket of what is queued now (a flood ends with its processes)."""
    for _ in range(1024):
        try:
            if not sock.recv(REPORT_MAX, socket.MSG_DONTWAIT):
                out.reports_closed = True
                return
        except BlockingIOError:
            return


def _capture(fd: int, out: CaseRun) -> bool:
    """Keep the first MAX_OUTPUT bytes of what the case printed; count (and drop) the rest.
    False at end of file."""
    try:
        while data := os.read(fd, 1 << 16):
            room = MAX_OUTPUT - len(out.output)
            out.output += data[:room]
            out.output_dropped += max(0, len(data) - room)
    except BlockingIOError:
        return True
    return False


class Reader(Protocol):
    """What reads a case's reports as they arrive (native/execute.py); True ends the case."""

    def on_record(self, data: bytes) -> bool: ...

    def refuse(self, reason: str) -> bool: ...


# by process (a forked -n worker starts its own), then by walls (the benchmark's confine.only)
_servers: dict[tuple[int, bool, bool, bool], ForkServer] = {}


def _key(conf: confine.Confinement) -> tuple[int, bool, bool, bool]:
    return os.getpid(), conf.pid_ns, conf.template >= 0, bool(conf.cgroups)


def server_for(conf: confine.Confinement) -> ForkServer:
    """This process's fork server for the walls of ``conf``, started at its first case."""
    srv = _servers.get(_key(conf))
    if srv is None or srv.closed or srv.proc.poll() is not None:
        srv = _servers[_key(conf)] = ForkServer(conf)
    return srv


def close_server() -> None:
    """Stop this process's fork servers, if it started any (the next case starts a new one)."""
    for key in [k for k in _servers if k[0] == os.getpid()]:
        _servers.pop(key).close()


def server_cpu_s() -> float:
    """CPU seconds of this process's live fork servers and the case processes they reaped."""
    total = 0.0
    for key, srv in _servers.items():
        if key[0] != os.getpid() or srv.proc.poll() is not None:
            continue
        try:
            with open(f"/proc/{srv.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime: fields 14-17 of stat(5), here counted after the name
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total
