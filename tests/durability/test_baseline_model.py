"""The disk model is a per-result fact a baseline entry can match: ``ID[disk]`` with
``when: {disk: flushed}`` covers ID[disk/flushed] and not ID[disk/submitted]."""

from __future__ import annotations

from pathlib import Path

from runner.report.baseline import apply_baseline
from runner.report.model import build_report

BASELINE = """version: 1
entries:
  - name: "durability-x[disk]"
    when: {disk: flushed, fs: ext4}
    reason: the disk lost its write cache
    evidence: the write log has no flush after 'stored'
"""


def _result(model: str) -> dict:
    return {
        "name": f"durability-x[disk/{model}]",
        "id": "durability-x",
        "backing": f"disk/{model}",
        "file": "x.yaml",
        "line": 1,
        "outcome": "failed",
        "reason": "after_reboot step 2 (read): expected 'a', got '\\x00'",
        "facts": {"backing": "disk", "fs": "ext4", "disk": model},
    }


def test_a_baseline_matches_one_disk_model(tmp_path: Path) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(BASELINE)
    report = build_report(
        {"kernel_release": "6.1.0"}, [_result("submitted"), _result("flushed")], 1
    )
    out = {r["name"]: r["outcome"] for r in apply_baseline(report, path)["results"]}
    assert out == {"durability-x[disk/submitted]": "failed", "durability-x[disk/flushed]": "known"}
