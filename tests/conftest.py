"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.lang.loader import load_suite
from runner.session.runner import Result, RunConfig, Runner


@pytest.fixture
def run_yaml(tmp_path: Path):
    """Write YAML case text to a file, run it, return the results by backing name."""

    def run(text: str, backings: list[str] | None = None) -> dict[str, Result]:
        path = tmp_path / "case.yaml"
        path.write_text(textwrap.dedent(text))
        runner = Runner(RunConfig(backings=backings))
        suite = load_suite([str(path)])
        try:
            return {r.backing: r for r in map(runner.run_item, runner.plan(suite))}
        finally:
            runner.close()  # the native executor's fork server is the runner's, not the test's

    return run
