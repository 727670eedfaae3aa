"""The report side on real report.json files: the engine runs the article's cases on the disk
backing and on tmpfs, and every format, the matrix, the diff and a baseline are made from them."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest
from cdp import FLAGS, find_chromium
from ktap_grammar import parse as parse_ktap

from runner.report.baseline import apply_baseline, make_baseline
from runner.report.diff import diff_exit_code, diff_reports
from runner.report.formats import write_formats
from runner.report.matrix import build_matrix, render_matrix_text
from runner.report.model import gate_exit_code, load_report

ROOT = Path(__file__).resolve().parents[2]


def run_engine(backing: str, out: Path) -> Path:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "run",
            "cases/article",
            "--backing",
            backing,
            "--report-dir",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = out / "report.json"
    assert proc.returncode in (0, 1) and report.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return report


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("runs")
    return {b: run_engine(b, base / b) for b in ("disk", "tmpfs")}


def test_every_format_from_a_real_run(runs: dict[str, Path]) -> None:
    xmlschema = pytest.importorskip("xmlschema", reason="pip install xmlschema")
    path = runs["disk"]
    report = load_report(path)
    written = write_formats(report, path.parent, ["json", "junit", "html", "md", "ktap"])
    assert {p.name for p in written} == {"report.xml", "report.html", "report.md", "report.ktap"}
    xsd = resources.files("runner.report.formats").joinpath("junit.xsd").read_text()
    xml = (path.parent / "report.xml").read_text()
    xmlschema.XMLSchema(xsd).validate(xml)
    root = ET.fromstring(xml)
    assert int(root.get("tests")) == report["summary"]["total"] == len(report["results"])
    assert len(parse_ktap((path.parent / "report.ktap").read_text())) == len(report["results"])
    page = (path.parent / "report.html").read_text()
    assert page.count('<tr class="result"') == len(report["results"])
    md = (path.parent / "report.md").read_text()
    assert f"| **total** | **{report['summary']['total']}** |" in md


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")
def test_real_html_counts_in_chromium(runs: dict[str, Path]) -> None:
    report = load_report(runs["tmpfs"])
    (page,) = write_formats(report, runs["tmpfs"].parent, ["html"])
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [
                find_chromium(),
                *[f for f in FLAGS if "remote-debugging" not in f],
                f"--user-data-dir={profile}",
                "--dump-dom",
                page.as_uri() + "#outcome=passed",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    assert 'data-ready="true"' in dom
    passed = report["summary"]["passed"]
    assert f'<span id="shown">{passed}</span>' in dom
    assert f'id="count-passed">{passed}<' in dom
    rows = re.findall(r'<tr class="result"[^>]*>', dom)
    assert sum(1 for r in rows if " hidden" not in r) == passed


def test_matrix_and_diff_disk_against_tmpfs(runs: dict[str, Path]) -> None:
    disk, tmpfs = load_report(runs["disk"]), load_report(runs["tmpfs"])
    m = build_matrix([("disk.json", disk), ("tmpfs.json", tmpfs)])
    backings = {c["backing"] for c in m["columns"]}
    assert {"disk", "tmpfs"} <= backings
    ids = {r["id"] for r in disk["results"]} | {r["id"] for r in tmpfs["results"]}
    assert {r["id"] for r in m["rows"]} == ids
    assert render_matrix_text(m).count("\n") >= len(ids) + 3

    by_name = diff_reports(disk, tmpfs)
    file_backed = {r["name"] for r in disk["results"] if r["backing"] == "disk"}
    assert {e["key"] for e in by_name["vanished"]} == file_backed
    by_id = diff_reports(disk, tmpfs, by="id")
    assert by_id["new"] == [] and by_id["vanished"] == []

    # make one of tmpfs's passes a failure: exactly that is the regression
    broken = copy.deepcopy(tmpfs)
    victim = next(r for r in broken["results"] if r["outcome"] == "passed")
    victim["outcome"], victim["reason"] = "failed", "made up for the test"
    d = diff_reports(tmpfs, broken)
    assert [e["key"] for e in d["regressions"]] == [victim["name"]]
    assert diff_exit_code(d) == 1


def test_baseline_from_a_real_run(runs: dict[str, Path], tmp_path: Path) -> None:
    report = json.loads(runs["disk"].read_text())
    victim = next(r for r in report["results"] if r["outcome"] == "passed")
    victim["outcome"], victim["reason"] = "failed", "made up for the test"
    baseline = tmp_path / "known.yaml"
    baseline.write_text(make_baseline(report))
    gated = apply_baseline(report, baseline, strict=True)
    assert gated["baseline"]["known"] == [
        r["name"] for r in report["results"] if r["outcome"] in ("failed", "timeout")
    ]
    assert gate_exit_code(gated) == (1 if gated["summary"].get("error") else 0)
    # the same baseline on the untouched run: the victim now passes unexpectedly
    clean = apply_baseline(load_report(runs["disk"]), baseline, strict=True)
    assert victim["name"] in clean["baseline"]["unexpected_passes"]
    assert gate_exit_code(clean) == 1
