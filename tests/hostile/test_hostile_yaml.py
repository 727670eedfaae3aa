"""Bad YAML and bad cases: each gives a located problem, the good cases beside it still run,
and neither the loader nor the command line shows a traceback."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from hostile_util import ROOT, mmapconf

from runner.lang.loader import load_file, load_suite
from runner.lang.yamlsafe import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from runner.report.model import load_report
from runner.session.runner import RunConfig, Runner


def _bomb(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghijklm"[: levels - 1]:
        text += f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]\n"
        prev = name
    return text


GOOD = "id: {id}\ntitle: t\nsteps:\n  - mmap: {{length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}}\n"

# name -> (file bytes, (line, column) of the first problem, a phrase of its message)
BAD: dict[str, tuple[bytes, tuple[int, int], str]] = {
    "syntax": (b"id: x\ntitle: [unclosed\nsteps: []\n", (3, 6), "YAML: did not find expected"),
    "tab": (b"id: x\n\ttitle: y\n", (2, 1), "tab character"),
    "wrong-types": (
        b"id: 5\ntitle: [1]\ntimeout: soon\nsteps: {}\n",
        (1, 1),
        "must be a non-empty string",
    ),
    "missing-keys": (b"title: only a title\n", (1, 1), "missing required key 'id'"),
    "unknown-key": (b"id: u\ntitle: t\nsteeps: []\nsteps: [{sleep: 1}]\n", (3, 1), "unknown key"),
    "unknown-op": (
        b"id: u\ntitle: t\nsteps:\n  - frobnicate: 1\n",
        (4, 5),
        "needs exactly one operation",
    ),
    "unknown-arg": (
        b"id: u\ntitle: t\nsteps:\n  - sleep: {ms: 1, forever: true}\n",
        (4, 20),
        "unknown argument",
    ),
    "huge": (
        b"id: h\ntitle: t\nsteps: [{sleep: 1}]\n" + b"# pad\n" * (MAX_FILE_BYTES // 6 + 1),
        (1, 1),
        f"larger than {MAX_FILE_BYTES} bytes",
    ),
    "deep": (
        b"id: d\ntitle: t\nsteps: " + b"[" * 100 + b"]" * 100 + b"\n",
        (3, 7 + MAX_DEPTH),
        "nested deeper",
    ),
    # deep enough to overflow the C stack of a recursive parser
    "deeper": (
        b"x: " + b"[" * 300_000 + b"]" * 300_000 + b"\n",
        (1, None),  # the column where the limit is found: ours (67), or libyaml's own (1003)
        "nested deeper",
    ),
    "deep-mapping": (
        b"".join(b"  " * i + b"k:\n" for i in range(200)),
        (MAX_DEPTH + 1, 2 * MAX_DEPTH + 1),
        "nested deeper",
    ),
    "alias-bomb": (_bomb().encode(), (1, 1), f"more than {MAX_NODES} nodes"),
    "alias-cycle": (b"id: c\ntitle: t\nsteps: &s [*s]\n", (3, 8), "recursive"),
    "latin-1": (b"id: l\ntitle: caf\xe9\nsteps: [{sleep: 1}]\n", (2, 11), "not UTF-8"),
    "utf-16": ("id: u\ntitle: t\n".encode("utf-16"), (1, 1), "not UTF-8"),
    "truncated-utf8": (b"id: l\ntitle: \xe2\x82\n", (2, 8), "not UTF-8"),
    "nul": (
        b"id: n\ntitle: a\x00b\nsteps: [{sleep: 1}]\n",
        (2, 9),
        "control characters are not allowed",
    ),
    "python-tag": (
        b"id: !!python/object/apply:os.system ['touch /tmp/pwned']\ntitle: t\n",
        (1, 5),
        "could not determine a constructor",
    ),
    "merge-key": (b"base: &b {id: m}\ncase:\n  <<: *b\n", (3, 3), "merge keys"),
    "duplicate-key": (
        b"id: k\ntitle: t\nid: k2\nsteps: [{sleep: 1}]\n",
        (3, 1),
        "duplicate key 'id'",
    ),
    "not-a-mapping": (b"just a string\n", (1, 1), "a case must be a mapping"),
    "complex-key": (b"? [a, b]\n: 1\n", (1, 3), "a key must be a plain scalar"),
    "huge-int": (
        b"id: i\ntitle: t\ntimeout: 99999999999999999999999999\nsteps: [{sleep: 1}]\n",
        (3, 1),
        "at most 3600",
    ),
    "nan-timeout": (
        b"id: i\ntitle: t\ntimeout: .nan\nsteps: [{sleep: 1}]\n",
        (3, 1),
        "at most 3600",
    ),
    "list-for-a-name": (
        b"id: v\ntitle: t\nsteps:\n  - kill: {pid: 0, signal: [SIGKILL]}\n",
        (4, 20),
        "unknown signal ['SIGKILL']",
    ),
}


@pytest.fixture
def bad_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    for name, (data, _, _) in BAD.items():
        (folder / f"{name}.yaml").write_bytes(data)
    (folder / "good-a.yaml").write_text(GOOD.format(id="good-a"))
    (folder / "good-b.yaml").write_text(
        GOOD.format(id="good-b") + "---\n" + GOOD.format(id="good-c")
    )
    (folder / "dup-1.yaml").write_text(GOOD.format(id="same"))
    (folder / "dup-2.yaml").write_text("# the same id again\n" + GOOD.format(id="same"))
    return folder


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_file_gives_a_located_problem(bad_folder, name):
    _, (line, column), phrase = BAD[name]
    start = time.monotonic()
    suite = load_file(bad_folder / f"{name}.yaml")
    assert time.monotonic() - start < 5, "the loader took too long over a hostile file"
    assert not suite.cases
    problem = suite.invalid[0].problems[0]
    assert problem.file.endswith(f"{name}.yaml")
    assert problem.line == line and column in (None, problem.column), str(problem)
    assert phrase in problem.message, str(problem)


def test_duplicate_ids_across_files_name_both_places(bad_folder):
    suite = load_suite([str(bad_folder)])
    dups = [inv for inv in suite.invalid if inv.id == "same"]
    assert len(dups) == 1
    (problem,) = dups[0].problems
    assert problem.file.endswith("dup-2.yaml") and problem.line == 2
    assert "duplicate id 'same', first at" in problem.message and "dup-1.yaml:1" in problem.message


def test_the_good_cases_beside_bad_ones_still_run(bad_folder, tmp_path):
    suite = load_suite([str(bad_folder)])
    assert sorted(c.id for c in suite.cases) == ["good-a", "good-b", "good-c", "same"]
    runner = Runner(RunConfig(dirs=[str(tmp_path)]))
    results = [runner.run_item(item) for item in runner.plan(suite)]
    assert sorted(r.id for r in results if r.outcome == "passed") == sorted(
        ["good-a", "good-b", "good-c", "same"]
    )
    errors = [r for r in results if r.outcome == "error"]
    assert len(errors) == len(BAD) + 1  # each bad file, and the second 'same'
    assert {Path(r.file).stem for r in errors} == {*BAD, "dup-2"}
    assert all(r.reason.startswith("invalid case: ") for r in results if r.outcome == "error")


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-2000:]


def test_validate_command_reports_every_problem_without_a_traceback(bad_folder):
    proc = subprocess.run(
        mmapconf("validate", str(bad_folder)), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    _no_traceback(proc)
    assert proc.returncode == 2
    for name, (_, (line, column), phrase) in BAD.items():
        where = f"{name}.yaml:{line}:{'' if column is None else f'{column}: '}"
        assert any(where in ln and phrase in ln for ln in proc.stderr.splitlines()), (
            name,
            proc.stderr,
        )
    assert "4 valid" in proc.stderr


def test_run_command_runs_the_good_cases_and_errs_the_bad_ones(bad_folder, tmp_path):
    report_dir = tmp_path / "report"
    proc = subprocess.run(
        mmapconf("run", str(bad_folder), "--report-dir", str(report_dir), "--dir", str(tmp_path)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _no_traceback(proc)
    assert proc.returncode == 1
    report = load_report(report_dir / "report.json")
    assert report["interrupted"] is False
    assert report["summary"]["passed"] == 4
    assert report["summary"]["error"] == len(BAD) + 1
    for r in report["results"]:
        if r["outcome"] == "error":
            assert r["backing"] == "invalid" and r["file"] and r["line"] >= 1


@pytest.mark.parametrize("command", ["list", "validate", "run"])
def test_a_missing_path_is_a_usage_error_not_a_traceback(tmp_path, command):
    proc = subprocess.run(
        mmapconf(command, str(tmp_path / "nowhere")),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    _no_traceback(proc)
    assert proc.returncode == 2
    assert "no such file or folder" in proc.stderr


def test_an_unreadable_case_file_is_a_problem(tmp_path):
    path = tmp_path / "dir.yaml"
    path.mkdir()  # a folder named like a case file, given directly
    (path / "inner.yaml").write_text(GOOD.format(id="inner"))
    suite = load_suite([str(path)])
    assert [c.id for c in suite.cases] == ["inner"]
