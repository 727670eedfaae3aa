"""Reports that stay small and readable: report.json in one line per result (the C encoder),
passed results with a bounded trace unless --full-traces, report.md's trace of a long loop cut,
and every report file mode 0644 whatever the umask."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.cli import main as cli
from runner.report import model as record
from runner.report.formats import write_formats
from runner.report.formats.markdown import render_markdown
from runner.vm import vmreport


def _long(pairs: int) -> str:
    """A case of 1 + 2 * PAIRS top-level steps that pass (written out, not a repeat: the native
    executor sends a passed loop step once and counts the rest, steps_left_out)."""
    pair = '  - store: {addr: m, data: "x"}\n  - load: {addr: m, length: 1}\n'
    pair += '    expect: {value: {data: "x"}}\n'
    return (
        "id: long-loop\ntitle: a hundred passed steps\nsteps:\n"
        "  - mmap: {length: PAGE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS}\n"
        "    as: m\n" + pair * pairs
    )


LOOP = _long(50)
FAILING_LOOP = LOOP.replace("id: long-loop", "id: long-failing-loop") + (
    '  - load: {addr: m, length: 1}\n    expect: {value: {data: "y"}}\n'
)


def _run(tmp_path: Path, text: str, *extra: str) -> dict:
    case = tmp_path / "case.yaml"
    case.write_text(text)
    cli.main(["run", str(case), "--report-dir", str(tmp_path / "r"), *extra])
    return json.loads((tmp_path / "r" / "report.json").read_text())


def test_a_passed_result_keeps_the_ends_of_its_trace(tmp_path: Path) -> None:
    (result,) = _run(tmp_path, LOOP)["results"]
    assert result["outcome"] == "passed"
    assert len(result["steps"]) == record.PASSED_HEAD + record.PASSED_TAIL
    assert result["steps_left_out"] == 101 - len(result["steps"])  # mmap + 100
    assert result["steps"][0]["op"] == "mmap" and result["steps"][-1]["op"] == "load"


def test_full_traces_keeps_every_step(tmp_path: Path) -> None:
    (result,) = _run(tmp_path, LOOP, "--full-traces")["results"]
    assert len(result["steps"]) == 101 and "steps_left_out" not in result


def test_what_did_not_pass_keeps_its_whole_trace(tmp_path: Path) -> None:
    (result,) = _run(tmp_path, FAILING_LOOP)["results"]
    assert result["outcome"] == "failed"
    assert len(result["steps"]) == 102 and "steps_left_out" not in result


def test_report_json_is_one_line_per_result_and_reads_back(tmp_path: Path) -> None:
    data = _run(tmp_path, _long(2))
    text = (tmp_path / "r" / "report.json").read_text()
    assert json.loads(text) == data
    lines = text.splitlines()
    version = f'{{"schema_version": {record.SCHEMA_VERSION},'
    assert lines[0].startswith(version) and lines[0].endswith('"results": [')
    assert json.loads(lines[1]) == data["results"][0] and lines[2:] == ["]}"]
    empty = record.dumps({"results": []})
    assert empty.endswith('"results": [\n\n]}\n') and len(empty.splitlines()) == 3
    assert json.loads(empty)["results"] == []


def _sleep_loop_timeout(n: int) -> dict:
    steps = [
        {"process": "main", "step": f"2.{i}", "line": 9, "op": "sleep", "args": {"ms": 10},
         "expected": "success", "observed": "success", "ok": True}
        for i in range(1, n + 1)
    ]  # fmt: skip
    steps.append({"process": "main", "step": f"2.{n + 1}", "line": 9, "op": "sleep",
                  "args": {"ms": 10}, "expected": "success", "observed": "not finished",
                  "ok": None})  # fmt: skip
    return {
        "schema_version": 1, "interrupted": False,
        "environment": {"kernel_release": "6.1", "machine": "x86_64"},
        "summary": {"total": 1, "timeout": 1, "duration_s": 1.0},
        "results": [{"name": "loop[anon]", "id": "loop", "backing": "anon", "file": "c.yaml",
                     "line": 1, "outcome": "timeout", "reason": "timed out", "steps": steps}],
    }  # fmt: skip


def test_report_md_caps_the_trace_of_a_loop_that_timed_out() -> None:
    text = render_markdown(_sleep_loop_timeout(647))
    sleeps = [line for line in text.splitlines() if "sleep" in line]
    assert 0 < len(sleeps) <= 6
    assert "  ... 642 step(s) ..." in text  # 648 steps: the first 3 and the last 3 shown


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_077")
def test_reports_are_0644_from_every_path(tmp_path: Path) -> None:
    report = _sleep_loop_timeout(3)
    written = [record.write_report(report, tmp_path / "run")]
    written += write_formats(report, tmp_path / "run", ["all"])
    vmreport.write_json(tmp_path / "vm-error.json", {"attempts": []})
    written.append(tmp_path / "vm-error.json")
    vmreport.annotate(written[0], {"accel": "tcg"})  # a kernel run's report, rewritten
    assert cli.main(["report", str(written[0]), "--format", "md", "-o", str(tmp_path / "o")]) == 0
    written.append(tmp_path / "o" / "report.md")
    assert cli.main(["diff", str(written[0]), str(written[0]), "-o", str(tmp_path / "d")]) == 0
    written.append(tmp_path / "d")
    assert len(written) == 9
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in written} == {
        str(p.relative_to(tmp_path)): "0o644" for p in written
    }


@pytest.mark.usefixtures("umask_077")
def test_the_pytest_plugins_report_is_0644_too(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "loop.yaml").write_text(LOOP)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conformance", "-p", "no:cacheprovider", "-q",
         "cases", "--report-dir", "r"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert oct(_mode(tmp_path / "r" / "report.json")) == "0o644"
