"""The catalogue that comes with mmapconf: what runs with no paths and no ./cases, its baseline
by default, ``mmapconf schema``, ``--version``, and known deviations marked as known while a run
goes. The wheel itself is built and installed in test_wheel.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.cli import main as cli
from runner.lang import shipped

ROOT = Path(__file__).resolve().parents[2]

FAILING = """\
id: always-wrong
title: Fresh anonymous memory does not read as 'x'
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS}
    as: m
  - load: {addr: m, length: 1}
    expect: {value: {data: "x"}}
"""

BASELINE = """\
version: 1
entries:
  - name: "always-wrong[anon]"
    reason: the self-test's own deviation
    evidence: tests/cli/test_shipped.py
"""


def test_the_source_tree_is_the_shipped_catalogue_here() -> None:
    assert shipped.shipped_cases() == ROOT / "cases"
    assert shipped.schema_path() == ROOT / "cases" / "schema.json"
    assert shipped.shipped_baseline() == ROOT / "baselines" / "linux.yaml"


def test_no_paths_and_no_cases_folder_means_the_shipped_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate"]) == 0
    captured = capsys.readouterr()
    assert f"the shipped catalogue, {ROOT / 'cases'}" in captured.err
    assert f"{len(list(_shipped_cases()))} cases valid" in captured.out
    assert cli.main(["list", "-k", "sigbus-past-eof"]) == 0
    assert "02-sigbus-past-eof.yaml" in capsys.readouterr().out


def _shipped_cases():
    from runner.lang.loader import load_suite

    return load_suite([str(ROOT / "cases")]).cases


def test_a_local_cases_folder_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "one.yaml").write_text(FAILING)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate"]) == 0
    captured = capsys.readouterr()
    assert "1 cases valid" in captured.out and "shipped" not in captured.err


def test_the_shipped_catalogue_runs_with_its_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    status = cli.main(["run", "-k", "sigbus-past-eof or mmap-max-map-count", "--backing", "tmpfs"])
    out = capsys.readouterr().out
    assert "cases: the catalogue shipped with mmapconf" in out
    assert f"baseline {ROOT / 'baselines' / 'linux.yaml'}:" in out
    report = json.loads((tmp_path / "reports" / "latest" / "report.json").read_text())
    assert report["baseline"]["file"] == str(ROOT / "baselines" / "linux.yaml")
    assert status == (1 if report["summary"]["failed"] else 0)
    cli.main(["run", "-k", "sigbus-past-eof", "--backing", "tmpfs", "--no-baseline"])
    assert "baseline" not in capsys.readouterr().out
    report = json.loads((tmp_path / "reports" / "latest" / "report.json").read_text())
    assert "baseline" not in report


def test_schema_prints_the_schema_or_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(shipped.schema_path().read_text())
    assert cli.main(["schema", "--path"]) == 0
    assert capsys.readouterr().out == f"{shipped.schema_path()}\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("mmapconf 0.")


@pytest.mark.parametrize("verbose", [False, True])
def test_a_known_deviation_is_marked_known_while_the_run_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    (tmp_path / "case.yaml").write_text(FAILING)
    (tmp_path / "known.yaml").write_text(BASELINE)
    argv = ["run", str(tmp_path / "case.yaml"), "--report-dir", str(tmp_path / "r")]
    assert cli.main([*argv, "--baseline", str(tmp_path / "known.yaml"), *(["-v"] * verbose)]) == 0
    out = capsys.readouterr().out
    progress = out.splitlines()[0]
    if verbose:
        assert progress.startswith("[1/1] KNOWN   always-wrong[anon]  main step 2 (load)")
    else:
        assert progress == "K [1/1]"
    assert "1 known" in out
    assert cli.main(argv) == 1  # without the baseline it is a failure, marked F
    assert capsys.readouterr().out.startswith("F [1/1]")
