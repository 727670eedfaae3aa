"""Which YAML files are case files: in a folder, those whose documents are cases; a file named
is loaded whatever it holds. The pytest plugin applies the same rule (tests/plugin)."""

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


def test_a_folder_gives_only_the_files_that_hold_cases(tmp_path: Path) -> None:
    suite = load_suite([str(_tree(tmp_path))])
    assert [c.id for c in suite.cases] == ["found-one"]
    # the file that does not parse but has a case's keys is reported, not passed over
    assert [Path(inv.file).name for inv in suite.invalid] == ["broken.yaml"]


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


def test_validate_counts_the_folders_cases(tmp_path: Path, capsys) -> None:
    (tmp_path / "area").mkdir()
    (tmp_path / "area" / "case.yaml").write_text(CASE)
    (tmp_path / "data.yaml").write_text("test_name: fetch\nstages: []\n")
    assert cli.main(["validate", str(tmp_path)]) == 0
    assert "1 cases valid" in capsys.readouterr().out
