"""Command-line options of the plugin, named as on ``mmapconf run``.

Every option exists as ``--mmapconf-NAME``; the plain ``--NAME`` (``--backing``, ``--dir``,
``--report-dir``) is added too unless a plugin registered before this one already took it, since
two plugins adding one option name make pytest refuse to start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.cli.main import DEFAULT_REPORT_DIR, parse_backings
from runner.session.runner import RunConfig

GROUP = "mmapconf"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "mmapconf: memory-mapped I/O conformance cases")
    taken = _taken_names(parser)
    _add(
        group,
        taken,
        "backing",
        type=parse_backings,
        metavar="LIST",
        help="comma-separated backings to run file cases on (disk, tmpfs, memfd, hugetlbfs, "
        "anon); default: disk, tmpfs and memfd for file cases, anon for the rest",
    )
    _add(
        group,
        taken,
        "dir",
        action="append",
        default=[],
        metavar="DIR",
        help="folder on the filesystem under test for the disk backing (repeatable; "
        "default: the temp folder)",
    )
    _add(
        group,
        taken,
        "report-dir",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where the merged report.json goes (default {DEFAULT_REPORT_DIR}, relative to "
        "the folder pytest was started in)",
    )
    _add_baseline(group, taken)


def _add_baseline(group: pytest.OptionGroup, taken: set[str]) -> None:
    _add(
        group,
        taken,
        "baseline",
        default=None,
        metavar="FILE",
        help="known deviations (as for mmapconf run --baseline): a case they cover that fails "
        "is reported as xfail, with the entry's reason",
    )


def _add(group: pytest.OptionGroup, taken: set[str], name: str, **kwargs: Any) -> None:
    names = [f"--mmapconf-{name}"]
    if f"--{name}" not in taken:
        names.insert(0, f"--{name}")
    group.addoption(*names, dest="mmapconf_" + name.replace("-", "_"), **kwargs)


def _taken_names(parser: pytest.Parser) -> set[str]:
    """Option names added so far by other plugins (best effort: pytest keeps them private)."""
    groups = [*getattr(parser, "_groups", []), getattr(parser, "_anonymous", None)]
    return {
        name
        for group in groups
        if group is not None
        for option in getattr(group, "options", [])
        for name in option.names()
    }


def run_config(config: pytest.Config) -> RunConfig:
    return RunConfig(config.getoption("mmapconf_backing"), list(config.getoption("mmapconf_dir")))


def report_dir(config: pytest.Config) -> Path:
    """Relative folders count from where pytest was started, as for ``mmapconf run``."""
    return config.invocation_params.dir / config.getoption("mmapconf_report_dir")
