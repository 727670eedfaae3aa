"""The run pipeline: items run (``-n`` workers, ``--repeat``), interrupts, repetitions merged,
the baseline judged, report.json and its formats written, the gate. ``mmapconf run``, the
pytest plugin (``conclude``), bench/ and the tests all go through here."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.engine import interrupt
from runner.report.baseline import Baseline
from runner.report.formats import write_formats
from runner.report.model import bounded, build_report, gate_exit_code, write_report
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
    judged against the baseline (the progress line shows a covered failure as known)."""
    start = time.monotonic()
    runs: dict[int, list[Result]] = {}  # by item index: two invalid items may share a name
    status = None
    previous = interrupt.install()
    try:
        try:

            def arrived(result: Result) -> None:
                on_result(judge(output.baseline, environment, result.to_json()))

            _collect(execute(runner, items * repeat, jobs), len(items), runs, arrived)
        except KeyboardInterrupt as e:
            status = 128 + getattr(e, "signum", signal.SIGINT)
        with interrupt.deferred():  # a second interrupt waits for the report to be written
            merged = [merge_repeats(runs[i]) if repeat > 1 else runs[i][0] for i in sorted(runs)]
            results = [judge(output.baseline, environment, r.to_json()) for r in merged]
            duration = time.monotonic() - start
            return conclude(environment, results, duration, output, interrupted_by=status)
    finally:
        with interrupt.deferred():
            runner.close()  # the native fork server of this process, if one was started
        interrupt.restore(previous)


def _collect(
    results: Generator[tuple[int, Result], None, None],
    count: int,
    runs: dict[int, list[Result]],
    on_result: Callable[[Result], None],
) -> None:
    try:
        for index, result in results:
            runs.setdefault(index % count, []).append(result)
            on_result(result)
    finally:
        with interrupt.deferred():
            results.close()  # stops -n workers too, wherever the interrupt landed


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
    if not output.full_traces:
        results = [bounded(r) for r in results]
    report = build_report(environment, results, duration_s, interrupted_by is not None)
    if output.baseline is not None:
        output.baseline.conclude(report)
    written = write_formats(report, output.report_dir, output.formats)
    path = write_report(report, output.report_dir)
    status = interrupted_by if interrupted_by is not None else gate_exit_code(report)
    return Finished(report, path, status, written)
