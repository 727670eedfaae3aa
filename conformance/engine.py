"""The one ``Runner`` of this pytest process (runner.session.runner), and portable results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.options import run_config
from runner.report.baseline import Entry, KnownDeviations
from runner.session.environment import capture
from runner.session.runner import Result, Runner

_RUNNER = pytest.StashKey[Runner]()


def runner_for(config: pytest.Config) -> Runner:
    """Made on first use, so a process that only controls xdist workers never probes backings
    twice, and each worker or ``--forked`` child gets its own arena for its case processes."""
    runner = config.stash.get(_RUNNER, None)
    if runner is None:
        runner = config.stash[_RUNNER] = Runner(run_config(config))
    return runner


_KNOWN = pytest.StashKey[KnownDeviations]()


def known_deviation(config: pytest.Config, result: dict[str, Any]) -> Entry | None:
    """The --mmapconf-baseline entry that covers a failed ``result``, or None."""
    path = config.getoption("mmapconf_baseline")
    if not path:
        return None
    if _KNOWN not in config.stash:
        env = capture(runner_for(config).backings, [])
        config.stash[_KNOWN] = KnownDeviations(Path(path), env)
    return config.stash[_KNOWN].entry_for(result)


def portable(result: Result) -> dict[str, Any]:
    """``result.to_json()`` as report.json stores it: xdist's channel and pytest-forked's
    marshal accept only plain data, and ``report.write`` renders the rest with ``str``."""
    return json.loads(json.dumps(result.to_json(), default=str))
