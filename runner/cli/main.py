"""The command line: ``mmapconf run | validate | list | explain``, with the report commands
(``report | matrix | diff | baseline``), ``repro`` and ``kernels`` added by their own modules."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from runner.cli.kernels import add_kernels_cli, run_kernels
from runner.cli.progress import Progress
from runner.cli.report import add_report_cli
from runner.cli.repro import add_repro_cli
from runner.engine import interrupt, mounts
from runner.engine.backings import UNCAPPED
from runner.errors import MmapconfError, UsageError, exit_status
from runner.lang.catalogue import render_markdown
from runner.lang.loader import Suite, load_suite
from runner.lang.model import Case
from runner.lang.names import flag_text
from runner.lang.ops import OPS
from runner.lang.selection import matches_keyword
from runner.lang.shipped import default_paths, schema_path, shipped_baseline
from runner.report import model
from runner.report.baseline import Baseline, baseline_lines
from runner.report.trace import trace_lines
from runner.session import environment
from runner.session.filesystems import host_disks, parse_fs_list
from runner.session.options import EXPLAIN, PATHS_HELP, RUN, add_parser_options, add_selection
from runner.session.pipeline import Output, run_session
from runner.session.runner import RunConfig, Runner


def version() -> str:
    # imported here, not at start-up: importlib.metadata costs every command about 20 ms of CPU
    from importlib import metadata

    try:
        return metadata.version("mmapconf")
    except metadata.PackageNotFoundError:
        return "(not installed)"


class _Version(argparse.Action):
    """``--version``, whose text is looked up only when it is asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object):
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"mmapconf {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmapconf",
        description="Conformance and behaviour tests for memory-mapped I/O on Linux.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run cases and write report.json",
        description="Run the cases (with --kernel: inside each kernel, under qemu), print "
        "progress and a summary, write the report. Exit 0 when the gate passes, 1 when a "
        "result failed, errored, timed out or was flaky (or the baseline has a problem), 2 "
        "for unusable arguments or a host that cannot boot kernels.",
    )
    add_selection(run)
    add_parser_options(run.add_argument, RUN)
    run.set_defaults(func=cmd_run)

    val = sub.add_parser(
        "validate",
        help="check case files; run nothing",
        description="Validate case files. Exit 0 when all are valid, 2 otherwise.",
    )
    val.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)
    val.set_defaults(func=cmd_validate)

    lst = sub.add_parser("list", help="list the cases", description="List the cases found.")
    add_selection(lst)
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
    add_parser_options(exp.add_argument, EXPLAIN)
    exp.set_defaults(func=cmd_explain)
    sch = sub.add_parser(
        "schema",
        help="print the case files' JSON Schema (for editors)",
        description="Print the JSON Schema of case files, or with --path where it is.",
    )
    sch.add_argument("--path", action="store_true", help="print the file's path, not its content")
    sch.set_defaults(func=cmd_schema)
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
        return int(args.func(args))
    except (MmapconfError, KeyboardInterrupt) as e:
        # the one place where an error becomes an exit status (runner.errors.exit_status)
        status, message = exit_status(e)
        for line in message.splitlines() or [message]:
            print(f"mmapconf {args.command}: {line}", file=sys.stderr)
        return status


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


def _suite(args: argparse.Namespace) -> Suite:
    suite = load_suite(_paths(args))
    suite.cases = [c for c in suite.cases if _wanted(args, c)]
    return suite


def _wanted(args: argparse.Namespace, case: Case) -> bool:
    """Whether -k selects CASE (every case without -k)."""
    keyword = getattr(args, "keyword", None)
    return not keyword or matches_keyword(keyword, case)


def cmd_validate(args: argparse.Namespace) -> int:
    suite = load_suite(_paths(args))
    for warning in suite.warnings:
        print(f"{warning} (warning)", file=sys.stderr)
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


def cmd_run(args: argparse.Namespace) -> int:
    if args.kernel:
        return run_kernels(args, _suite(args))
    if args.modules or args.machine is not None:
        raise UsageError("--modules and --machine go with --kernel")
    if args.cut_model or args.disk_cache or args.judge_boots:
        raise UsageError(
            "--cut-model, --disk-cache and --judge-boots go with --kernel (power cuts run in "
            "guests)"
        )
    if args.fs and args.dir:
        raise UsageError("--fs and --dir both say where the disk backing is: give one of them")
    fs = parse_fs_list(args.fs) if args.fs else None
    paths = _paths(args)
    if args.no_baseline:
        args.baseline = None
    elif args.baseline is None and args.shipped is not None:
        args.baseline = shipped_baseline()  # the shipped catalogue's own known deviations
    for stale in mounts.clean_stale():  # what a killed run left: its mounts, loop devices
        print(f"undid what an earlier run left in {stale}", file=sys.stderr)
    mounts.run_dir()  # made before -n forks its workers, so theirs is this run's folder too
    # SIGTERM as well as SIGINT stops the run cleanly: case processes killed, scratch folders
    # removed, --fs mounts undone, and the results so far written as a report marked interrupted.
    previous = interrupt.install()
    try:
        with contextlib.ExitStack() as stack:
            disks = stack.enter_context(host_disks(fs)) if fs else None
            return _run(args, paths, Runner(RunConfig(args.backing, args.dir, disks)))
    except KeyboardInterrupt as e:  # while the --fs mounts were made or undone
        return 128 + getattr(e, "signum", signal.SIGINT)
    finally:
        with interrupt.deferred():
            mounts.finish_run()
        interrupt.restore(previous)


def _run(args: argparse.Namespace, paths: list[str], runner: Runner) -> int:
    items = runner.plan_files(paths, lambda case: _wanted(args, case))
    if not items:
        raise UsageError("no cases selected")
    # a bad baseline is reported before the run, not after
    baseline = Baseline.load(args.baseline, args.strict) if args.baseline else None
    env = environment.capture(runner.backings, ["mmapconf", *args.argv])
    for b in runner.backings:  # never silently: the report's environment says it too
        if b.kind == "disk" and b.cap.startswith(UNCAPPED):
            why = b.cap.removeprefix(f"{UNCAPPED}: ")
            print(f"{b.name} backing ({b.dir}) is not capped: {why}", file=sys.stderr)
    progress = Progress(len(items) * args.repeat, verbose=args.verbose)
    output = Output(Path(args.report_dir), args.format, baseline, args.full_traces)
    done = run_session(
        runner, items, env, output, jobs=args.jobs, repeat=args.repeat, on_result=progress.update
    )
    progress.summary(done.report, done.path)
    if args.shipped is not None:
        print(f"cases: the catalogue shipped with mmapconf {version()}, {args.shipped}")
    for line in baseline_lines(done.report):
        print(line)
    return done.status


def cmd_explain(args: argparse.Namespace) -> int:
    case_id, _, backing = args.id.partition("[")
    suite = load_suite(_paths(args))
    cases = [c for c in suite.cases if c.id == case_id]
    if not cases:
        raise UsageError(f"no case with id {case_id!r}")
    suite.cases, suite.invalid = cases, []
    runner = Runner(RunConfig(args.backing, args.dir))
    worst = 0
    for item in runner.plan(suite):
        if backing and item.backing and item.backing.name != backing.rstrip("]"):
            continue
        result = runner.run_item(item).to_json()
        reason = f" ({result['reason']})" if result["reason"] else ""
        print(f"{result['name']}: {result['outcome']}{reason}")
        assert item.case is not None
        events = {index: name for name, index in item.case.events.items()}
        steps = [{**s, "args": _named_args(s, events)} for s in result["steps"]]
        print("\n".join(trace_lines(steps, whole=True)))
        worst = max(worst, 1 if model.failing(result) else 0)
    return worst


def _named_args(step: dict, events: dict[int, str]) -> dict:
    """A step's arguments as the case would write them: flag and event names, modes in octal."""
    spec = OPS.get(step["op"])
    return {
        k: _arg_text(spec.args.get(k, "") if spec else "", k, v, events)
        for k, v in step["args"].items()
    }


def _arg_text(kind: str, key: str, value: object, events: dict[int, str]) -> object:
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    if kind.startswith("flags:"):
        return flag_text(kind[len("flags:") :], value)
    if kind == "event":
        return events.get(value, value)
    return oct(value) if key == "mode" else value
