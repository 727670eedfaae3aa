"""JUnit (validated against the shipped XSD), KTAP (by the grammar), Markdown and static HTML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest
from ktap_grammar import parse as parse_ktap
from reporting_sample import make_report

from runner.report.formats import parse_formats, write_formats
from runner.report.formats.html import render_html
from runner.report.formats.junit import render_junit
from runner.report.formats.ktap import render_ktap
from runner.report.formats.markdown import render_markdown
from runner.report.model import ReportError


def junit_schema():
    """The shipped XSD, loaded by xmlschema (a test dependency: pure Python, validates XSD 1.0)."""
    xmlschema = pytest.importorskip(
        "xmlschema", reason="xmlschema validates JUnit against its XSD: pip install xmlschema"
    )
    xsd = resources.files("runner.report.formats").joinpath("junit.xsd").read_text()
    return xmlschema.XMLSchema(xsd)


def test_write_formats_writes_the_four_files(tmp_path: Path) -> None:
    written = write_formats(make_report(), tmp_path, ["json", "junit", "html", "md", "ktap"])
    assert [p.name for p in written] == ["report.xml", "report.html", "report.md", "report.ktap"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_parse_formats() -> None:
    assert parse_formats("junit, html,md") == ["junit", "html", "md"]
    assert parse_formats("all") == ["json", "junit", "html", "md", "ktap", "ltp"]
    assert parse_formats("xml,markdown,tap,kirk") == ["junit", "md", "ktap", "ltp"]
    with pytest.raises(ReportError, match="unknown report format 'pdf'"):
        parse_formats("junit,pdf")


def test_junit_is_valid_against_the_schema_and_counts_match() -> None:
    report = make_report()
    text = render_junit(report)
    junit_schema().validate(text)
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    assert int(root.get("tests")) == report["summary"]["total"] == 12
    # timeout counts as a failure (typed), error as an error, skipped as skipped.
    assert int(root.get("failures")) == 2
    assert int(root.get("errors")) == 1
    assert int(root.get("skipped")) == 1
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"mmapconf[disk]", "mmapconf[tmpfs]", "mmapconf[memfd]", "mmapconf[anon]"}
    assert sum(int(s.get("tests")) for s in suites.values()) == 12


def test_junit_testcase_properties_and_elements() -> None:
    root = ET.fromstring(render_junit(make_report()))
    cases = {c.get("name"): c for c in root.iter("testcase")}

    def props(name: str) -> dict[str, str]:
        return {p.get("name"): p.get("value") for p in cases[name].find("properties")}

    p = props("article-sigbus-past-eof[disk]")
    assert p["kernel_release"] == "6.18.44-1-amd64"
    assert (p["backing"], p["filesystem"]) == ("disk", "ext4")
    assert p["observed_signal"] == "SIGBUS/BUS_ADRERR"
    assert props("article-rdonly-shared-write[disk]")["observed_errno"] == "EACCES"
    assert props("article-munmap-segv[anon]")["observed_signal"] == "SIGSEGV/SEGV_MAPERR"
    failed = cases["article-sigbus-past-eof[tmpfs]"].find("failure")
    assert failed.get("type") == "failed"
    assert "expected SIGBUS/BUS_ADRERR" in failed.get("message")
    assert re.search(r"^> main +5 .* load ", failed.text, re.M)
    assert cases["article-sem-shared[disk]"].find("failure").get("type") == "timeout"
    assert cases["article-private-cow[disk]"].find("error") is not None
    assert cases["article-msync-dirty[tmpfs]"].find("skipped").get("message") == (
        "requires syscall cachestat"
    )
    assert cases["article-sigbus-past-eof[tmpfs]"].get("classname") == "mmapconf.article.sigbus"


def test_junit_survives_control_characters_and_markup() -> None:
    text = render_junit(make_report())
    ET.fromstring(text)  # would raise on a raw \x01
    assert "\x01" not in text


def test_junit_known_and_flaky_and_unknown_outcomes_stay_valid() -> None:
    report = make_report()
    report["results"][1]["outcome"] = "known"
    report["results"][2]["outcome"] = "flaky"
    report["results"][2]["outcomes_seen"] = ["failed", "passed"]
    report["results"][3]["outcome"] = "weird-new-outcome"
    text = render_junit(report)
    junit_schema().validate(text)
    cases = {c.get("name"): c for c in ET.fromstring(text).iter("testcase")}
    assert cases["article-sigbus-past-eof[tmpfs]"].find("skipped").get("type") == "known"
    assert len(list(cases["article-sigbus-past-eof[memfd]"])) == 2  # properties, system-out
    assert cases["article-rdonly-shared-write[disk]"].find("error").get("type") == (
        "weird-new-outcome"
    )


def test_ktap_follows_the_grammar_and_maps_outcomes() -> None:
    report = make_report()
    results = parse_ktap(render_ktap(report))
    assert len(results) == len(report["results"])
    by_name = {r.description: r for r in results}
    assert by_name["article-sigbus-past-eof[disk]"].ok
    fail = by_name["article-sigbus-past-eof[tmpfs]"]
    assert not fail.ok and fail.directive is None
    assert "expected SIGBUS/BUS_ADRERR" in fail.diagnostics[0]
    skip = by_name["article-msync-dirty[tmpfs]"]
    assert skip.ok and skip.directive == "SKIP" and skip.data == "requires syscall cachestat"
    timeout = by_name["article-sem-shared[disk]"]
    assert not timeout.ok and timeout.directive == "TIMEOUT"
    error = by_name["article-private-cow[disk]"]
    assert not error.ok and error.directive == "ERROR"


def test_ktap_known_is_xfail_and_odd_text_stays_in_grammar() -> None:
    report = make_report()
    report["results"][1]["outcome"] = "known"
    report["results"][1]["reason"] = "line one\nline two # with hash"
    report["results"][0]["name"] = "weird # name[disk]"
    report["results"][4]["outcome"] = "brand-new"
    report["results"][4]["reason"] = "multi\nline"
    report["interrupted"] = True
    results = parse_ktap(render_ktap(report))
    known = results[1]
    assert known.ok and known.directive == "XFAIL" and "line one line two" in known.data
    assert "#" not in results[0].description
    assert not results[4].ok


def test_markdown_summary() -> None:
    md = render_markdown(make_report())
    assert md.startswith("## mmapconf: ❌ failed")
    assert "| ✅ passed | 8 |" in md and "| **total** | **12** |" in md
    assert "`article-sigbus-past-eof[tmpfs]`" in md
    assert "<b>" not in md.replace("<details>", "")  # case text never becomes markup
    # every table row has the same number of cells as its header
    for block in re.findall(r"(?:^\|.*\|\n)+", md, flags=re.M):
        rows = block.strip().split("\n")
        widths = {len(re.findall(r"(?<!\\)\|", r)) for r in rows}
        assert len(widths) == 1, block


def test_markdown_all_passed() -> None:
    report = make_report()
    for r in report["results"]:
        r["outcome"], r["reason"] = "passed", ""
    md = render_markdown(report)
    assert md.startswith("## mmapconf: ✅ passed")
    assert "<details>" not in md


def test_html_is_self_contained_and_escaped() -> None:
    page = render_html(make_report())
    assert "<b>not bold</b>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # nothing to load from anywhere: no src= or href= attributes, no @import, no url(
    assert not re.search(r"\b(src|href)\s*=", page)
    assert "@import" not in page and "url(" not in page
    assert page.count('<tr class="result"') == 12
    assert 'id="count-failed">1<' in page and 'id="count-total">12<' in page
