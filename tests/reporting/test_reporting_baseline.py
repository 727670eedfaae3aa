"""Baselines: validation with positions, applying, expiry, strict, and writing one from a run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from reporting_sample import make_report, with_kernel

from runner.lang.conditions import kernel_matches
from runner.report.baseline import (
    BaselineError,
    apply_baseline,
    make_baseline,
    parse_baseline,
)
from runner.report.model import gate_exit_code

TODAY = dt.date(2026, 11, 26)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "baseline.yaml"
    p.write_text(text)
    return p


GOOD = """\
version: 1
entries:
  - name: article-sigbus-past-eof[tmpfs]
    reason: tmpfs does not raise SIGBUS here (under investigation)
    evidence: https://example.org/bug/1
  - id: article-sem-shared
    backing: disk
    when: {kernel: ">=6.5", fs: ext4}
    reason: semaphore hangs on ext4
    evidence: checked by hand on two machines
    until: "7.0"
"""


def test_known_failures_do_not_fail_the_gate(tmp_path: Path) -> None:
    report = make_report(**{"article-private-cow[disk]": "passed"})
    assert gate_exit_code(report) == 1
    out = apply_baseline(report, write(tmp_path, GOOD), strict=False, today=TODAY)
    by = {r["name"]: r for r in out["results"]}
    r = by["article-sigbus-past-eof[tmpfs]"]
    assert r["outcome"] == "known" and r["original_outcome"] == "failed"
    assert r["reason"].startswith("main step 5 (load)")  # the original reason is kept
    assert r["baseline"]["evidence"] == "https://example.org/bug/1"
    assert r["baseline"]["line"] == 3
    assert by["article-sem-shared[disk]"]["outcome"] == "known"  # a timeout, when holds
    assert out["summary"]["known"] == 2 and out["summary"]["failed"] == 0
    assert out["summary"]["timeout"] == 0 and out["summary"]["total"] == 12
    assert out["baseline"]["known"] == [
        "article-sigbus-past-eof[tmpfs]",
        "article-sem-shared[disk]",
    ]
    assert out["baseline"]["problems"] == []
    assert gate_exit_code(out) == 0
    # the input is not modified
    assert report["results"][1]["outcome"] == "failed"


def test_error_outcomes_are_never_baselined(tmp_path: Path) -> None:
    b = write(tmp_path, "- name: article-private-cow[disk]\n  reason: r\n  evidence: e\n")
    out = apply_baseline(make_report(), b, strict=False, today=TODAY)
    assert {r["name"]: r["outcome"] for r in out["results"]}["article-private-cow[disk]"] == "error"


def test_when_condition_that_does_not_hold_leaves_the_failure(tmp_path: Path) -> None:
    b = write(
        tmp_path,
        "- name: article-sigbus-past-eof[tmpfs]\n  when: {kernel: '<6.0'}\n"
        "  reason: r\n  evidence: e\n",
    )
    out = apply_baseline(make_report(), b, strict=False, today=TODAY)
    assert out["results"][1]["outcome"] == "failed"
    assert gate_exit_code(out) == 1


def test_when_page_size_covers_only_runs_with_that_page_size(tmp_path: Path) -> None:
    b = write(
        tmp_path,
        "- name: article-sigbus-past-eof[tmpfs]\n  when: {page_size: [16384, 65536]}\n"
        "  reason: r\n  evidence: e\n",
    )
    outcomes = []
    for size in (4096, 16384, 65536):
        report = make_report()
        report["environment"]["page_size"] = size
        out = apply_baseline(report, b, strict=False, today=TODAY)
        outcomes.append(out["results"][1]["outcome"])
    assert outcomes == ["failed", "known", "known"]


def test_unknown_when_key_names_the_known_ones() -> None:
    with pytest.raises(BaselineError, match=r"unknown when key 'pagesize' \(known: .*page_size"):
        parse_baseline("- name: x[anon]\n  when: {pagesize: 4096}\n  reason: r\n  evidence: e\n")


def test_unexpected_pass_is_reported_and_fails_only_under_strict(tmp_path: Path) -> None:
    b = write(tmp_path, GOOD)
    report = make_report(
        **{
            "article-sigbus-past-eof[tmpfs]": "passed",
            "article-sem-shared[disk]": "passed",
            "article-private-cow[disk]": "passed",
        }
    )
    loose = apply_baseline(report, b, strict=False, today=TODAY)
    assert loose["baseline"]["unexpected_passes"] == [
        "article-sigbus-past-eof[tmpfs]",
        "article-sem-shared[disk]",
    ]
    assert loose["results"][1]["baseline"]["status"] == "unexpected-pass"
    assert gate_exit_code(loose) == 0
    strict = apply_baseline(report, b, strict=True, today=TODAY)
    assert len(strict["baseline"]["problems"]) == 2
    assert gate_exit_code(strict) == 1


def test_expiry_by_kernel_and_by_date(tmp_path: Path) -> None:
    b = write(tmp_path, GOOD + "    # second entry ends at 7.0\n")
    on_7 = apply_baseline(with_kernel(make_report(), "7.0.1-rc2"), b, strict=False, today=TODAY)
    (exp,) = on_7["baseline"]["expired"]
    assert exp["name"] == "article-sem-shared[disk]" and exp["line"] == 6
    assert "this kernel is 7.0.1-rc2" in on_7["baseline"]["problems"][0]
    assert {r["name"]: r["outcome"] for r in on_7["results"]}["article-sem-shared[disk]"] == (
        "timeout"  # an expired entry covers nothing
    )
    assert gate_exit_code(on_7) == 1

    dated = write(
        tmp_path,
        "- name: article-sigbus-past-eof[tmpfs]\n  reason: r\n  evidence: e\n  until: 2026-11-25\n",
    )
    out = apply_baseline(make_report(), dated, strict=False, today=TODAY)
    assert "until 2026-11-25 has passed" in out["baseline"]["problems"][0]
    on_the_day = apply_baseline(make_report(), dated, strict=False, today=dt.date(2026, 11, 25))
    assert on_the_day["baseline"]["expired"] == []


def test_id_without_backing_covers_every_backing_and_unmatched_is_listed(tmp_path: Path) -> None:
    report = make_report(**{"article-sigbus-past-eof[disk]": "failed"})
    b = write(
        tmp_path,
        "version: 1\nentries:\n"
        "  - {id: article-sigbus-past-eof, reason: r, evidence: e}\n"
        "  - {name: 'gone-case[disk]', reason: r, evidence: 'TODO: link'}\n",
    )
    out = apply_baseline(report, b, strict=False, today=TODAY)
    assert out["baseline"]["known"] == [
        "article-sigbus-past-eof[disk]",
        "article-sigbus-past-eof[tmpfs]",
    ]
    assert out["baseline"]["unexpected_passes"] == ["article-sigbus-past-eof[memfd]"]
    assert out["baseline"]["unmatched"] == ["gone-case[disk]"]
    assert "placeholder" in out["baseline"]["warnings"][0]


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("version: 1\nentries:\n  - name: a[disk]\n    reason: r\n", "3:5", "has no evidence"),
        (
            "- name: a[disk]\n  reason: r\n  evidence: e\n  colour: red\n",
            "4:3",
            "unknown entry key",
        ),
        ("- name: a\n  reason: r\n  evidence: e\n", "1:9", "expected ID[BACKING]"),
        ("- name: a[disk]\n  reason: r\n  evidence: e\n  until: soon\n", "4:10", "until 'soon'"),
        (
            "- name: a[disk]\n  reason: r\n  evidence: e\n  until: 2026-02-30\n",
            "4:10",
            "not a real date",
        ),
        (
            "- name: a[disk]\n  reason: r\n  evidence: e\n  when: {kernel: '6.x'}\n",
            "4:18",
            "when.kernel '6.x'",
        ),
        (
            "- name: a[disk]\n  reason: r\n  evidence: e\n  when: {distro: x}\n",
            "4:10",
            "unknown when key",
        ),
        ("- name: a[disk]\n  reason: ''\n  evidence: e\n", "2:11", "reason is empty"),
        (
            "- name: a[disk]\n  reason: r\n  evidence: e\n- name: a[disk]\n  reason: r2\n"
            "  evidence: e\n",
            "4:3",
            "duplicate entry for a[disk] (first at line 1)",
        ),
        ("version: 2\nentries: []\n", "1:10", "baseline version 1"),
        ("entries: {a: 1}\n", "1:10", "entries must be a list"),
        ("- name: [a\n", "2:1", "not valid YAML"),
        ("- name: a[disk]\n  id: a\n  reason: r\n  evidence: e\n", "1:3", "either name"),
    ],
)
def test_invalid_baselines_name_file_line_column(text: str, where: str, message: str) -> None:
    with pytest.raises(BaselineError) as exc:
        parse_baseline(text, "b.yaml")
    first = str(exc.value).splitlines()[0]
    assert first.startswith(f"b.yaml:{where}: "), first
    assert message in first


def test_every_problem_is_reported_at_once() -> None:
    text = "- name: a\n  reason: r\n  evidence: e\n- name: b[disk]\n  evidence: e\n"
    with pytest.raises(BaselineError) as exc:
        parse_baseline(text, "b.yaml")
    assert len(str(exc.value).splitlines()) == 2


def test_missing_baseline_file(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="no such baseline file"):
        apply_baseline(make_report(), tmp_path / "nope.yaml", strict=False)


def test_empty_baseline_is_valid(tmp_path: Path) -> None:
    out = apply_baseline(make_report(), write(tmp_path, ""), strict=True, today=TODAY)
    assert out["baseline"]["entries"] == 0 and gate_exit_code(out) == 1


@pytest.mark.parametrize(
    "release, cond, holds",
    [
        ("6.18.44-1-amd64", ">=6.5", True),
        ("6.18.44-1-amd64", ">=5.0, <6.5", False),
        ("6.4", ">=5.0, <6.5", True),
        ("6.5.0", "==6.5", True),
        ("6.5.1", "==6.5", True),  # a version without its third number names the series
        ("6.5.1", "!=6.4", True),
        ("garbage", ">=1", False),
    ],
)
def test_kernel_conditions(release: str, cond: str, holds: bool) -> None:
    assert kernel_matches(release, cond) is holds


def test_make_baseline_round_trips(tmp_path: Path) -> None:
    report = make_report()
    text = make_baseline(report)
    entries = parse_baseline(text, "generated.yaml")
    assert sorted(e.name for e in entries) == [
        "article-sem-shared[disk]",
        "article-sigbus-past-eof[tmpfs]",
    ]
    sem = next(e for e in entries if e.id == "article-sem-shared")
    assert sem.when == {"fs": ["ext4"]}  # the disk backing pins its filesystem
    assert sem.reason == "timed out after 10 s in reader step 4"
    assert sem.evidence.startswith("TODO")
    p = write(tmp_path, text)
    out = apply_baseline(report, p, strict=True, today=TODAY)
    # everything but the error is now known; the error still fails the gate
    assert out["summary"]["known"] == 2 and out["summary"]["error"] == 1
    assert len(out["baseline"]["warnings"]) == 2


def test_make_baseline_quotes_awkward_reasons() -> None:
    report = make_report()
    report["results"][1]["reason"] = 'a: b # c\n"quoted" \x01 ünïcode'
    (e, _) = parse_baseline(make_baseline(report), "g.yaml")
    assert e.reason == 'a: b # c\n"quoted" \x01 ünïcode'


def test_make_baseline_without_failures() -> None:
    report = make_report()
    report["results"] = [r for r in report["results"] if r["outcome"] == "passed"]
    assert parse_baseline(make_baseline(report)) == []
