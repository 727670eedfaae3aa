"""Per case-run cost through the real path (``Runner.run_item``), beside raw fork + wait.

Raw fork + wait is measured in this very process, interleaved with the case-runs, so both see
the same heap size (the fork cost grows with it) and the same load from anything else running.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.engine.native.server import server_cpu_s
from runner.session.runner import Item, Runner


@dataclass
class Samples:
    """Wall and CPU seconds of each run (CPU: this process plus every child it reaped)."""

    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)


def _cpu() -> float:
    """This process, its reaped children, and the native fork server with the cases it reaped
    (a live server's CPU is not yet in RUSAGE_CHILDREN)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + server_cpu_s()


def fork_wait_once() -> None:
    """The floor every case-run pays: fork this process, the child exits at once, reap it."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def measure(
    runner: Runner,
    items: list[Item],
    runs: int,
    warmup: int = 5,
    floor: Callable[[], float] | None = None,
) -> list[Samples]:
    """``runs`` rounds; each round does one raw fork + wait, then each item once, in turn, the
    first one another item each round; then FLOOR, if given, once (it returns the seconds of its
    own run: a last row, wall only). The item right after the fork + wait pays for the fork's
    copy-on-write of this process's pages as it writes them again, a cost no run has (a run's
    harness forks no process between its cases): turning the order shares it among the items
    (a one-process case-run right after the fork + wait took 11.3 ms, after two other items
    8.4 ms: 200 rounds of each, in turn, load 5)."""
    base = Samples("raw fork + wait")
    per_item = [Samples(item.name) for item in items]
    floors = Samples("floor")
    for _ in range(warmup):
        fork_wait_once()
        for item in items:
            runner.run_item(item)
    for _ in range(runs):
        c0, t0 = _cpu(), time.perf_counter()
        fork_wait_once()
        base.wall.append(time.perf_counter() - t0)
        base.cpu.append(_cpu() - c0)
        pairs = list(zip(items, per_item, strict=True))
        turn = len(base.wall) % max(len(pairs), 1)
        for item, samples in pairs[turn:] + pairs[:turn]:
            c0, t0 = _cpu(), time.perf_counter()
            result = runner.run_item(item)
            samples.wall.append(time.perf_counter() - t0)
            samples.cpu.append(_cpu() - c0)
            samples.outcomes[result.outcome] = samples.outcomes.get(result.outcome, 0) + 1
        if floor is not None:
            floors.wall.append(floor())
    return [base, *per_item, *([floors] if floor is not None else [])]
