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


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "mmapconf: memory-mapped I/O conformance cases")
    taken = _taken_names(parser)
    for spec in options_for(PYTEST):
        names = [f"--mmapconf-{spec.name}"]
        if f"--{spec.name}" not in taken:
            names.insert(0, f"--{spec.name}")
        group.addoption(*names, dest="mmapconf_" + spec.name.replace("-", "_"), **spec.kwargs)


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
