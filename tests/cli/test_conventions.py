"""What people who run kernel and LTP suites expect: flag, errno and event names in ``explain``,
kselftest's totals in KTAP, reports on stdout, an LTP/kirk-style JSON export, --accel help."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runner.cli import main as cli
from runner.lang.names import flag_text

EVENTS = """\
id: explain-names
title: two processes hand over through an event
processes:
  writer:
    steps:
      - mmap: {length: PAGE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS}
        as: m
      - madvise: {addr: m, length: PAGE, advice: MADV_DONTNEED}
      - mprotect: {addr: m, length: PAGE, prot: PROT_READ | PROT_WRITE}
      - post: handed_over
  reader:
    steps:
      - wait_for: handed_over
      - munmap: {addr: 1, length: PAGE}
        expect: {errno: EINVAL}
"""


@pytest.mark.parametrize(
    "family, value, text",
    [
        ("PROT", 3, "PROT_READ|PROT_WRITE"),
        ("PROT", 0, "PROT_NONE"),
        ("MAP", 0x22, "MAP_PRIVATE|MAP_ANONYMOUS"),
        ("MAP", 0x80000001, "MAP_SHARED|0x80000000"),
        ("MADV", 4, "MADV_DONTNEED"),
        ("MADV", 999, "999"),
        ("O", 0, "O_RDONLY"),
        ("O", 0o102, "O_RDWR|O_CREAT"),
    ],
)
def test_flag_text(family: str, value: int, text: str) -> None:
    assert flag_text(family, value) == text


def test_explain_shows_flag_errno_and_event_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "case.yaml").write_text(EVENTS)
    assert cli.main(["explain", "explain-names", str(tmp_path / "case.yaml")]) == 0
    out = capsys.readouterr().out
    assert "addr=m, length=4096, prot=PROT_READ|PROT_WRITE" in out  # mprotect
    assert "advice=MADV_DONTNEED" in out
    assert out.count("event=handed_over") == 2  # post and wait_for
    assert "errno EINVAL  errno EINVAL" in out  # expected, observed
    assert "prot=3" not in out and "event=0" not in out


def test_accel_has_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    described = out.split("--accel {auto,tcg,kvm} ")[-1].split(" --vm-timeout")[0]
    assert "kvm (" in described and "tcg (" in described and "auto (" in described


# ---- reports in the field's formats ---------------------------------------------------------

REPORTING = Path(__file__).resolve().parents[1] / "reporting"


def _sample() -> dict:
    """tests/reporting's sample report: twelve results, every engine outcome."""
    sys.path.insert(0, str(REPORTING))
    try:
        from reporting_sample import make_report
    finally:
        sys.path.remove(str(REPORTING))
    return make_report()


def _with_known_and_xpass() -> dict:
    report = _sample()
    by_name = {r["name"]: r for r in report["results"]}
    known = by_name["article-sigbus-past-eof[tmpfs]"]
    known.update(outcome="known", original_outcome="failed", baseline={"status": "known"})
    by_name["article-page-size[anon]"]["baseline"] = {"status": "unexpected-pass"}
    return report


def test_ktap_totals_in_kselftests_words() -> None:
    from runner.report.formats.ktap import render_ktap

    text = render_ktap(_with_known_and_xpass())
    totals = [line for line in text.splitlines() if line.startswith("# Totals:")]
    # 12 results: 6 plain passes, 1 xpass, 1 known, 1 skip, 1 error, 1 timeout (a fail)
    assert totals == ["# Totals: pass:7 fail:1 xfail:1 xpass:1 skip:1 error:1"]
    lines = [line for line in text.splitlines() if line.startswith(("ok ", "not ok "))]
    assert sum(line.startswith("not ok ") for line in lines) == 2  # the fail and the error


def test_the_ltp_export_reads_like_kirks(tmp_path: Path) -> None:
    from runner.report.formats.ltp import render_ltp

    data = json.loads(render_ltp(_with_known_and_xpass()))
    status = {r["test_fqn"]: r["status"] for r in data["results"]}
    assert status["article-sigbus-past-eof[disk]"] == "pass"
    assert status["article-sigbus-past-eof[tmpfs]"] == "fail"  # known: LTP has no baseline
    assert status["article-msync-dirty[tmpfs]"] == "conf"
    assert status["article-sem-shared[disk]"] == "brok"  # timeout
    assert status["article-private-cow[disk]"] == "brok"  # could not be carried out
    stats = data["stats"]
    assert (stats["passed"], stats["failed"], stats["broken"], stats["skipped"]) == (8, 1, 2, 1)
    assert stats["warnings"] == 0 and stats["runtime"] == 0.53
    test = data["results"][1]["test"]
    assert test["result"] == "fail" and test["retval"] == ["1"] and test["failed"] == 1
    assert "baseline known" in test["log"]
    assert set(data["environment"]) == {
        "distribution", "distribution_version", "kernel", "cmdline", "arch", "cpu", "swap", "RAM",
    }  # fmt: skip


@pytest.mark.parametrize("fmt, head", [("ktap", "KTAP version 1"), ("md", "## mmapconf:")])
def test_report_to_stdout_with_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, head: str
) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_sample()))
    assert cli.main(["report", str(report), "--format", fmt, "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith(head)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no folder '-'
    assert cli.main(["report", str(report), "--format", "ktap,md", "-o", "-"]) == 2
    assert "stdout takes one format" in capsys.readouterr().err
