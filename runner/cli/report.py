"""The report subcommands: ``report``, ``matrix``, ``diff``, ``baseline``.

``add_report_cli`` adds them to the main ``mmapconf`` parser; each sets ``func`` to a handler
that returns the exit status. A user's mistake (missing file, bad JSON, bad baseline, unknown
format, an output folder that cannot be written) raises a ReportError, which ``mmapconf``
turns into one line on stderr and status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from runner.report import atomic
from runner.report import baseline as bl
from runner.report import diff as df
from runner.report import matrix as mx
from runner.report.formats import parse_formats, render_one, write_formats
from runner.report.model import gate_exit_code, load_report

STDOUT = Path("-")
OUTPUT_HELP = "write here ('-': stdout, the default)"


def _emit(text: str, output: Path | None) -> None:
    if output is None or output == STDOUT:
        sys.stdout.write(text)
    else:
        atomic.write_text(output, text)


def cmd_report(args: argparse.Namespace) -> int:
    report = load_report(args.report)
    formats = parse_formats(args.format)
    if args.baseline is not None:
        report = bl.apply_baseline(report, args.baseline, args.strict)
    if args.output_dir == STDOUT:
        _emit(render_one(report, formats), None)
    else:
        out_dir = args.output_dir if args.output_dir is not None else args.report.parent
        for path in write_formats(report, out_dir, formats):
            print(path)
    if not args.gate:
        return 0
    for line in bl.baseline_lines(report):
        print(line, file=sys.stderr)
    return gate_exit_code(report)


def cmd_matrix(args: argparse.Namespace) -> int:
    reports = [(str(p), load_report(p)) for p in args.reports]
    m = mx.build_matrix(reports)
    render = {
        "text": mx.render_matrix_text,
        "md": mx.render_matrix_markdown,
        "html": mx.render_matrix_html,
    }[args.format]
    _emit(render(m), args.output)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    base, new = load_report(args.base), load_report(args.new)
    d = df.diff_reports(base, new, by=args.by, names=(str(args.base), str(args.new)))
    render = df.render_diff_json if args.format == "json" else df.render_diff_text
    _emit(render(d), args.output)
    return df.diff_exit_code(d)


def cmd_baseline(args: argparse.Namespace) -> int:
    report = load_report(args.report)
    text = bl.make_baseline(report)
    if args.output not in (None, STDOUT):
        _emit(text, args.output)
        n = text.count("\n  - name:")
        print(
            f"{args.output}: {n} entr{'y' if n == 1 else 'ies'}; fill in each evidence",
            file=sys.stderr,
        )
    else:
        _emit(text, None)
    return 0


def add_report_cli(subparsers: Any) -> None:
    """Add ``report``, ``matrix``, ``diff`` and ``baseline`` to ``subparsers`` (the object
    ``ArgumentParser.add_subparsers()`` returns); each sets ``func(args) -> int``."""
    p = subparsers.add_parser(
        "report",
        help="render report.json as JUnit, HTML, Markdown, KTAP",
        description="Render a run's report.json into other formats, next to it by default.",
    )
    p.add_argument("report", type=Path, help="a report.json")
    p.add_argument(
        "--format",
        default="junit,html,md,ktap",
        help="comma-separated: junit, html, md, ktap (json is the input), or all",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=None,
        help="folder to write into (default: the report's folder); '-': stdout, for one format",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="YAML of known deviations to apply before rendering",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="with --baseline: an unexpected pass is a gate problem",
    )
    p.add_argument(
        "--gate",
        action="store_true",
        help="exit 1 when the (baselined) run fails its gate, as `run` would",
    )
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser(
        "matrix",
        help="one table of outcomes across kernels, backings and filesystems",
        description="Cases as rows, environments (kernel release x backing x filesystem) as "
        "columns; rows where environments disagree first.",
    )
    p.add_argument("reports", type=Path, nargs="+", metavar="REPORT.json")
    p.add_argument("--format", choices=("text", "md", "html"), default="text")
    p.add_argument("-o", "--output", type=Path, default=None, help=OUTPUT_HELP)
    p.set_defaults(func=cmd_matrix)

    p = subparsers.add_parser(
        "diff",
        help="regressions, fixes, new and vanished results between two runs",
        description="Compare two runs; exit 1 when a result that passed in BASE fails, errors "
        "or times out in NEW.",
    )
    p.add_argument("base", type=Path, metavar="BASE.json")
    p.add_argument("new", type=Path, metavar="NEW.json")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--by",
        choices=("name", "id"),
        default="name",
        help="match results by ID[BACKING] (default) or by case id across backings",
    )
    p.add_argument("-o", "--output", type=Path, default=None, help=OUTPUT_HELP)
    p.set_defaults(func=cmd_diff)

    p = subparsers.add_parser(
        "baseline",
        help="write a baseline of known deviations from a run's failures",
        description="Write a baseline YAML covering every failed or timed-out result of a run, "
        "with its reason and an evidence placeholder to fill in.",
    )
    p.add_argument("report", type=Path, metavar="REPORT.json")
    p.add_argument("-o", "--output", type=Path, default=None, help=OUTPUT_HELP)
    p.set_defaults(func=cmd_baseline)
