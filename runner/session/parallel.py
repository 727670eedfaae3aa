"""``-n N``: run items in N forked worker processes; results come back as they finish.

A small pool of our own rather than multiprocessing.Pool: a worker that dies (OOM killer, a
stray SIGKILL) must cost one item, which ends as ``error``, not hang the run; an interrupted run
must stop its workers at once, with each one killing its case and removing its scratch folder;
and a SIGKILLed harness must take its workers with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

from runner.engine import confine, interrupt, libc, mounts
from runner.session.runner import Item, Result, Runner

STOP = -1
WORKER_EXIT_S = 10.0  # a worker asked to stop kills its case and cleans up well within this
# Both directions carry length-prefixed JSON, never pickle: nothing that arrives can run code.
# No case process inherits these pipes (the case's init closes all but its report socket).
_LENGTH = struct.Struct("=I")
MAX_FRAME = 256 << 20
FRAME_S = 1.0  # a result frame, once begun, arrives whole within this
# A busy worker says it is alive every HEARTBEAT_S (from a thread of its own, while its item is
# set up, runs and is cleaned up). One not heard from for LIVENESS_S whose threads the kernel
# shows neither running nor waiting for a CPU since it was last looked at (schedstat: time on a
# CPU and time waiting on a run queue) is stalled (stopped, hung, gone quiet): it is killed and
# its item ends as error. One that wants a CPU only waits for it on a loaded machine, and is
# not killed for that.
# The case's own time is not guessed here: the fork server's timer ends the case at its timeout.
# Only a worker that keeps saying it is alive and still has not answered within its case's
# timeout plus WORKER_GRACE_S is killed for that.
HEARTBEAT_S = 0.2
LIVENESS_S = 1.0
WORKER_GRACE_S = 10.0


class ChannelError(Exception):
    """The other end sent something that is not a frame of ours, or went away."""


def send_frame(fd: int, obj: Any) -> None:
    data = json.dumps(obj).encode()
    if len(data) > MAX_FRAME:
        raise ChannelError(f"a frame of {len(data)} bytes")
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def recv_frame(fd: int, within: float | None = None) -> Any:
    """One frame; with ``within``, the whole of it must arrive in that many seconds once it has
    begun (a worker writes each frame at once: one that stalls mid-frame is broken)."""
    deadline = None if within is None else time.monotonic() + within
    (length,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size, deadline))
    if length > MAX_FRAME:
        raise ChannelError(f"a frame length of {length} bytes")
    try:
        return json.loads(_read_exactly(fd, length, deadline))
    except (ValueError, RecursionError) as e:
        raise ChannelError(f"a frame that is not JSON: {e}") from None


def _read_exactly(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, left = [], n
    while left:
        if deadline is not None and not _readable(fd, deadline - time.monotonic()):
            raise ChannelError("a frame that stopped halfway")
        data = os.read(fd, min(left, 1 << 20))
        if not data:
            raise ChannelError("end of file")
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def _readable(fd: int, seconds: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(seconds, 0) * 1000))


class _Worker:
    """One forked worker: it receives item indexes and sends back (index, result) frames."""

    def __init__(self, runner: Runner, items: list[Item], others: list[_Worker]):
        parent_pid = os.getpid()
        from_harness, to_worker = os.pipe2(os.O_CLOEXEC)
        from_worker, to_harness = os.pipe2(os.O_CLOEXEC)
        mask = interrupt.block()  # the child must not run the harness's handler before its own
        try:
            pid = os.fork()
        except BaseException:
            interrupt.unblock(mask)
            for fd in (to_worker, from_harness, from_worker, to_harness):
                os.close(fd)
            raise
        if pid == 0:
            try:
                for fd in (to_worker, from_worker, *(f for w in others for f in w.fds)):
                    with contextlib.suppress(OSError):
                        os.close(fd)  # other workers' pipes are not ours to hold
                _worker_main(runner, items, from_harness, to_harness, parent_pid, mask)
            finally:
                os._exit(70)  # whatever happened, a fork never returns into the harness's code
        interrupt.unblock(mask)
        os.close(from_harness)
        os.close(to_harness)
        self.pid, self.index, self.deadline, self.heard, self.progress = pid, STOP, 0.0, 0.0, 0
        self.to_worker, self.from_worker = to_worker, from_worker

    @property
    def fds(self) -> tuple[int, int]:
        return self.to_worker, self.from_worker

    def give(self, index: int, timeout: float = 0.0) -> None:
        """Hand it item ``index``, whose case may take ``timeout`` seconds."""
        self.index = index
        self.heard = time.monotonic()
        self.progress = _progress(self.pid)
        self.deadline = self.heard + timeout + WORKER_GRACE_S
        send_frame(self.to_worker, index)

    @property
    def wake(self) -> float:
        """When it is late: not heard from for LIVENESS_S, or past its item's deadline."""
        return min(self.deadline, self.heard + LIVENESS_S)

    def receive(self) -> tuple[int, Result] | None:
        """The worker's next result, or None for a heartbeat; ChannelError when it died or sent
        something else."""
        frame = recv_frame(self.from_worker, within=FRAME_S)
        if isinstance(frame, dict) and frame.keys() == {"alive"} and frame["alive"] == self.index:
            self.heard = time.monotonic()
            return None
        if not isinstance(frame, dict) or frame.get("index") != self.index:
            raise ChannelError("a result for an item it was not given")
        try:
            return self.index, Result.from_json(frame.get("result"))
        except ValueError as e:
            raise ChannelError(str(e)) from None

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _worker_main(
    runner: Runner, items: list[Item], inbox: int, outbox: int, parent_pid: int, mask: object
) -> None:
    code = 0
    try:
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the harness died before prctl took effect
            os._exit(1)
        # SIGTERM (from the harness stopping us) unwinds the running item through its clean-up;
        # a terminal's Ctrl-C reaches us too, but the harness decides and then sends SIGTERM.
        interrupt.install(raise_as=lambda signum: SystemExit(128 + signum))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        interrupt.unblock(mask)
        confine.current().adopt()
        heart = _Heartbeat(outbox)
        while True:
            index = recv_frame(inbox)
            if type(index) is not int or index == STOP or not 0 <= index < len(items):
                break
            heart.beat_for(index)
            heart.send({"index": index, "result": runner.run_item(items[index]).to_json()})
    except (SystemExit, ChannelError, BrokenPipeError):
        code = 0
    except BaseException:
        code = 1
    finally:
        # The harness's SIGTERM (its stop) must not cut the closing short: the fork server is
        # reaped here, so none outlives its worker and its CPU counts in the harness's children.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        with contextlib.suppress(BaseException):
            runner.close()  # reaped here, its CPU counts in the harness's children's
        with interrupt.deferred():
            confine.current().close()  # our cgroups: os._exit runs no atexit
            mounts.close_own()  # our disk instance
        os._exit(code)  # never fall back into the harness's code


class _Heartbeat:
    """A worker's sender: its results, and while an item is in hand, ``{"alive": index}``
    every HEARTBEAT_S from a thread of its own (the frames never interleave)."""

    def __init__(self, outbox: int):
        self.outbox, self.index, self.lock = outbox, STOP, threading.Lock()
        # Born with every signal blocked: a SIGTERM must reach the main thread, whose wait it
        # interrupts (one taken by this thread would leave the main thread blocked).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            threading.Thread(target=self._beat, daemon=True).start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def beat_for(self, index: int) -> None:
        with self.lock:
            self.index = index
            send_frame(self.outbox, {"alive": index})  # at once: the worker has it in hand

    def send(self, result: dict[str, Any]) -> None:
        """The item's result; no heartbeat for it follows."""
        with self.lock:
            self.index = STOP
            send_frame(self.outbox, result)

    def _beat(self) -> None:
        with contextlib.suppress(OSError):  # the harness is gone: so are we, soon
            while True:
                time.sleep(HEARTBEAT_S)
                with self.lock:
                    if self.index != STOP:
                        send_frame(self.outbox, {"alive": self.index})


def _lost(item: Item, pid: int, status: int, why: str) -> Result:
    """The result of an item whose worker died under it (or was killed: WHY)."""
    how = (
        f"signal {signal.Signals(os.WTERMSIG(status)).name}"
        if os.WIFSIGNALED(status)
        else f"exit {os.WEXITSTATUS(status)}"
    )
    case, inv = item.case, item.invalid
    return Result(
        item.name,
        item.id,
        item.backing.name if item.backing else "invalid",
        case.file if case else inv.file if inv else "",
        case.line if case else inv.line if inv else 0,
        "error",
        f"the worker process running it (pid {pid}) died: {how} ({why})",
    )


def _waitpid(pid: int) -> int:
    with contextlib.suppress(ChildProcessError):
        return os.waitpid(pid, 0)[1]
    return 0


def run_parallel(runner: Runner, items: list[Item], jobs: int) -> Iterator[Result]:
    """Yield each item's result in completion order; stop every worker however it ends."""
    for _, result in run_parallel_indexed(runner, items, jobs):
        yield result


def run_parallel_indexed(
    runner: Runner, items: list[Item], jobs: int
) -> Iterator[tuple[int, Result]]:
    """Like ``run_parallel``, with each result's index in ``items``."""
    todo = iter(range(len(items)))
    workers: list[_Worker] = []
    try:
        for _ in range(min(jobs, len(items))):
            worker = _Worker(runner, items, workers)
            workers.append(worker)
            _give(worker, items, next(todo))
        busy = list(workers)
        while busy:
            for worker, readable in _ready(busy):
                try:
                    if not readable:
                        _judge_late(worker)
                        continue
                    answer = worker.receive()
                    if answer is None:
                        continue  # alive
                    index, result = answer
                except (ChannelError, OSError) as e:
                    # The worker died under its item (or broke its channel): that item errs,
                    # a new worker goes on.
                    busy.remove(worker)
                    workers.remove(worker)
                    worker.close()
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signal.SIGKILL)
                    status = _waitpid(worker.pid)
                    confine.sweep([])  # what it could not undo: its cgroups, its disk instance
                    yield worker.index, _lost(items[worker.index], worker.pid, status, str(e))
                    index = next(todo, STOP)
                    if index != STOP:
                        worker = _Worker(runner, items, workers)
                        workers.append(worker)
                        busy.append(worker)
                        _give(worker, items, index)
                    continue
                yield index, result
                index = next(todo, STOP)
                if index == STOP:
                    busy.remove(worker)
                _give(worker, items, index)
    finally:
        with interrupt.deferred():
            _stop(workers)


def _give(worker: _Worker, items: list[Item], index: int) -> None:
    worker.give(index, items[index].timeout if index != STOP else 0.0)


def _ready(busy: list[_Worker]) -> list[tuple[_Worker, bool]]:
    """The workers that sent something (True), or are late and sent nothing (False): what is
    queued is read first, so a harness that was itself slow to wake kills no live worker."""
    poller = select.poll()
    for w in busy:
        poller.register(w.from_worker, select.POLLIN)
    while True:
        wait = max(0.0, min(w.wake for w in busy) - time.monotonic())
        try:
            fds = {fd for fd, _ in poller.poll(wait * 1000)}
        except InterruptedError:
            continue
        late = time.monotonic()
        return [(w, w.from_worker in fds) for w in busy if w.from_worker in fds or late > w.wake]


def _judge_late(worker: _Worker) -> None:
    """A late worker that is stalled, or past its deadline, raises ChannelError; one that ran
    or waited for a CPU since it was last looked at is looked at again a heartbeat later."""
    now = time.monotonic()
    if now > worker.deadline:
        raise ChannelError("no answer within its case's timeout")
    progress = _progress(worker.pid)
    if progress <= worker.progress:
        raise ChannelError(f"not heard from for {LIVENESS_S:g} s, and neither running nor runnable")
    worker.progress = progress
    worker.heard = now - LIVENESS_S + HEARTBEAT_S


def _progress(pid: int) -> int:
    """Nanoseconds the threads of PID have spent on a CPU or waiting on a run queue (their
    /proc schedstat; without it, their CPU time from stat): it grows while the process runs or
    wants to, and stands still while it sleeps or is stopped."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError, IndexError):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += sum(int(x) for x in f.read().split()[:2])
            except FileNotFoundError:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) * 10_000_000
    return total


def _stop(workers: list[_Worker]) -> None:
    """Ask every worker to stop (SIGTERM unwinds a running item), then reap them all."""
    for w in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(w.pid, signal.SIGTERM)
    for w in workers:
        _reap_within(w.pid, WORKER_EXIT_S)
        w.close()
    confine.sweep([])  # the cgroups of a worker that was killed before it could remove them


def _reap_within(pid: int, seconds: float) -> None:
    """Wait for ``pid``; SIGKILL it if it has not ended within ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _waitpid(pid)
