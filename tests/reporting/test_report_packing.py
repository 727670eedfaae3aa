"""report.json is packed (runner.report.model.pack): what a result shares with the result before
it of the same case, the steps' default process and long runs of one byte are left out of the
file, and load_report puts them back. Every failing step is kept whole; a version-1 report
(nothing packed) reads as it was; a packed value from elsewhere is read, not trusted."""

from __future__ import annotations

import json
from pathlib import Path

from runner.cli import main as cli
from runner.report import model

# Three backings of one case: a page of zeros loaded (a long run of one byte), then a load
# that fails (its step kept whole), with the case's own keys that every backing shares.
CASE = """id: packed-report
title: a page of zeros, then a wrong expectation
claim: the report leaves out what it can put back
refs: ["man 2 mmap: MAP_SHARED"]
tags: [report]
backings: [disk, tmpfs, memfd]
steps:
  - file: f
    size: PAGE
  - open: {file: f, flags: O_RDWR}
    as: fd
  - mmap: {length: PAGE, prot: "PROT_READ|PROT_WRITE", flags: MAP_SHARED, fd: fd}
    as: m
  - load: {addr: m, length: PAGE}
  - load: {addr: m, length: 1}
    expect: {value: {hex: "01"}}
"""


def _run(tmp_path: Path) -> tuple[Path, list[dict]]:
    (tmp_path / "case.yaml").write_text(CASE)
    cli.main(["run", str(tmp_path / "case.yaml"), "--report-dir", str(tmp_path / "r")])
    path = tmp_path / "r" / "report.json"
    lines = path.read_text().splitlines()[1:-1]
    return path, [json.loads(line.rstrip(",")) for line in lines]


def test_the_file_leaves_out_what_the_reader_puts_back(tmp_path: Path) -> None:
    path, raw = _run(tmp_path)
    assert [r["name"] for r in raw] == [f"packed-report[{b}]" for b in ("disk", "tmpfs", "memfd")]
    assert {"file", "title", "claim", "refs", "tags"} <= set(raw[0]) and "same_case" not in raw[0]
    for r in raw[1:]:
        assert not {"file", "title", "claim", "refs", "tags"} & set(r) and r["same_case"] is True
    assert all("process" not in s for r in raw for s in r["steps"])
    page = raw[0]["steps"][3]["result"]
    assert page == {"$bytes": "", "$run": ["00", 4096]}
    read = model.load_report(path)["results"]
    assert [r["title"] for r in read] == ["a page of zeros, then a wrong expectation"] * 3
    assert all(r["refs"] == ["man 2 mmap: MAP_SHARED"] and r["tags"] == ["report"] for r in read)
    assert all(r["file"] == raw[0]["file"] and r["file"].endswith("/case.yaml") for r in read)
    assert all(s["process"] == "main" for r in read for s in r["steps"])
    assert all(r["steps"][3]["result"] == {"$bytes": "00" * 4096} for r in read)


def test_every_failing_step_is_kept_whole(tmp_path: Path) -> None:
    path, raw = _run(tmp_path)
    for r in raw:
        assert r["outcome"] == "failed"
        (bad,) = [s for s in r["steps"] if s["ok"] is False]
        assert bad["op"] == "load" and bad["step"] == "5" and bad["expected"] == "value {hex: '01'}"
        assert bad["observed"].startswith("success, value {hex 00}") and bad["result"]
    assert all(model.failing_step(r) for r in model.load_report(path)["results"])


def test_a_report_reads_back_as_it_was_written(tmp_path: Path) -> None:
    path, _ = _run(tmp_path)
    report = model.load_report(path)
    again = tmp_path / "again" / "report.json"
    model.write_report(report, again)
    assert model.load_report(again) == report
    assert again.read_bytes() == path.read_bytes()


def _v1(results: list[dict]) -> dict:
    return {"schema_version": 1, "environment": {}, "summary": {}, "results": results}


def test_a_version_1_report_reads_as_it_was(tmp_path: Path) -> None:
    steps = [{"step": "1", "op": "load", "ok": True, "result": {"$bytes": "", "$run": ["00", 9]}}]
    results = [
        {"name": "a[disk]", "id": "a", "title": "t", "steps": steps},
        {"name": "a[tmpfs]", "id": "a", "steps": [dict(s) for s in steps]},
    ]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_v1(results)))
    assert model.load_report(path) == _v1(results)  # no packing: nothing filled in


def test_packing_needs_the_same_case_before(tmp_path: Path) -> None:
    """A result keeps its case's keys when the result before it is of another case, or when
    the two do not have the same keys; the first result always keeps them."""
    results = [
        {"name": "a[disk]", "id": "a", "title": "A", "claim": "x"},
        {"name": "b[disk]", "id": "b", "title": "B", "claim": "y"},
        {"name": "b[tmpfs]", "id": "b", "title": "B"},  # no claim: not packed against b[disk]
        {"name": "b[memfd]", "id": "b", "title": "B"},
    ]
    packed = list(model.pack(results))
    assert packed[:3] == results[:3]
    assert packed[3] == {"name": "b[memfd]", "id": "b", "same_case": True}
    path = tmp_path / "report.json"
    model.write_report(model.build_report({}, results, 1.0), path)
    assert model.load_report(path)["results"] == results


def test_a_packed_value_from_elsewhere_is_not_trusted(tmp_path: Path) -> None:
    """A run too long, or a run that is not one byte, stays as written (no huge allocation)."""
    bad = [
        {"$bytes": "", "$run": ["00", model.MAX_RUN + 1]},
        {"$bytes": "", "$run": ["000", 4]},
        {"$bytes": "", "$run": ["00", -1]},
        {"$bytes": 5, "$run": ["00", 4]},
    ]
    steps = [{"step": str(n), "op": "load", "result": v} for n, v in enumerate(bad)]
    report = {**_v1([{"name": "a[anon]", "steps": steps}]), "packing": model.PACKING}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert [s["result"] for s in model.load_report(path)["results"][0]["steps"]] == bad
