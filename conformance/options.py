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
COLLECT_INI = "mmapconf_collect"
REPORT_DIR_INI = "mmapconf_report_dir"


def add_options(parser: pytest.Parser) -> None:
    parser.addini(
        COLLECT_INI,
        "where case files are collected: 'named' (default), below the files and folders named "
        "on the command line; 'all', also where pytest goes by itself (testpaths, rootdir)",
        default="named",
    )
    parser.addini(
        REPORT_DIR_INI,
        "where the merged report.json goes when --report-dir is not given (default: no report)",
        default="",
    )
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
        default=None,
        metavar="DIR",
        help=f"write the merged report.json into DIR (relative to the folder pytest was started "
        f"in; e.g. {DEFAULT_REPORT_DIR}); default: the {REPORT_DIR_INI} ini value, else none",
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


def collects_everywhere(config: pytest.Config) -> bool:
    value = str(config.getini(COLLECT_INI)).strip()
    if value not in ("named", "all"):
        raise pytest.UsageError(f"{COLLECT_INI} = {value!r}: use 'named' or 'all'")
    return value == "all"


def report_dir(config: pytest.Config) -> Path | None:
    """Where report.json goes, if anywhere: asked for on the command line or in the project's
    configuration, never by default (the plugin runs inside other projects' sessions). A
    relative folder counts from where pytest was started (the option) or the rootdir (the ini),
    as for ``mmapconf run``."""
    option = config.getoption("mmapconf_report_dir")
    if option:
        return config.invocation_params.dir / option
    ini = str(config.getini(REPORT_DIR_INI)).strip()
    return config.rootpath / ini if ini else None
