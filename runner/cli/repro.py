"""``mmapconf repro ID[BACKING] [-o FILE]``: a case as one standalone C file (runner.repro)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.engine import libc
from runner.engine.backings import Backing, available_backings
from runner.errors import UsageError
from runner.lang.conditions import Facts
from runner.lang.loader import load_suite
from runner.lang.model import Case
from runner.lang.ops import FILE_BACKINGS
from runner.repro.kinds import Unreproducible
from runner.repro.program import Target, generate, skip_reason


def add_repro_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "repro",
        help="write one case as a standalone C reproducer",
        description="Write ID[BACKING] as one C file that needs nothing but "
        "`cc -O2 -static FILE`: its steps as plain system calls, each citing its YAML line, "
        "judged in C; it prints each observation, FAIL lines or PASS, and exits 0 or 1. "
        "Exit 2 (one line on stderr) when the case is skipped here or has no faithful C form.",
    )
    p.add_argument(
        "id", metavar="ID[BACKING]", help="the case id, e.g. article-sigbus-past-eof[tmpfs]"
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="case files or folders (default: cases/)"
    )
    p.add_argument(
        "-o", dest="output", type=Path, metavar="FILE", help="write here (default: stdout)"
    )
    p.add_argument(
        "--dir",
        metavar="DIR",
        help="the disk backing's folder baked into the file (default: the temp folder; "
        "the program's first argument overrides it)",
    )
    p.set_defaults(func=cmd_repro)


def cmd_repro(args: argparse.Namespace) -> int:
    case_id, _, rest = args.id.partition("[")
    case = _find(case_id, args.paths or ["cases"])
    backing = _backing(case, rest.rstrip("]"), args.dir)
    facts = Facts(syscall_probe=libc.syscall_exists).for_backing(backing.kind, backing.fs)
    target = Target(backing.kind, backing.dir, facts)
    name = f"{case.id}[{backing.name}]"
    why = backing.unavailable or skip_reason(case, target)
    if why:
        raise UsageError(f"{name} is skipped here ({why}): nothing to reproduce")
    try:
        source = generate(case, target)
    except Unreproducible as e:
        raise UsageError(f"{name} has no faithful C form: {e}") from None
    if args.output:
        args.output.write_text(source)
        print(
            f"wrote {args.output}: cc -O2 -static {args.output} -o repro && ./repro",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(source)
    return 0


def _find(case_id: str, paths: list[str]) -> Case:
    suite = load_suite(paths)
    for case in suite.cases:
        if case.id == case_id:
            return case
    invalid = [inv for inv in suite.invalid if inv.id == case_id]
    if invalid:
        raise UsageError(f"{case_id} is not a valid case: {invalid[0].problems[0]}")
    raise UsageError(f"no case with id {case_id!r}")


def _backing(case: Case, wanted: str, folder: str | None) -> Backing:
    """The backing asked for, or the case's first; one the case does not run on is refused."""
    kinds = ["anon"] if not case.uses_file else case.backings or list(FILE_BACKINGS)
    kind = wanted or kinds[0]
    if kind not in kinds:
        raise UsageError(f"{case.id} runs on {', '.join(kinds)}, not on {kind}")
    return available_backings([folder] if folder else [])[kind][0]
