"""The command line: ``mmapconf run | validate | list | explain``, with the report commands
(``report | matrix | diff | baseline``), ``repro`` and ``kernels`` added by their own modules."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from runner.cli.kernels import add_kernels_cli, add_vm_run_options
from runner.cli.progress import Progress
from runner.cli.report import add_report_cli
from runner.cli.repro import add_repro_cli
from runner.engine import interrupt
from runner.errors import MmapconfError, UsageError
from runner.lang.catalogue import render_markdown
from runner.lang.loader import load_suite
from runner.lang.ops import BACKINGS
from runner.lang.selection import matches_keyword
from runner.report.baseline import load_baseline
from runner.report.formats import parse_formats
from runner.report.gate import baseline_lines, finish_run
from runner.session import environment
from runner.session import record as report
from runner.session.runner import Result, RunConfig, Runner, merge_repeats

DEFAULT_PATHS = ["cases"]
DEFAULT_REPORT_DIR = "reports/latest"


def parse_backings(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in BACKINGS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown backing {', '.join(bad) or '(none)'}; choose from {', '.join(BACKINGS)}"
        )
    return kinds


def _formats(text: str) -> list[str]:
    try:
        return parse_formats(text)
    except MmapconfError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="case files or folders (default: cases/)"
    )
    p.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only cases whose id, title or tags match (pytest-style: 'sigbus and not eof')",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmapconf",
        description="Conformance and behaviour tests for memory-mapped I/O on Linux.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run cases and write report.json",
        description="Run the cases, print progress and a summary, write the "
        "report. Exit 0 when nothing failed, 1 when something failed or errored, "
        "2 for unusable arguments.",
    )
    _add_selection(run)
    run.add_argument(
        "--backing",
        type=parse_backings,
        metavar="LIST",
        help=f"comma-separated backings to run on ({', '.join(BACKINGS)}); "
        "default: disk, tmpfs and memfd for file cases, anon for the rest",
    )
    run.add_argument(
        "--dir",
        action="append",
        default=[],
        metavar="DIR",
        help="folder on the filesystem under test for the disk backing (repeatable; "
        "default: the temp folder)",
    )
    run.add_argument(
        "-n", dest="jobs", type=int, default=1, metavar="N", help="run N cases at once (default 1)"
    )
    run.add_argument(
        "--report-dir",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where report.json goes (default {DEFAULT_REPORT_DIR})",
    )
    run.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each case N times; one whose outcome differs between runs is reported as "
        "flaky, with the outcomes seen",
    )
    run.add_argument(
        "--format",
        type=_formats,
        default=["json"],
        metavar="LIST",
        help="report formats beside report.json: json, junit, html, md, ktap, or all",
    )
    run.add_argument(
        "--baseline", type=Path, metavar="FILE", help="known deviations: count them as known"
    )
    run.add_argument(
        "--strict", action="store_true", help="with --baseline: a known deviation that passes fails"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="a line per result")
    add_vm_run_options(run)
    run.set_defaults(func=cmd_run)

    val = sub.add_parser(
        "validate",
        help="check case files; run nothing",
        description="Validate case files. Exit 0 when all are valid, 2 otherwise.",
    )
    val.add_argument("paths", nargs="*", metavar="PATH")
    val.set_defaults(func=cmd_validate)

    lst = sub.add_parser("list", help="list the cases", description="List the cases found.")
    _add_selection(lst)
    lst.add_argument(
        "--format",
        choices=("text", "md"),
        default="text",
        help="md: the catalogue page (cases/README.md)",
    )
    lst.set_defaults(func=cmd_list)

    exp = sub.add_parser(
        "explain",
        help="run one case and show every step",
        description="Run one case on each of its backings and show its steps, "
        "resolved, with what each observed.",
    )
    exp.add_argument("id", help="the case id (or ID[BACKING])")
    exp.add_argument("paths", nargs="*", metavar="PATH")
    exp.add_argument("--backing", type=parse_backings, metavar="LIST")
    exp.add_argument("--dir", action="append", default=[], metavar="DIR")
    exp.set_defaults(func=cmd_explain)
    add_report_cli(sub)
    add_repro_cli(sub)
    add_kernels_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except UsageError as e:
        print(f"mmapconf: {e}", file=sys.stderr)
        return 2
    except MmapconfError as e:
        print(f"mmapconf: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mmapconf: interrupted", file=sys.stderr)
        return 130


def _suite(args: argparse.Namespace):
    suite = load_suite(args.paths or DEFAULT_PATHS)
    keyword = getattr(args, "keyword", None)
    if keyword:
        suite.cases = [c for c in suite.cases if matches_keyword(keyword, c)]
    return suite


def cmd_validate(args: argparse.Namespace) -> int:
    suite = load_suite(args.paths or DEFAULT_PATHS)
    for problem in suite.problems:
        print(problem, file=sys.stderr)
    if suite.problems:
        print(
            f"{len(suite.problems)} problem(s) in {len(suite.invalid)} case(s); "
            f"{len(suite.cases)} valid",
            file=sys.stderr,
        )
        return 2
    print(f"{len(suite.cases)} cases valid")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    suite = _suite(args)
    if args.format == "md":
        print(render_markdown(suite.cases), end="")
        return 0 if not suite.invalid else 2
    for case in suite.cases:
        print(f"{case.id:40} {case.location:40} {case.title}")
    for inv in suite.invalid:
        print(f"{inv.id:40} {inv.file}:{inv.line:<30} INVALID: {inv.problems[0].message}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.kernel:
        return _run_under_kernels(args)
    if args.jobs < 1:
        raise UsageError("-n takes a number of jobs, 1 or more")
    if args.repeat < 1:
        raise UsageError("--repeat takes a number of runs, 1 or more")
    if args.baseline:
        load_baseline(args.baseline)  # a bad baseline is reported before the run, not after
    suite = _suite(args)
    runner = Runner(RunConfig(args.backing, args.dir))
    items = runner.plan(suite)
    if not items:
        raise UsageError("no cases selected")
    env = environment.capture(runner.backings, ["mmapconf", *sys.argv[1:]])
    progress = Progress(len(items) * args.repeat, verbose=args.verbose)
    runs: dict[int, list[Result]] = {}  # by item index: two invalid items may share a name
    start = time.monotonic()
    status = None
    # SIGTERM as well as SIGINT stops the run cleanly: case processes killed, scratch folders
    # removed, and the results so far written as a report marked interrupted.
    previous = interrupt.install()
    try:
        try:
            results = _execute(runner, items * args.repeat, args.jobs)
            try:
                for index, result in results:
                    runs.setdefault(index % len(items), []).append(result)
                    progress.update(result)
            finally:
                with interrupt.deferred():
                    results.close()  # stops -n workers too, wherever the interrupt landed
        except KeyboardInterrupt as e:
            status = 128 + getattr(e, "signum", signal.SIGINT)
        with interrupt.deferred():  # a second interrupt waits for the report to be written
            return _finish(args, env, items, runs, time.monotonic() - start, progress, status)
    finally:
        interrupt.restore(previous)


def _finish(args, env, items, runs, duration, progress, status) -> int:
    done = [runs[i] for i in sorted(runs)]  # in plan order
    merged = [merge_repeats(r) for r in done] if args.repeat > 1 else [r[0] for r in done]
    data = report.build(env, merged, duration, status is not None)
    data, _, gate = finish_run(data, Path(args.report_dir), args.format, args.baseline, args.strict)
    path = report.write(data, Path(args.report_dir))
    progress.summary(data, path)
    for line in baseline_lines(data):
        print(line)
    return status if status is not None else gate


def _run_under_kernels(args: argparse.Namespace) -> int:
    """``run --kernel K``: the same run inside each kernel, then one summary and a matrix."""
    from runner.vm.reference import write_matrix
    from runner.vm.run import VMUnavailable, run_under_kernels

    fs = [f for f in args.fs.split(",") if f]
    try:
        paths = run_under_kernels(
            args.kernel, args.argv, Path(args.report_dir), fs, args.accel, args.vm_timeout
        )
    except VMUnavailable as e:
        raise UsageError(f"cannot boot kernels here: {e}") from None
    except LookupError as e:
        raise UsageError(str(e)) from None
    if len(paths) > 1:
        write_matrix(paths, Path(args.report_dir))
    worst = 0
    for path in paths:
        summary = report.read(path)["summary"]
        counts = ", ".join(
            f"{summary.get(k, 0)} {k}" for k in ("passed", "failed", "skipped", "error", "timeout")
        )
        print(f"{path.parent.name}: {counts}")
        worst = max(worst, 1 if summary.get("failed") or summary.get("error") else 0)
    missing = len(args.kernel) * len(fs) - len(paths)
    if missing:
        print(f"{missing} kernel x filesystem run(s) came back without a report", file=sys.stderr)
    return 1 if missing else worst


def _execute(runner: Runner, items, jobs: int):
    """(index, result) pairs, in completion order."""
    if jobs == 1:
        for index, item in enumerate(items):
            yield index, runner.run_item(item)
        return
    from runner.session.parallel import run_parallel_indexed

    yield from run_parallel_indexed(runner, items, jobs)


def cmd_explain(args: argparse.Namespace) -> int:
    case_id, _, backing = args.id.partition("[")
    suite = load_suite(args.paths or DEFAULT_PATHS)
    cases = [c for c in suite.cases if c.id == case_id]
    if not cases:
        raise UsageError(f"no case with id {case_id!r}")
    suite.cases, suite.invalid = cases, []
    runner = Runner(RunConfig(args.backing, args.dir))
    worst = 0
    for item in runner.plan(suite):
        if backing and item.backing and item.backing.name != backing.rstrip("]"):
            continue
        result = runner.run_item(item)
        print(f"{result.name}: {result.outcome}" + (f" ({result.reason})" if result.reason else ""))
        for s in result.steps:
            mark = {True: "ok", False: "FAIL", None: "--"}[s["ok"]]
            args_text = ", ".join(f"{k}={v}" for k, v in s["args"].items())
            print(
                f"  [{mark:4}] {s['process']} step {s['step']} (line {s['line']}) "
                f"{s['op']}({args_text})"
            )
            print(f"          expected {s['expected']}; observed {s['observed']}")
        worst = max(worst, 0 if result.outcome in ("passed", "skipped") else 1)
    return worst
