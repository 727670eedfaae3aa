"""The report subcommands: exit statuses, outputs, and one-line errors without tracebacks."""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from reporting_sample import make_report, with_kernel

from runner.cli.main import main
from runner.cli.report import add_report_cli
from runner.report.baseline import Baseline, baseline_lines
from runner.session.pipeline import Finished, Output, conclude, judge

ROOT = Path(__file__).resolve().parents[2]


def dump(path: Path, report: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return path


def test_add_report_cli_wires_four_subcommands() -> None:
    parser = argparse.ArgumentParser(prog="mmapconf")
    add_report_cli(parser.add_subparsers(dest="command"))
    for argv in (
        ["report", "r.json"],
        ["matrix", "a.json", "b.json"],
        ["diff", "a.json", "b.json"],
        ["baseline", "r.json"],
    ):
        args = parser.parse_args(argv)
        assert callable(args.func)


def test_report_writes_next_to_the_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rj = dump(tmp_path / "run" / "report.json", make_report())
    assert main(["report", str(rj), "--format", "junit,html,md,ktap"]) == 0
    names = sorted(p.name for p in rj.parent.iterdir())
    assert names == ["report.html", "report.json", "report.ktap", "report.md", "report.xml"]
    assert capsys.readouterr().out.count("\n") == 4


def test_report_to_a_folder_with_baseline(tmp_path: Path) -> None:
    rj = dump(tmp_path / "report.json", make_report())
    base = tmp_path / "b.yaml"
    base.write_text("- name: article-sigbus-past-eof[tmpfs]\n  reason: r\n  evidence: e\n")
    out = tmp_path / "out"
    assert (
        main(["report", str(rj), "--format", "md,ktap", "-o", str(out), "--baseline", str(base)])
        == 0
    )
    assert "🟨 known | 1" in (out / "report.md").read_text()
    assert "# XFAIL" in (out / "report.ktap").read_text()


def test_diff_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = dump(tmp_path / "a.json", make_report())
    b = dump(tmp_path / "b.json", make_report(**{"article-page-size[anon]": "failed"}))
    assert main(["diff", str(a), str(b)]) == 1
    assert "article-page-size[anon]: passed -> failed" in capsys.readouterr().out
    assert main(["diff", str(b), str(a), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["fixes"][0]["key"] == "article-page-size[anon]"


def test_matrix_formats_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = dump(tmp_path / "a.json", make_report())
    b = dump(tmp_path / "b.json", with_kernel(make_report(), "6.1.0"))
    assert main(["matrix", str(a), str(b)]) == 0
    assert "environments:" in capsys.readouterr().out
    out = tmp_path / "m.html"
    assert main(["matrix", str(a), str(b), "--format", "html", "-o", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>")
    assert main(["matrix", str(a), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("## mmapconf matrix")


def test_baseline_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rj = dump(tmp_path / "report.json", make_report())
    assert main(["baseline", str(rj)]) == 0
    assert 'name: "article-sem-shared[disk]"' in capsys.readouterr().out
    out = tmp_path / "known.yaml"
    assert main(["baseline", str(rj), "-o", str(out)]) == 0
    assert "2 entries" in capsys.readouterr().err
    assert main(["report", str(rj), "--format", "md", "--baseline", str(out)]) == 0


@pytest.mark.parametrize(
    "make, argv, message",
    [
        (None, ["report", "{d}/missing.json"], "missing.json: no such file"),
        ("bad", ["report", "{d}/bad.json"], "bad.json:1:2: not valid JSON"),
        ("list", ["diff", "{d}/list.json", "{d}/list.json"], "not a mmapconf report"),
        ("good", ["report", "{d}/good.json", "--format", "pdf"], "unknown report format 'pdf'"),
        (
            "good",
            ["report", "{d}/good.json", "--baseline", "{d}/nope.yaml"],
            "nope.yaml: no such baseline file",
        ),
        (
            "good",
            ["report", "{d}/good.json", "--baseline", "{d}/badbase.yaml"],
            "badbase.yaml:1:3: unknown entry key 'nme'",
        ),
        ("good", ["matrix", "{d}/good.json", "{d}/missing.json"], "missing.json: no such file"),
        ("good", ["report", "{d}/good.json", "-o", "{d}/file/sub"], "file"),
    ],
)
def test_user_errors_are_one_line_exit_2_no_traceback(
    tmp_path: Path, make: str | None, argv: list[str], message: str
) -> None:
    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "good.json").write_text(json.dumps(make_report()))
    (tmp_path / "badbase.yaml").write_text("- nme: x\n")
    (tmp_path / "file").write_text("a file, not a folder")
    argv = [a.format(d=tmp_path) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "runner", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert proc.stderr.startswith(f"mmapconf {argv[0]}: ")


def _conclude(report: dict, out: Path, formats: list[str], baseline: Baseline | None) -> Finished:
    """The end of the run pipeline, on the results of ``report``, judged one by one."""
    results = copy.deepcopy(report["results"])
    for r in results:
        judge(baseline, report["environment"], r)
    return conclude(report["environment"], results, 1.0, Output(out, formats, baseline))


def test_the_end_of_a_run_judges_writes_and_gates(tmp_path: Path) -> None:
    base = tmp_path / "b.yaml"
    base.write_text(
        "- name: article-sigbus-past-eof[tmpfs]\n  reason: r\n  evidence: e\n"
        "- name: article-sem-shared[disk]\n  reason: r\n  evidence: e\n"
        "- name: article-page-size[anon]\n  reason: r\n  evidence: 'TODO: link'\n"
    )
    report = make_report(**{"article-private-cow[disk]": "passed"})
    done = _conclude(report, tmp_path, ["json", "md"], Baseline.load(base))
    assert done.status == 0 and [p.name for p in done.written] == ["report.md"]
    assert done.path == tmp_path / "report.json"
    assert json.loads(done.path.read_text())["summary"]["known"] == 2
    lines = baseline_lines(done.report)
    assert lines[0].endswith("2 known, 1 unexpected pass(es), 0 expired")
    assert "  unexpected pass: article-page-size[anon]" in lines
    assert _conclude(report, tmp_path, ["md"], Baseline.load(base, strict=True)).status == 1
    plain = _conclude(report, tmp_path, ["md"], None)
    assert plain.status == 1 and baseline_lines(plain.report) == []


def test_report_gate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rj = dump(tmp_path / "report.json", make_report(**{"article-private-cow[disk]": "passed"}))
    assert main(["report", str(rj), "--format", "md", "--gate"]) == 1
    base = tmp_path / "b.yaml"
    base.write_text(
        "- name: article-sigbus-past-eof[tmpfs]\n  reason: r\n  evidence: e\n"
        "- name: article-sem-shared[disk]\n  reason: r\n  evidence: e\n"
    )
    assert main(["report", str(rj), "--format", "md", "--gate", "--baseline", str(base)]) == 0
    assert "2 known" in capsys.readouterr().err


def test_report_errors_are_usage_errors() -> None:
    # The main command line maps UsageError to exit 2: `run --baseline missing.yaml` must too.
    from runner.errors import ReportError, UsageError
    from runner.report.baseline import BaselineError

    assert issubclass(ReportError, UsageError) and issubclass(BaselineError, UsageError)
