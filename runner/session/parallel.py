"""``-n N``: run items in N forked worker processes; results come back as they finish.

A small pool of our own rather than multiprocessing.Pool: a worker that dies (OOM killer, a
stray SIGKILL) must cost one item, which ends as ``error``, not hang the run; an interrupted run
must stop its workers at once, with each one killing its case and removing its scratch folder;
and a SIGKILLed harness must take its workers with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, Pipe, wait

from runner.engine import interrupt, libc
from runner.session.runner import Item, Result, Runner

STOP = -1
WORKER_EXIT_S = 10.0  # a worker asked to stop kills its case and cleans up well within this


class _Worker:
    """One forked worker: it receives item indexes and sends back (index, Result)."""

    def __init__(self, runner: Runner, items: list[Item]):
        parent_pid = os.getpid()
        ours, theirs = Pipe()
        mask = interrupt.block()  # the child must not run the harness's handler before its own
        try:
            pid = os.fork()
        except BaseException:
            interrupt.unblock(mask)
            ours.close()
            theirs.close()
            raise
        if pid == 0:
            ours.close()
            _worker_main(runner, items, theirs, parent_pid, mask)
        interrupt.unblock(mask)
        theirs.close()
        self.pid, self.conn, self.index = pid, ours, STOP

    def give(self, index: int) -> None:
        self.index = index
        self.conn.send(index)


def _worker_main(
    runner: Runner, items: list[Item], conn: Connection, parent_pid: int, mask: object
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
        runner._arena = None  # an arena inherited from the harness would be shared by all workers
        while True:
            index = conn.recv()
            if index == STOP:
                break
            conn.send((index, runner.run_item(items[index])))
    except (SystemExit, EOFError, BrokenPipeError):
        code = 0
    except BaseException:
        code = 1
    finally:
        # The harness's SIGTERM (its stop) must not cut the closing short: the fork server is
        # reaped here, so none outlives its worker and its CPU counts in the harness's children.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        with contextlib.suppress(BaseException):
            runner.close()
        os._exit(code)  # never fall back into the harness's code


def _lost(item: Item, pid: int, status: int) -> Result:
    """The result of an item whose worker died under it."""
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
        f"the worker process running it (pid {pid}) died: {how}",
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
            worker = _Worker(runner, items)
            workers.append(worker)
            worker.give(next(todo))
        busy = list(workers)
        while busy:
            for conn in wait([w.conn for w in busy]):
                worker = next(w for w in busy if w.conn is conn)
                try:
                    index, result = worker.conn.recv()
                except (EOFError, OSError):
                    # The worker died under its item: that item errs, a new worker goes on.
                    worker.conn.close()
                    workers.remove(worker)
                    busy.remove(worker)
                    lost = worker.index
                    yield lost, _lost(items[lost], worker.pid, _waitpid(worker.pid))
                    index = next(todo, STOP)
                    if index != STOP:
                        worker = _Worker(runner, items)
                        workers.append(worker)
                        busy.append(worker)
                        worker.give(index)
                    continue
                yield index, result
                index = next(todo, STOP)
                if index == STOP:
                    busy.remove(worker)
                worker.give(index)
    finally:
        with interrupt.deferred():
            _stop(workers)


def _stop(workers: list[_Worker]) -> None:
    """Ask every worker to stop (SIGTERM unwinds a running item), then reap them all."""
    for w in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(w.pid, signal.SIGTERM)
    for w in workers:
        _reap_within(w.pid, WORKER_EXIT_S)
        w.conn.close()


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
