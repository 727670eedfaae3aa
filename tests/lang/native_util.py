"""Running YAML case text on the native executor, and reading a validator's problems."""

from __future__ import annotations

import textwrap
from pathlib import Path

from runner.lang.loader import load_suite
from runner.session.runner import Result, RunConfig, Runner


def run_native(tmp_path: Path, text: str, backings: list[str] | None = None) -> Result:
    """Run one case (on its one backing, else tmpfs) on the native executor."""
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text))
    runner = Runner(RunConfig(backings=backings))
    results = {r.backing: r for r in map(runner.run_item, runner.plan(load_suite([str(path)])))}
    return next(iter(results.values())) if len(results) == 1 else results["tmpfs"]


def problems(tmp_path: Path, text: str) -> list[str]:
    """The validator's problems, as ``LINE:COL: KEY: message``."""
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return [str(p).split("c.yaml:", 1)[1] for p in load_suite([str(path)]).problems]
