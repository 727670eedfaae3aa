"""Command-line options of the plugin: those of ``mmapconf run`` that pytest takes, from the one
list of option specs (runner.session.options).

Every option exists as ``--mmapconf-NAME``; the plain ``--NAME`` (``--backing``, ``--dir``,
``--report-dir``, ``--baseline``) is added too unless a plugin registered before this one
already took it, since two plugins adding one option name make pytest refuse to start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.session.options import PYTEST, options_for
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
    for spec in options_for(PYTEST):
        names = [f"--mmapconf-{spec.name}"]
        if f"--{spec.name}" not in taken:
            names.insert(0, f"--{spec.name}")
        dest = "mmapconf_" + spec.name.replace("-", "_")
        group.addoption(*names, dest=dest, **{**spec.kwargs, **spec.pytest_kwargs})


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
