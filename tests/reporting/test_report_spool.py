"""Results go to disk as they arrive (runner.report.spool): the harness keeps only their heads,
and report.json, written from the spool, is what it was when every trace was held."""

from __future__ import annotations

import json
from pathlib import Path

from runner.report import model
from runner.report.spool import Spool, head
from runner.session.pipeline import Output, conclude, run_session
from runner.session.runner import Item, Result, Runner


def _result(name: str, outcome: str, steps: int) -> dict:
    trace = [{"process": "main", "step": str(n), "op": "load", "ok": True} for n in range(steps)]
    if outcome == "failed":
        trace[-1]["ok"] = False
    return Result(
        f"{name}[anon]", name, "anon", "c.yaml", 1, outcome, "why", steps=trace, output="hi"
    ).to_json()


def test_the_spool_gives_back_each_result_as_put() -> None:
    spool = Spool()
    a, b = _result("a", "passed", 3), _result("b", "failed", 40)
    places = [spool.put(a), spool.put(b)]
    assert [spool.get(p) for p in places] == [a, b]
    assert spool.text(places[1]) == model.dumps_result(b)
    assert "steps" not in head(b) and "output" not in head(b) and head(b)["reason"] == "why"
    assert {"title", "refs"} <= set(b) and not {"title", "refs"} & set(head(b))
    spool.close()


def test_the_written_report_is_the_whole_one_the_finished_one_has_heads(tmp_path: Path) -> None:
    results = [_result("a", "passed", 30), _result("b", "failed", 30), _result("c", "passed", 2)]
    done = conclude({"uid": 0}, [dict(r) for r in results], 1.0, Output(tmp_path, ["json", "md"]))
    written = model.load_report(done.path)
    expected = [model.bounded(r) for r in results]  # a passed trace keeps its ends
    assert written["results"] == expected
    assert len(written["results"][1]["steps"]) == 30  # what did not pass keeps its whole trace
    assert written["summary"] == done.report["summary"] and written["summary"]["failed"] == 1
    assert done.report["results"] == [head(r) for r in expected]
    assert model.dumps(written) == done.path.read_text()  # the one writer's format
    assert "b[anon]" in (tmp_path / "report.md").read_text()  # rendered from the whole report


class _Scripted(Runner):
    """A runner whose items end as it is told (no case runs): each repetition in turn."""

    def __init__(self, outcomes: dict[str, list[str]]):
        self.outcomes = {k: iter(v) for k, v in outcomes.items()}

    def run_item(self, item: Item) -> Result:
        return Result.from_json(_result(item.name[:-6], next(self.outcomes[item.name]), 20))

    def close(self) -> None:
        pass


def test_repetitions_are_merged_from_the_spool(tmp_path: Path) -> None:
    items = [Item("a[anon]", None), Item("b[anon]", None)]
    runner = _Scripted({"a[anon]": ["passed"] * 3, "b[anon]": ["passed", "failed", "passed"]})
    seen: list[str] = []
    done = run_session(
        runner, items, {}, Output(tmp_path), repeat=3, on_result=lambda r: seen.append(r["name"])
    )
    written = json.loads(done.path.read_text())["results"]
    assert seen == ["a[anon]", "b[anon]"] * 3
    assert [r["outcome"] for r in written] == ["passed", "flaky"]
    assert written[1]["outcomes_seen"] == ["passed", "failed", "passed"]
    assert len(written[1]["steps"]) == 20  # the failed repetition's trace, kept whole
    assert len(written[0]["steps"]) == model.PASSED_HEAD + model.PASSED_TAIL
    assert [r["outcome"] for r in done.report["results"]] == ["passed", "flaky"]


def test_heads_hold_what_results_share_once() -> None:
    """A -n worker's frames bring a new copy of each backing, outcome and facts: a head keeps one
    (issue 13: the harness's memory grows by a head per result)."""
    a, b = (
        json.loads(json.dumps({**_result(n, "passed", 1), "facts": {"fs": "ext4"}})) for n in "ab"
    )
    ha, hb = head(a), head(b)
    assert ha["facts"] is hb["facts"] and ha["facts"] == {"fs": "ext4"}
    assert ha["backing"] is hb["backing"] and ha["outcome"] is hb["outcome"]
    assert ha == {
        k: v for k, v in a.items() if k not in ("steps", "output", "title", "claim", "refs", "tags")
    }
