"""Which YAML files are case files. mmapconf takes every YAML file it is given or finds in a
folder, and reports the one that is not a case; the pytest plugin, which runs in other
projects' sessions, collects only the files that hold cases (``holds_cases``; tests/plugin)."""

from __future__ import annotations

from pathlib import Path

from runner.cli import main as cli
from runner.lang.loader import holds_cases, load_suite

CASE = """\
id: found-one
title: An anonymous mapping
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS}
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "case.yaml").write_text(CASE)
    (tmp_path / "data.yaml").write_text("test_name: fetch\nstages: []\n")
    (tmp_path / "list.yml").write_text("- id: 1\n  steps: []\n")
    (tmp_path / "broken.yaml").write_text("id: half\ntitle: 'never closed\nsteps: []\n")
    return tmp_path


def test_mmapconf_reports_the_yaml_of_a_folder_that_is_not_a_case(tmp_path: Path) -> None:
    suite = load_suite([str(_tree(tmp_path))])
    assert [c.id for c in suite.cases] == ["found-one"]
    invalid = sorted(Path(inv.file).name for inv in suite.invalid)
    assert invalid == ["broken.yaml", "data.yaml", "list.yml"]


def test_a_named_file_is_loaded_whatever_it_holds(tmp_path: Path) -> None:
    _tree(tmp_path)
    suite = load_suite([str(tmp_path / "data.yaml")])
    assert not suite.cases and "unknown key" in str(suite.problems[0])


def test_holds_cases(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert holds_cases(tmp_path / "area" / "case.yaml")
    assert holds_cases(tmp_path / "broken.yaml")
    assert not holds_cases(tmp_path / "data.yaml")
    assert not holds_cases(tmp_path / "list.yml")


def test_validate_names_the_stray_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "case.yaml").write_text(CASE)
    (tmp_path / "data.yaml").write_text("test_name: fetch\nstages: []\n")
    assert cli.main(["validate", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "data.yaml:1:1: test_name: unknown key" in captured.err
    assert "1 valid" in captured.err
