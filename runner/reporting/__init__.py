"""The report side of mmapconf: formats rendered from report.json, the cross-environment
matrix, run-to-run diffs, baselines of known deviations, and their command line.

Everything here reads report.json (or the dict the engine would write there) and nothing
else, so a report copied off another machine renders, diffs and gates the same way.
"""

from __future__ import annotations

from runner.reporting.baseline import apply_baseline, gate_exit_code, make_baseline
from runner.reporting.cli import add_report_cli
from runner.reporting.formats import ALL_FORMATS, parse_formats, write_formats
from runner.reporting.gate import baseline_lines, finish_run
from runner.reporting.model import ReportError, load_report

__all__ = [
    "ALL_FORMATS",
    "ReportError",
    "add_report_cli",
    "apply_baseline",
    "baseline_lines",
    "finish_run",
    "gate_exit_code",
    "load_report",
    "make_baseline",
    "parse_formats",
    "write_formats",
]
