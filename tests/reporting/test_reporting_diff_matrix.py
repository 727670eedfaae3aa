"""Diff and matrix semantics on hand-made reports."""

from __future__ import annotations

import json

import pytest
from reporting_sample import make_report, result, with_kernel

from runner.report.diff import diff_exit_code, diff_reports, render_diff_json, render_diff_text
from runner.report.matrix import (
    build_matrix,
    render_matrix_html,
    render_matrix_markdown,
    render_matrix_text,
)
from runner.report.model import ReportError


def keys(items: list[dict]) -> list[str]:
    return [e["key"] for e in items]


def test_diff_sections() -> None:
    base = make_report()
    new = make_report(
        **{
            "article-page-size[anon]": "failed",  # regression
            "article-munmap-segv[anon]": "timeout",  # regression
            "article-fork-shared-anon[anon]": "error",  # regression
            "article-sigbus-past-eof[tmpfs]": "passed",  # fix
            "article-msync-dirty[disk]": "skipped",  # other change
        }
    )
    new["results"] = [r for r in new["results"] if r["id"] != "article-private-cow"]
    new["results"].append(result("brand-new-case", "tmpfs", "failed", "new and failing"))
    d = diff_reports(base, new, names=("a.json", "b.json"))
    assert keys(d["regressions"]) == [
        "article-fork-shared-anon[anon]",
        "article-munmap-segv[anon]",
        "article-page-size[anon]",
    ]
    assert d["regressions"][0] == {
        "key": "article-fork-shared-anon[anon]",
        "before": "passed",
        "after": "error",
        "reason": "",
    }
    assert keys(d["fixes"]) == ["article-sigbus-past-eof[tmpfs]"]
    assert keys(d["new"]) == ["brand-new-case[tmpfs]"]
    assert keys(d["vanished"]) == ["article-private-cow[disk]"]
    assert keys(d["changed"]) == ["article-msync-dirty[disk]"]
    assert d["unchanged"] == 6
    assert diff_exit_code(d) == 1
    text = render_diff_text(d)
    assert "REGRESSIONS: 3" in text and "verdict: REGRESSED" in text
    assert "  article-page-size[anon]: passed -> failed" in text
    assert json.loads(render_diff_json(d))["regressions"][2]["after"] == "failed"


def test_diff_without_regression_exits_0() -> None:
    d = diff_reports(make_report(), make_report(**{"article-sigbus-past-eof[tmpfs]": "passed"}))
    assert diff_exit_code(d) == 0 and d["regressions"] == []
    assert "verdict: no regression" in render_diff_text(d)


def test_known_to_passed_is_a_fix_and_failed_to_known_is_not_a_regression() -> None:
    base = make_report(**{"article-sigbus-past-eof[tmpfs]": "known"})
    d = diff_reports(base, make_report(**{"article-sigbus-past-eof[tmpfs]": "passed"}))
    assert keys(d["fixes"]) == ["article-sigbus-past-eof[tmpfs]"]
    d = diff_reports(make_report(), base)
    assert d["regressions"] == [] and keys(d["changed"]) == ["article-sigbus-past-eof[tmpfs]"]


def test_diff_by_id_across_backings() -> None:
    disk = make_report()
    disk["results"] = [r for r in disk["results"] if r["backing"] in ("disk", "anon")]
    tmpfs = make_report()
    tmpfs["results"] = [r for r in tmpfs["results"] if r["backing"] in ("tmpfs", "anon")]
    by_name = diff_reports(disk, tmpfs)
    assert len(by_name["new"]) == 3 and len(by_name["vanished"]) == 5
    by_id = diff_reports(disk, tmpfs, by="id")
    assert keys(by_id["regressions"]) == ["article-sigbus-past-eof"]
    assert keys(by_id["vanished"]) == ["article-private-cow", "article-sem-shared"]
    with pytest.raises(ReportError, match="several backings"):
        diff_reports(make_report(), make_report(), by="id")


def test_matrix_columns_rows_and_disagreement_first() -> None:
    a = make_report()
    b = with_kernel(make_report(**{"article-page-size[anon]": "failed"}), "6.1.0-28-amd64")
    m = build_matrix([("a.json", a), ("b.json", b)])
    labels = [c["label"] for c in m["columns"]]
    assert labels == [
        "6.18.44-1-amd64 disk/ext4",
        "6.18.44-1-amd64 tmpfs/tmpfs",
        "6.18.44-1-amd64 memfd/tmpfs",
        "6.18.44-1-amd64 anon/-",
        "6.1.0-28-amd64 disk/ext4",
        "6.1.0-28-amd64 tmpfs/tmpfs",
        "6.1.0-28-amd64 memfd/tmpfs",
        "6.1.0-28-amd64 anon/-",
    ]
    ids = [r["id"] for r in m["rows"]]
    disagree = [r["id"] for r in m["rows"] if r["disagree"]]
    # page-size (fails on 6.1) and sigbus (fails on tmpfs) first: disagreements with a failure;
    # then msync-dirty (skipped on tmpfs, passed elsewhere)
    assert disagree == ["article-page-size", "article-sigbus-past-eof", "article-msync-dirty"]
    assert ids[:3] == disagree and m["disagreeing"] == 3
    # error and timeout cases run only on disk: consistent across kernels, so they agree
    row = next(r for r in m["rows"] if r["id"] == "article-sem-shared")
    assert not row["disagree"] and row["cells"][0] == ["timeout"] and row["cells"][1] is None


def test_matrix_merges_repeated_environments() -> None:
    a = make_report()
    b = make_report(**{"article-page-size[anon]": "failed"})
    m = build_matrix([("a.json", a), ("b.json", b)])
    assert len(m["columns"]) == 4
    row = next(r for r in m["rows"] if r["id"] == "article-page-size")
    assert row["disagree"] and row["cells"][3] == ["passed", "failed"]
    assert m["columns"][3]["sources"] == ["a.json", "b.json"]


def test_matrix_renderings() -> None:
    a = make_report()
    b = with_kernel(make_report(**{"article-page-size[anon]": "failed"}), "6.1.0-28-amd64")
    m = build_matrix([("a.json", a), ("b.json", b)])
    text = render_matrix_text(m)
    lines = text.splitlines()
    assert "  [1] Linux 6.18.44-1-amd64 disk/ext4  (a.json)" in lines
    row = next(x for x in lines if "article-page-size" in x)
    # anon ran in column 4 (6.18: pass) and column 8 (6.1: FAIL); elsewhere not run
    assert row.split() == ["!", "article-page-size", "·", "·", "·", "pass", "·", "·", "·", "FAIL"]
    assert "3 where environments disagree" in text
    md = render_matrix_markdown(m)
    assert "| **`article-msync-dirty`** |" in md
    assert md.count("\n|") == len(m["rows"]) + 2  # header, separator, one line per row
    page = render_matrix_html(m)
    assert page.count('<tr class="disagree">') == 3 and 'id="disagreeing">3<' in page


def test_matrix_puts_consistent_failures_after_disagreements() -> None:
    a = make_report()
    b = with_kernel(make_report(), "6.1.0")
    ids = [r["id"] for r in build_matrix([("a", a), ("b", b)])["rows"]]
    # disagreements first (sigbus fails on tmpfs only, so before msync-dirty's skip); then the
    # error and the timeout, which fail on both kernels
    assert ids[:2] == ["article-sigbus-past-eof", "article-msync-dirty"]
    assert ids[2:4] == ["article-private-cow", "article-sem-shared"]
