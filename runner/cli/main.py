"""The command line: ``mmapconf run | validate | list | explain``, with the report commands
(``report | matrix | diff | baseline``) and ``kernels`` added by their own packages."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from runner.cli.kernels import add_kernels_cli, add_vm_run_options, guest_filesystems
from runner.cli.progress import Progress
from runner.cli.report import add_report_cli
from runner.engine import interrupt, mounts
from runner.errors import MmapconfError, UsageError
from runner.lang.catalogue import render_markdown
from runner.lang.loader import load_suite
from runner.lang.ops import BACKINGS
from runner.lang.selection import matches_keyword
from runner.lang.shipped import default_paths, schema_path, shipped_baseline
from runner.report.baseline import KnownDeviations
from runner.report.formats import parse_formats
from runner.report.gate import baseline_lines, finish_run
from runner.session import environment
from runner.session import record as report
from runner.session.filesystems import host_disks, parse_fs_list
from runner.session.runner import Result, RunConfig, Runner, merge_repeats

DEFAULT_REPORT_DIR = "reports/latest"


def version() -> str:
    try:
        return metadata.version("mmapconf")
    except metadata.PackageNotFoundError:
        return "(not installed)"


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


PATHS_HELP = (
    "case files or folders (default: ./cases, or the catalogue shipped with mmapconf when there "
    "is none); in a folder, the YAML files that hold cases"
)


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)
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
    parser.add_argument("--version", action="version", version=f"mmapconf {version()}")
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
        "--baseline",
        type=Path,
        metavar="FILE",
        help="known deviations: count them as known (default, when the shipped catalogue runs: "
        "its shipped baselines/linux.yaml)",
    )
    run.add_argument(
        "--no-baseline", action="store_true", help="no baseline, not even the shipped one"
    )
    run.add_argument(
        "--strict", action="store_true", help="with --baseline: a known deviation that passes fails"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="a line per result")
    _add_executor(run)
    add_vm_run_options(run)
    run.set_defaults(func=cmd_run)

    val = sub.add_parser(
        "validate",
        help="check case files; run nothing",
        description="Validate case files. Exit 0 when all are valid, 2 otherwise.",
    )
    val.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)
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
    exp.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)
    exp.add_argument("--backing", type=parse_backings, metavar="LIST")
    exp.add_argument("--dir", action="append", default=[], metavar="DIR")
    _add_executor(exp)
    exp.set_defaults(func=cmd_explain)
    sch = sub.add_parser(
        "schema",
        help="print the case files' JSON Schema (for editors)",
        description="Print the JSON Schema of case files, or with --path where it is.",
    )
    sch.add_argument("--path", action="store_true", help="print the file's path, not its content")
    sch.set_defaults(func=cmd_schema)
    add_report_cli(sub)
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


def _paths(args: argparse.Namespace) -> list[str]:
    """The paths given, or the default ones; ``args.shipped`` is the shipped catalogue's folder
    when that is what runs."""
    args.shipped = None
    if args.paths:
        return args.paths
    paths, args.shipped = default_paths()
    if args.shipped is not None:
        print(f"mmapconf: no ./cases here: the shipped catalogue, {args.shipped}", file=sys.stderr)
    return paths


def _suite(args: argparse.Namespace):
    suite = load_suite(_paths(args))
    keyword = getattr(args, "keyword", None)
    if keyword:
        suite.cases = [c for c in suite.cases if matches_keyword(keyword, c)]
    return suite


def cmd_validate(args: argparse.Namespace) -> int:
    suite = load_suite(_paths(args))
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


def cmd_schema(args: argparse.Namespace) -> int:
    path = schema_path()
    if path is None:
        raise MmapconfError("this installation has no schema.json (a build without the catalogue)")
    if args.path:
        print(path)
    else:
        print(path.read_text(), end="")
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


def _add_executor(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("python", "native"),
        default=os.environ.get("MMAPCONF_EXECUTOR", "python"),
        help="what runs in the case processes: the Python step executor, or compiled programs "
        "in the native fork server (built with the C compiler on first use; default "
        "$MMAPCONF_EXECUTOR or python)",
    )


def cmd_run(args: argparse.Namespace) -> int:
    if args.kernel:
        return _run_under_kernels(args)
    if args.jobs < 1:
        raise UsageError("-n takes a number of jobs, 1 or more")
    if args.repeat < 1:
        raise UsageError("--repeat takes a number of runs, 1 or more")
    if args.modules or args.machine != "microvm":
        raise UsageError("--modules and --machine go with --kernel")
    if args.fs and args.dir:
        raise UsageError("--fs and --dir both say where the disk backing is: give one of them")
    fs = parse_fs_list(args.fs) if args.fs else None
    suite = _suite(args)
    if args.no_baseline:
        args.baseline = None
    elif args.baseline is None and args.shipped is not None:
        args.baseline = shipped_baseline()  # the shipped catalogue's own known deviations
    for stale in mounts.clean_stale():  # what a killed run left: its mounts, loop devices
        print(f"undid what an earlier run left in {stale}", file=sys.stderr)
    # SIGTERM as well as SIGINT stops the run cleanly: case processes killed, scratch folders
    # removed, --fs mounts undone, and the results so far written as a report marked interrupted.
    previous = interrupt.install()
    try:
        with contextlib.ExitStack() as stack:
            disks = stack.enter_context(host_disks(fs)) if fs else None
            return _run(
                args,
                suite,
                Runner(RunConfig(args.backing, args.dir, disks, executor=args.executor)),
            )
    except KeyboardInterrupt as e:  # while the --fs mounts were made or undone
        return 128 + getattr(e, "signum", signal.SIGINT)
    finally:
        with interrupt.deferred():
            mounts.finish_run()
        interrupt.restore(previous)


def _run(args: argparse.Namespace, suite, runner: Runner) -> int:
    items = runner.plan(suite)
    if not items:
        raise UsageError("no cases selected")
    env = environment.capture(runner.backings, ["mmapconf", *sys.argv[1:]])
    # a bad baseline is reported before the run, not after
    known = KnownDeviations(args.baseline, env) if args.baseline else None
    progress = Progress(len(items) * args.repeat, verbose=args.verbose, known=known)
    runs: dict[int, list[Result]] = {}  # by item index: two invalid items may share a name
    start = time.monotonic()
    status = None
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


def _finish(args, env, items, runs, duration, progress, status) -> int:
    done = [runs[i] for i in sorted(runs)]  # in plan order
    merged = [merge_repeats(r) for r in done] if args.repeat > 1 else [r[0] for r in done]
    data = report.build(env, merged, duration, status is not None)
    data, _, gate = finish_run(data, Path(args.report_dir), args.format, args.baseline, args.strict)
    path = report.write(data, Path(args.report_dir))
    progress.summary(data, path)
    if args.shipped is not None:
        print(f"cases: the catalogue shipped with mmapconf {version()}, {args.shipped}")
    for line in baseline_lines(data):
        print(line)
    return status if status is not None else gate


def _run_under_kernels(args: argparse.Namespace) -> int:
    """``run --kernel K``: the same run inside each kernel, then one summary and a matrix."""
    from runner.vm.reference import write_matrix
    from runner.vm.run import VMUnavailable, run_under_kernels

    fs = guest_filesystems(args.fs)
    try:
        paths = run_under_kernels(
            args.kernel,
            args.argv,
            Path(args.report_dir),
            fs,
            args.accel,
            args.vm_timeout,
            args.modules,
            args.machine,
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
    suite = load_suite(_paths(args))
    cases = [c for c in suite.cases if c.id == case_id]
    if not cases:
        raise UsageError(f"no case with id {case_id!r}")
    suite.cases, suite.invalid = cases, []
    runner = Runner(RunConfig(args.backing, args.dir, executor=args.executor))
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
