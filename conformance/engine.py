"""The one ``runner.session.Runner`` of this pytest process, and results in a portable form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.options import run_config
from runner.session import Result, Runner

_RUNNER = pytest.StashKey[Runner]()


def runner_for(config: pytest.Config) -> Runner:
    """Made on first use, so a process that only controls xdist workers never probes backings
    twice, and each worker or ``--forked`` child gets its own arena for its case processes."""
    runner = config.stash.get(_RUNNER, None)
    if runner is None:
        runner = config.stash[_RUNNER] = Runner(run_config(config))
    return runner


def portable(result: Result) -> dict[str, Any]:
    """``result.to_json()`` as report.json stores it: xdist's channel and pytest-forked's
    marshal accept only plain data, and ``report.write`` renders the rest with ``str``."""
    return json.loads(json.dumps(result.to_json(), default=str))
