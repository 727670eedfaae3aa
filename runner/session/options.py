"""The options of a run, specified once: ``mmapconf run`` (and ``run --kernel``), ``mmapconf
explain`` and the pytest plugin add them from here (Tavern's ``add_parser_options`` pattern:
one list of specs, handed to argparse's ``add_argument`` or to pytest's ``addoption``).

A new option of a run goes here, and every front end that takes it has it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import MmapconfError
from runner.lang.ops import BACKINGS
from runner.report.formats import parse_formats

DEFAULT_REPORT_DIR = "reports/latest"
RUN, EXPLAIN, PYTEST = "run", "explain", "pytest"


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


def _positive(what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"takes a number of {what}, 1 or more: {text!r}")
        return value

    return parse


@dataclass(frozen=True)
class OptionSpec:
    flags: tuple[str, ...]
    commands: frozenset[str]
    kwargs: dict[str, Any] = field(default_factory=dict)
    # the host's own option under ``run --kernel``: not passed on to the guest's run
    host_only: bool = False

    @property
    def name(self) -> str:
        """The long name without dashes (``report-dir``)."""
        return next((f for f in self.flags if f.startswith("--")), self.flags[0]).lstrip("-")


def _spec(*flags: str, on: tuple[str, ...], host_only: bool = False, **kwargs: Any) -> OptionSpec:
    return OptionSpec(flags, frozenset(on), kwargs, host_only)


OPTIONS: tuple[OptionSpec, ...] = (
    _spec(
        "--backing",
        on=(RUN, EXPLAIN, PYTEST),
        type=parse_backings,
        metavar="LIST",
        help=f"comma-separated backings to run on ({', '.join(BACKINGS)}); "
        "default: disk, tmpfs and memfd for file cases, anon for the rest",
    ),
    _spec(
        "--dir",
        on=(RUN, EXPLAIN, PYTEST),
        host_only=True,
        action="append",
        default=[],
        metavar="DIR",
        help="folder on the filesystem under test for the disk backing (repeatable; "
        "default: the temp folder)",
    ),
    _spec(
        "-n",
        on=(RUN,),
        dest="jobs",
        type=_positive("jobs"),
        default=1,
        metavar="N",
        help="run N cases at once (default 1)",
    ),
    _spec(
        "--report-dir",
        on=(RUN, PYTEST),
        host_only=True,
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where report.json goes (default {DEFAULT_REPORT_DIR}, relative to the folder "
        "the run was started in)",
    ),
    _spec(
        "--repeat",
        on=(RUN,),
        type=_positive("runs"),
        default=1,
        metavar="N",
        help="run each case N times; one whose outcome differs between runs is reported as "
        "flaky, with the outcomes seen",
    ),
    _spec(
        "--format",
        on=(RUN,),
        type=_formats,
        default=["json"],
        metavar="LIST",
        help="report formats beside report.json: json, junit, html, md, ktap, or all",
    ),
    _spec(
        "--baseline",
        on=(RUN, PYTEST),
        type=Path,
        default=None,
        metavar="FILE",
        help="known deviations: a failure an entry covers counts as known (pytest: xfail)",
    ),
    _spec(
        "--strict",
        on=(RUN, PYTEST),
        action="store_true",
        help="with --baseline: a known deviation that passes fails the gate",
    ),
    _spec("-v", "--verbose", on=(RUN,), action="store_true", help="a line per result"),
    _spec(
        "--kernel",
        on=(RUN,),
        host_only=True,
        action="append",
        default=[],
        metavar="K",
        help="boot this kernel (series, ABI or tree path; repeatable) and run inside it",
    ),
    _spec(
        "--fs",
        on=(RUN,),
        host_only=True,
        default="ext4",
        help="with --kernel: comma-separated filesystems for the guest's disk backing: ext4, "
        "xfs, btrfs",
    ),
    _spec(
        "--accel",
        on=(RUN,),
        host_only=True,
        choices=("auto", "tcg", "kvm"),
        default=None,
        help="with --kernel: the accelerator (default: kvm when it works, else tcg)",
    ),
    _spec(
        "--vm-timeout",
        on=(RUN,),
        host_only=True,
        type=float,
        default=900.0,
        help="with --kernel: seconds per guest (default %(default)s)",
    ),
)


def options_for(command: str) -> Iterator[OptionSpec]:
    return (o for o in OPTIONS if command in o.commands)


def add_parser_options(add: Callable[..., Any], command: str) -> None:
    """Add the options of ``command`` through ``add`` (``ArgumentParser.add_argument``)."""
    for o in options_for(command):
        add(*o.flags, **o.kwargs)


def host_only_flags() -> tuple[str, ...]:
    return tuple(f for o in OPTIONS if o.host_only for f in o.flags)
