"""``mmapconf run`` plans one file at a time with each case held packed (runner.lang.packed):
the same items, in the same order, with the same cases and the same invalid documents as the
plan of the whole loaded suite; and a packed item's case runs to the same result."""

from __future__ import annotations

from pathlib import Path

from runner.lang.loader import load_suite
from runner.session.runner import PackedItem, RunConfig, Runner

ROOT = Path(__file__).resolve().parents[2]

CASE = """id: {id}
title: "packed: {id}"
timeout: {timeout}
steps:
  - mmap: {{length: PAGE, prot: "PROT_READ|PROT_WRITE", flags: "MAP_PRIVATE|MAP_ANONYMOUS"}}
    as: m
  - store: {{addr: m, hex: "2a"}}
  - load: {{addr: m, length: 1}}
    expect: {{value: {{hex: "2a"}}}}
"""


def _suite(tmp_path: Path) -> list[str]:
    (tmp_path / "a.yaml").write_text(CASE.format(id="p-one", timeout=3) + "---\nid: broken\n")
    (tmp_path / "b.yaml").write_text(CASE.format(id="p-one", timeout=4))  # a duplicate id
    (tmp_path / "c.yaml").write_text(CASE.format(id="p-two", timeout=5))
    return [str(tmp_path), str(ROOT / "cases" / "article")]


def test_the_packed_plan_is_the_plan_of_the_loaded_suite(tmp_path: Path) -> None:
    paths = _suite(tmp_path)
    runner = Runner(RunConfig())
    want = runner.plan(load_suite(paths))
    got = runner.plan_files(paths, lambda case: True)
    assert [i.name for i in got] == [i.name for i in want]
    assert [i.invalid for i in got] == [i.invalid for i in want]
    assert any("duplicate id 'p-one'" in str(i.invalid.problems) for i in got if i.invalid)
    assert [(i.case, i.backing, i.timeout) for i in got] == [
        (i.case, i.backing, i.timeout) for i in want
    ]
    packed = [i for i in got if isinstance(i, PackedItem)]
    assert len(packed) == len([i for i in want if i.case is not None]) > 10
    assert {i.timeout for i in packed if i.id == "p-two"} == {5.0}


def test_a_selection_plans_only_its_cases(tmp_path: Path) -> None:
    paths = _suite(tmp_path)
    got = Runner(RunConfig()).plan_files(paths, lambda case: case.id == "p-two")
    assert [i.name for i in got if i.case is not None] == ["p-two[anon]"]
    assert {i.id for i in got if i.invalid} == {"broken", "p-one"}  # invalid ones still err


def test_a_packed_item_runs_as_its_loaded_case(tmp_path: Path) -> None:
    paths = _suite(tmp_path)
    runner = Runner(RunConfig())
    try:
        (item,) = [i for i in runner.plan_files(paths, lambda c: c.id == "p-two") if i.case]
        (loaded,) = [i for i in runner.plan(load_suite(paths)) if i.name == item.name]
        a, b = runner.run_item(item), runner.run_item(loaded)
    finally:
        runner.close()
    assert (
        (a.outcome, a.reason, a.steps) == (b.outcome, b.reason, b.steps) == ("passed", "", a.steps)
    )
    assert len(a.steps) == 3
