"""What a pytest process makes once (runner.session): its ``Runner``, its environment and its
baseline; and results as portable data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.options import run_config
from runner.report.baseline import Baseline
from runner.session.environment import capture
from runner.session.runner import Result, Runner

_RUNNER = pytest.StashKey[Runner]()
_ENVIRONMENT = pytest.StashKey[dict[str, Any]]()
_BASELINE = pytest.StashKey["Baseline | None"]()


def runner_for(config: pytest.Config) -> Runner:
    """Made on first use, so a process that only controls xdist workers never probes backings
    twice, and each worker or ``--forked`` child gets its own arena for its case processes."""
    runner = config.stash.get(_RUNNER, None)
    if runner is None:
        runner = config.stash[_RUNNER] = Runner(run_config(config))
    return runner


def close_runner(config: pytest.Config) -> None:
    """Stop what the runner started in this process (the native executor's fork server)."""
    runner = config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()


def environment_for(config: pytest.Config) -> dict[str, Any]:
    """The environment report.json records, and the one a baseline is judged in."""
    env = config.stash.get(_ENVIRONMENT, None)
    if env is None:
        argv = ["pytest", *config.invocation_params.args]
        env = config.stash[_ENVIRONMENT] = capture(runner_for(config).backings, argv)
    return env


def baseline_for(config: pytest.Config) -> Baseline | None:
    """``--mmapconf-baseline``, loaded once per process (an invalid file stops the run)."""
    if _BASELINE not in config.stash:
        path = config.getoption("mmapconf_baseline")
        strict = bool(config.getoption("mmapconf_strict"))
        config.stash[_BASELINE] = Baseline.load(path, strict) if path else None
    return config.stash[_BASELINE]


def portable(result: Result) -> dict[str, Any]:
    """``result.to_json()`` as report.json stores it: xdist's channel and pytest-forked's
    marshal accept only plain data, and report.json renders the rest with ``str``."""
    return json.loads(json.dumps(result.to_json(), default=str))
