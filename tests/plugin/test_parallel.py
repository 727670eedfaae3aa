"""xdist and pytest-forked: the same outcomes as a serial run, one merged report.json, JUnit
properties that cross from the workers, and nothing lost when a worker dies."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from plugin_support import (
    EXPECTED_WITH_INVALID,
    FORKED,
    PLUGIN,
    XDIST,
    read_report,
    report_outcomes,
)
from reportcmp import differences

from runner.cli import main as cli

pytest_plugins = ["pytester"]


def test_xdist_gives_the_serial_outcomes_and_one_report(with_invalid: pytest.Pytester) -> None:
    serial = with_invalid.runpytest(*PLUGIN, "cases", "--report-dir", "serial")
    parallel = with_invalid.runpytest_subprocess(
        *PLUGIN, *XDIST, "-n", "2", "cases", "--report-dir", "parallel"
    )
    assert counts(parallel) == counts(serial)
    assert report_outcomes(with_invalid.path, "parallel") == EXPECTED_WITH_INVALID
    assert differences(read_report(with_invalid.path, "serial"),
                       read_report(with_invalid.path, "parallel")) == []  # fmt: skip
    assert sorted(p.name for p in (with_invalid.path / "parallel").iterdir()) == ["report.json"]


def counts(result: pytest.RunResult) -> dict[str, int]:
    # warnings are no outcome: an in-process run warns that the already imported plugin
    # cannot be assertion-rewritten, a subprocess does not
    return {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}


def require_working_forked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    plain = pytester.runpytest_subprocess(*FORKED, "--forked", "test_plain.py")
    if plain.ret != 0:  # e.g. pytest-forked 1.7.5 under pytest 9.2: see pyproject.toml
        pytest.skip(f"pytest-forked cannot run even a plain test here: {plain.outlines[-1]}")


def test_forked_gives_the_serial_outcomes(with_invalid: pytest.Pytester) -> None:
    require_working_forked(with_invalid)
    result = with_invalid.runpytest_subprocess(
        *PLUGIN, *FORKED, "--forked", "cases", "--report-dir", "forked"
    )
    result.assert_outcomes(passed=4, failed=1, skipped=1, errors=2)
    assert report_outcomes(with_invalid.path, "forked") == EXPECTED_WITH_INVALID


def junit_properties(path: Path) -> dict[str, list[tuple[str, str]]]:
    return {
        str(tc.get("name")): [
            (str(p.get("name")), str(p.get("value"))) for p in tc.iter("property")
        ]
        for tc in ET.parse(path).getroot().iter("testcase")
    }


def test_junit_properties_survive_xdist_as_mmapconf_run_names_them(
    demo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo.runpytest_subprocess(
        *PLUGIN, *XDIST, "-n", "2", "cases", "--junitxml", "junit.xml", "--report-dir", "r"
    )
    cases = {name: dict(props) for name, props in junit_properties(demo.path / "junit.xml").items()}
    sigbus = cases["demo-sigbus[tmpfs]"]
    assert sigbus["backing"] == "tmpfs"
    assert sigbus["filesystem"] == "tmpfs"
    assert sigbus["observed_signal"] == "SIGBUS/BUS_ADRERR"
    assert sigbus["kernel_release"]
    assert cases["demo-error[memfd]"]["outcome"] == "error"
    assert "filesystem" not in cases["demo-pass[anon]"]
    # the same properties, by name and value, as the JUnit file of `mmapconf run`
    monkeypatch.chdir(demo.path)
    cli.main(["run", "cases", "--format", "junit", "--report-dir", "cli"])
    assert junit_properties(demo.path / "cli" / "report.xml") == junit_properties(
        demo.path / "junit.xml"
    )
    # the engine's one-line reason, not the whole display
    root = ET.parse(demo.path / "junit.xml").getroot()
    failed = next(tc for tc in root.iter("testcase") if tc.get("name") == "demo-fail[anon]")
    message = failed.find("failure").get("message")  # type: ignore[union-attr]
    assert message.startswith("main step 2 (load): expected value")
    assert "\n" not in message


# a conftest that kills the process running demo-pass, as a crash in the harness would
KILL_DEMO_PASS = """
import os, signal

def pytest_runtest_call(item):
    if item.name == "demo-pass[anon]":
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_dead_worker_loses_no_other_result(demo: pytest.Pytester) -> None:
    demo.makeconftest(KILL_DEMO_PASS)
    result = demo.runpytest_subprocess(*PLUGIN, *XDIST, "-n", "2", "cases", "--report-dir", "r")
    result.stdout.fnmatch_lines(["*worker*crashed*"])
    report = read_report(demo.path, "r")
    by_name = {r["name"]: r for r in report["results"]}
    assert len(by_name) == 6
    assert by_name["demo-pass[anon]"]["outcome"] == "error"
    assert "crashed" in by_name["demo-pass[anon]"]["reason"]
    assert by_name["demo-sigbus[memfd]"]["outcome"] == "passed"


def test_a_dead_forked_child_loses_no_other_result(demo: pytest.Pytester) -> None:
    require_working_forked(demo)
    demo.makeconftest(KILL_DEMO_PASS)
    result = demo.runpytest_subprocess(*PLUGIN, *FORKED, "--forked", "cases", "--report-dir", "r")
    result.stdout.fnmatch_lines(["*CRASHED with signal 9*"])
    by_name = {r["name"]: r for r in read_report(demo.path, "r")["results"]}
    assert len(by_name) == 6
    assert by_name["demo-pass[anon]"]["outcome"] == "error"
    assert by_name["demo-pass[anon]"]["line"] == 1
    assert by_name["demo-fail[anon]"]["outcome"] == "failed"
