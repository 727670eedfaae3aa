"""A flag another architecture defines makes a case skip here, with the reason, after its
``requires``; it is never a load error.  The other architecture is simulated: the name tables
and the machine fact of aarch64 on this host."""

from __future__ import annotations

import platform
import textwrap
from pathlib import Path

import pytest

from runner.lang import names
from runner.lang.loader import load_suite
from runner.session.runner import Result, RunConfig, Runner

CASE = """\
id: low-map
title: t
{requires}
steps:
  - mmap: {{length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS|{flag}, fd: -1}}
    as: m
  - store: {{addr: m, hex: "01"}}
"""


def run(tmp_path: Path, flag: str, requires: str = "") -> list[Result] | list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(CASE.format(flag=flag, requires=requires)))
    suite = load_suite([str(path)])
    if suite.problems:
        return [str(p) for p in suite.problems]
    runner = Runner(RunConfig(backings=["anon"]))
    runner.facts.arch = names.ARCH
    return [runner.run_item(item) for item in runner.plan(suite)]


@pytest.fixture
def on_aarch64(monkeypatch):
    monkeypatch.setattr(names, "ARCH", "aarch64")
    for family, table in names.tables_for("aarch64").items():
        monkeypatch.setitem(names.FLAG_FAMILIES, family, table)


def test_requires_is_judged_before_the_names(tmp_path, on_aarch64) -> None:
    [r] = run(tmp_path, "MAP_32BIT", "requires: {arch: x86_64}")
    assert (r.outcome, r.reason) == ("skipped", "arch x86_64 required, have aarch64")


def test_a_name_only_another_architecture_defines_skips_with_that_reason(
    tmp_path, on_aarch64
) -> None:
    [r] = run(tmp_path, "MAP_32BIT")
    assert (r.outcome, r.reason) == (
        "skipped",
        "MAP_32BIT is defined on x86_64 only, not on aarch64",
    )


def test_a_name_no_architecture_defines_is_still_invalid(tmp_path, on_aarch64) -> None:
    [problem] = run(tmp_path, "MAP_31BIT")
    assert problem.endswith("flags: unknown MAP_ flag 'MAP_31BIT'")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="MAP_32BIT is x86-64's")
def test_the_same_case_runs_where_the_name_is_defined(tmp_path) -> None:
    [r] = run(tmp_path, "MAP_32BIT")
    assert r.outcome == "passed", r.reason
