"""The shipped suite: every case validates, and cases/README.md is the page its cases make."""

from __future__ import annotations

from pathlib import Path

from runner.lang.catalogue import render_markdown
from runner.lang.loader import SUFFIXES, holds_cases, load_suite

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_case_validates():
    suite = load_suite([str(ROOT / "cases")])
    assert not suite.problems, [str(p) for p in suite.problems[:5]]
    assert len(suite.cases) >= 180
    # a folder's YAML that holds no case is passed over: none of the catalogue's may be
    files = [p for p in (ROOT / "cases").rglob("*") if p.suffix in SUFFIXES]
    assert files and all(holds_cases(p) for p in files)


def test_catalogue_page_is_current():
    cases = load_suite([str(ROOT / "cases")]).cases
    page = (ROOT / "cases" / "README.md").read_text()
    assert page == render_markdown(cases), (
        "cases/README.md is stale: mmapconf list --format md cases > cases/README.md"
    )
