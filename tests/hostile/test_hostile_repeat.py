"""``mmapconf run --repeat N``: a case whose outcome changes between runs is ``flaky``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hostile_util import ROOT, mmapconf

from runner.cli import main as cli
from runner.session.runner import Result, Runner, merge_repeats


def _result(outcome: str, reason: str = "", duration: float = 0.5) -> Result:
    return Result("c[anon]", "c", "anon", "c.yaml", 1, outcome, reason, duration)


def test_differing_outcomes_merge_into_flaky_with_what_was_seen():
    merged = merge_repeats(
        [_result("passed"), _result("failed", "main step 2: expected x, got y"), _result("passed")]
    )
    assert merged.outcome == "flaky"
    assert merged.outcomes_seen == ["passed", "failed", "passed"]
    assert "passed x2, failed x1" in merged.reason and "expected x, got y" in merged.reason
    assert merged.duration_s == 1.5
    assert merged.to_json()["outcomes_seen"] == ["passed", "failed", "passed"]


def test_equal_outcomes_stay_as_they_are():
    merged = merge_repeats([_result("failed", "r")] * 3)
    assert (merged.outcome, merged.reason, merged.outcomes_seen) == ("failed", "r", ["failed"] * 3)
    assert "outcomes_seen" not in _result("passed").to_json()  # only with --repeat


CASES = """
id: steady
title: always passes
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
---
id: wobbly
title: also always passes, but the test below makes every other run of it fail
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
"""


def test_run_repeat_reports_flaky_in_results_and_summary(tmp_path, monkeypatch):
    (tmp_path / "c.yaml").write_text(CASES)
    real, calls = Runner.run_item, {"n": 0}

    def every_other_fails(self, item):
        result = real(self, item)
        if item.id == "wobbly":
            calls["n"] += 1
            if calls["n"] % 2 == 0:
                result.outcome, result.reason = "failed", "main step 1 (mmap): made to fail"
        return result

    monkeypatch.setattr(Runner, "run_item", every_other_fails)
    code = cli.main(
        ["run", str(tmp_path / "c.yaml"), "--repeat", "4", "--report-dir", str(tmp_path / "r")]
    )
    assert code in (0, 1)  # whether flaky fails the gate is runner/report's policy
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["steady"]["outcome"] == "passed"
    assert by_id["steady"]["outcomes_seen"] == ["passed"] * 4
    assert by_id["wobbly"]["outcome"] == "flaky"
    assert by_id["wobbly"]["outcomes_seen"] == ["passed", "failed", "passed", "failed"]
    assert report["summary"]["flaky"] == 1 and report["summary"]["passed"] == 1
    assert report["summary"]["total"] == 2


# Fails when a fresh file's modification time is a multiple of 3 ns: the clock moves on, so over
# twelve runs both outcomes are seen. (Not a pid: in its own PID namespace every run of a case
# sees the same pids.)
MTIME_CASE = """
id: mtime-mod-3
title: the mapping length is a fresh file's mtime mod 3 pages; 0 pages is EINVAL
steps:
  - memfd_create: {name: m, flags: 0}
    as: fd
  - write: {fd: fd, data: x}
  - fstat: {fd: fd}
    as: st
  - mmap: {length: (st.mtime_ns // 1000 % 3) * PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
"""


def test_a_really_flaky_case_is_caught_by_the_command_line(tmp_path):
    (tmp_path / "p.yaml").write_text(MTIME_CASE)
    for jobs in ("1", "2"):
        report_dir = tmp_path / f"r{jobs}"
        proc = subprocess.run(
            mmapconf(
                "run",
                str(tmp_path / "p.yaml"),
                "--repeat",
                "12",
                "-n",
                jobs,
                "--report-dir",
                str(report_dir),
            ),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        report = json.loads(Path(report_dir / "report.json").read_text())
        (result,) = report["results"]
        assert len(result["outcomes_seen"]) == 12
        assert set(result["outcomes_seen"]) == {"passed", "failed"}, result["outcomes_seen"]
        assert result["outcome"] == "flaky" and proc.returncode in (0, 1)
        assert report["summary"]["flaky"] == 1
        assert "1 flaky" in proc.stdout and "FLAKY   mtime-mod-3[anon]" in proc.stdout


def test_repeat_must_be_positive(tmp_path):
    proc = subprocess.run(
        mmapconf("run", "--repeat", "0"), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "--repeat" in proc.stderr
