"""The run pipeline: items run (``-n`` workers, ``--repeat``), interrupts, repetitions merged,
the baseline judged, report.json and its formats written, the gate. ``mmapconf run``, the
pytest plugin (``conclude``), bench/ and the tests all go through here."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.engine import interrupt
from runner.report.baseline import Baseline
from runner.report.formats import parse_formats, write_formats
from runner.report.model import bounded, build_report, gate_exit_code, write_report
from runner.report.spool import Place, Spool, head
from runner.session.parallel import run_parallel_indexed
from runner.session.runner import Item, Result, Runner, merge_repeats


@dataclass
class Output:
    """Where a run's report goes and how it is judged."""

    report_dir: Path
    formats: Sequence[str] = ("json",)
    baseline: Baseline | None = None
    full_traces: bool = False  # else a passed result keeps the ends of its trace (model.bounded)


@dataclass
class Finished:
    report: dict[str, Any]
    path: Path
    status: int  # the gate's exit status, or 128 + the signal that interrupted the run
    written: list[Path] = field(default_factory=list)


def execute(
    runner: Runner, items: list[Item], jobs: int = 1
) -> Generator[tuple[int, Result], None, None]:
    """(index, result) pairs, in completion order: in this process or on ``jobs`` workers."""
    if jobs == 1:
        for index, item in enumerate(items):
            yield index, runner.run_item(item)
        return
    yield from run_parallel_indexed(runner, items, jobs)


def run_session(
    runner: Runner,
    items: list[Item],
    environment: dict[str, Any],
    output: Output,
    *,
    jobs: int = 1,
    repeat: int = 1,
    on_result: Callable[[dict[str, Any]], None] = lambda result: None,
) -> Finished:
    """Run ``items`` (each ``repeat`` times) and write the report; SIGINT and SIGTERM stop the
    run cleanly (case processes killed, scratch folders removed) and the results so far are
    written as a report marked interrupted. ``on_result`` sees each result as it arrives,
    judged against the baseline (the progress line shows a covered failure as known). Each
    result goes to disk as it arrives (runner.report.spool): only its head stays in memory."""
    start = time.monotonic()
    status = None
    previous = interrupt.install()
    try:
        with contextlib.closing(_Collected(output, environment, repeat)) as got:
            try:

                def arrived(index: int, result: Result) -> None:
                    on_result(got.add(index % len(items), result))

                _collect(execute(runner, items * repeat, jobs), arrived)
            except KeyboardInterrupt as e:
                status = 128 + getattr(e, "signum", signal.SIGINT)
            with interrupt.deferred():  # a second interrupt waits for the report to be written
                got.merge_repeats()
                duration = time.monotonic() - start
                return _conclude(environment, got, duration, output, interrupted_by=status)
    finally:
        with interrupt.deferred():
            runner.close()  # the native fork server of this process, if one was started
        interrupt.restore(previous)


def _collect(
    results: Generator[tuple[int, Result], None, None],
    on_result: Callable[[int, Result], None],
) -> None:
    try:
        for index, result in results:
            on_result(index, result)
    finally:
        with interrupt.deferred():
            results.close()  # stops -n workers too, wherever the interrupt landed


class _Collected:
    """The results of a run by item index, in the spool: each judged and cut to its bounded
    trace as it arrives (with ``repeat``, each repetition as it came, merged at the end)."""

    def __init__(self, output: Output, environment: dict[str, Any], repeat: int):
        self.output, self.environment, self.repeat = output, environment, repeat
        self.spool = Spool()
        self.repetitions: dict[int, list[Place]] = {}
        self.places: dict[int, Place] = {}  # each item's result as report.json will hold it
        self.heads: dict[int, dict[str, Any]] = {}

    def add(self, index: int, result: Result) -> dict[str, Any]:
        """Keep one arrived result; returns it judged (for the progress line)."""
        judged = judge(self.output.baseline, self.environment, result.to_json())
        if self.repeat > 1:
            self.repetitions.setdefault(index, []).append(self.spool.put(result.to_json()))
        else:
            self.keep(index, judged)
        return judged

    def merge_repeats(self) -> None:
        """Each item's repetitions as one result (runner.session.runner.merge_repeats)."""
        for index, places in sorted(self.repetitions.items()):
            merged = merge_repeats([Result.from_json(self.spool.get(p)) for p in places])
            self.keep(index, judge(self.output.baseline, self.environment, merged.to_json()))
        self.repetitions.clear()

    def keep(self, index: int, judged: dict[str, Any]) -> None:
        kept = judged if self.output.full_traces else bounded(judged)
        self.places[index] = self.spool.put(kept)
        self.heads[index] = head(kept)

    def in_order(self) -> list[int]:
        return sorted(self.heads)

    def close(self) -> None:
        self.spool.close()


def judge(
    baseline: Baseline | None, environment: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    """Apply ``baseline`` (if any) to one result that ran in ``environment``; returns it."""
    if baseline is not None:
        baseline.judge({"environment": environment}, result)
    return result


def conclude(
    environment: dict[str, Any],
    results: list[dict[str, Any]],
    duration_s: float,
    output: Output,
    interrupted_by: int | None = None,
) -> Finished:
    """The report of judged ``results`` (plan order), written with its formats, and gated."""
    with contextlib.closing(_Collected(output, environment, 1)) as got:
        for index, result in enumerate(results):
            got.keep(index, result)
        return _conclude(environment, got, duration_s, output, interrupted_by)


def _conclude(
    environment: dict[str, Any],
    got: _Collected,
    duration_s: float,
    output: Output,
    interrupted_by: int | None,
) -> Finished:
    """Sum up, judge against the baseline and gate the results' heads; write report.json (and
    its formats) from the spool. ``Finished.report`` is the report with the results' heads."""
    order = got.in_order()
    heads = [got.heads[i] for i in order]
    report = build_report(environment, heads, duration_s, interrupted_by is not None)
    if output.baseline is not None:
        output.baseline.conclude(report)
    places = [got.places[i] for i in order]
    written = []
    if any(name != "json" for f in output.formats for name in parse_formats(f)):
        # the other formats render from the whole report, read back: only when one is asked for
        whole = {**report, "results": [got.spool.get(p) for p in places]}
        written = write_formats(whole, output.report_dir, output.formats)
    path = write_report(report, output.report_dir, (got.spool.get(p) for p in places))
    status = interrupted_by if interrupted_by is not None else gate_exit_code(report)
    return Finished(report, path, status, written)
