"""One call for the end of ``mmapconf run --format ... --baseline ... --strict``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.report.baseline import apply_baseline, gate_exit_code
from runner.report.formats import write_formats


def finish_run(
    report: dict[str, Any],
    report_dir: Path,
    formats: Sequence[str],
    baseline: Path | None = None,
    strict: bool = False,
) -> tuple[dict[str, Any], list[Path], int]:
    """Apply ``baseline`` (if given), write ``formats`` (json excepted) into ``report_dir``, and
    return ``(report, files written, exit status)``.

    The returned report carries the baselined outcomes (``known``, with ``original_outcome``):
    write it as report.json so that every format agrees with it. The exit status is 0 when the
    gate passes, 1 when a result failed, errored or timed out, or the baseline has a problem
    (an expired entry; an unexpected pass under ``strict``). An invalid baseline raises
    BaselineError (a ReportError: exit 2), before anything is written.
    """
    if baseline is not None:
        report = apply_baseline(report, baseline, strict)
    written = write_formats(report, report_dir, formats)
    return report, written, gate_exit_code(report)


def baseline_lines(report: dict[str, Any]) -> list[str]:
    """Terminal lines about the baseline, for the end of a run (empty without one)."""
    base = report.get("baseline")
    if not isinstance(base, dict):
        return []
    lines = [
        f"baseline {base.get('file')}: {len(base.get('known') or [])} known,"
        f" {len(base.get('unexpected_passes') or [])} unexpected pass(es),"
        f" {len(base.get('expired') or [])} expired"
    ]
    if not base.get("strict"):
        lines += [f"  unexpected pass: {n}" for n in base.get("unexpected_passes") or []]
    lines += [f"  gate: {p}" for p in base.get("problems") or []]
    lines += [f"  warning: {w}" for w in base.get("warnings") or []]
    return lines
