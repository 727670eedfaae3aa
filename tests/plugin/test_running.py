"""Running items: outcomes, the failure display, skip reasons, report.json, and `mmapconf run`."""

from __future__ import annotations

import json
import os

import pytest
from plugin_support import (
    EXPECTED,
    EXPECTED_WITH_INVALID,
    PLUGIN,
    read_report,
    report_outcomes,
    write,
)
from reportcmp import differences

from runner.cli import main as cli

pytest_plugins = ["pytester"]


def test_outcomes_map_onto_pytest(demo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")  # where pytest would print a plain-text failure whole
    result = demo.runpytest(*PLUGIN, "cases", "--report-dir", "report", "-rA")
    result.assert_outcomes(passed=3, failed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            # the crash line is the engine's reason, not the whole display
            "ERROR cases/demo/demo.yaml::demo-error[[]memfd[]] - main step 2 (unlink): *",
            "FAILED cases/demo/demo.yaml::demo-fail[[]anon[]] - main step 2 (load): *",
        ]
    )
    assert report_outcomes(demo.path) == EXPECTED
    summary = result.stdout.str().split("short test summary info")[1]
    assert "title:" not in summary


def test_failure_shows_the_claim_and_a_step_trace(demo: pytest.Pytester) -> None:
    result = demo.runpytest(*PLUGIN, "cases", "-k", "demo-fail", "--report-dir", "report")
    result.stdout.fnmatch_lines(
        [
            "*_ demo-fail[[]anon[]] _*",
            "main step 2 (load): expected value {data: 'x'}, got success, value {hex 00}*",
            "",
            "case:    demo-fail[[]anon[]]  (failed)",
            "title:   A deliberately wrong expectation about fresh anonymous memory",
            "claim:   fresh anonymous memory reads as 'x' (it does not: it reads zeros)",
            "at:      cases/demo/demo.yaml:11",
            "",
            "  process  step  line  op    args * expected           observed",
            "  main     1     16    mmap  fd=-1, * success            success, value *",
            "> main     2     18    load  addr=m, length=1 * value {data: 'x'}  success, value {hex 00} (1 bytes)",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "conformance/" not in result.stdout.str()  # no frames of the plugin


def test_unmet_requirement_is_a_skip_with_its_reason(demo: pytest.Pytester) -> None:
    result = demo.runpytest(*PLUGIN, "cases", "-k", "demo-skip", "-rs", "--report-dir", "report")
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] cases/demo/demo.yaml:33: kernel <2.6 required*"])


def test_one_report_json_like_the_command_line(
    with_invalid: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = with_invalid.runpytest(*PLUGIN, "cases", "--report-dir", "report")
    result.stdout.fnmatch_lines(["*mmapconf report: *report.json*"])
    report = read_report(with_invalid.path)
    assert report_outcomes(with_invalid.path) == EXPECTED_WITH_INVALID
    assert report["summary"]["total"] == len(EXPECTED_WITH_INVALID)
    assert report["environment"]["kernel_release"] == os.uname().release
    assert report["environment"]["argv"][0] == "pytest"

    monkeypatch.chdir(with_invalid.path)
    assert cli.main(["run", "cases", "--report-dir", "cli"]) == 1
    assert differences(read_report(with_invalid.path, "cli"), report) == []


def test_no_report_without_cases(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "--report-dir", "report")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "report").exists()


DISK_CASE = """\
id: disk-read-back
title: A file on the filesystem under test maps and reads back
steps:
  - file: f
    data: "abc"
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_SHARED, fd: f}
    as: m
  - load: {addr: m, length: 3}
    expect: {value: {data: "abc"}}
"""


def test_dir_option_chooses_the_filesystem_under_test(demo: pytest.Pytester) -> None:
    write(demo.path, "cases/disk/disk.yaml", DISK_CASE)
    under_test = demo.mkdir("fs-under-test")
    args = ["cases/disk", "--backing", "disk", "--report-dir", "report", "-rs"]
    demo.runpytest(*PLUGIN, *args, "--dir", str(under_test)).assert_outcomes(passed=1)
    backing = read_report(demo.path)["environment"]["backings"]["disk"]
    assert backing["dir"] == str(under_test.resolve())

    result = demo.runpytest(*PLUGIN, *args, "--mmapconf-dir", str(demo.path / "missing"))
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*missing is not a writable folder*"])


def test_an_interrupted_run_still_writes_what_it_has(demo: pytest.Pytester) -> None:
    demo.makeconftest(
        """
        def pytest_runtest_call(item):
            if item.name == "demo-skip[anon]":
                raise KeyboardInterrupt
        """
    )
    # in a subprocess: pytester re-raises an in-process Ctrl-C into this session
    result = demo.runpytest_subprocess(*PLUGIN, "cases", "--report-dir", "report")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    report = read_report(demo.path)
    assert report["interrupted"] is True
    assert [r["name"] for r in report["results"]] == [
        "demo-pass[anon]",
        "demo-fail[anon]",
        "demo-sigbus[tmpfs]",
        "demo-sigbus[memfd]",
    ]


TIMEOUT_CASE = """\
id: waits-forever
title: Waits for an event nobody posts
timeout: 0.3
processes:
  a:
    steps:
      - wait_for: never
"""


def test_timeout_is_a_failure_named_timeout(demo: pytest.Pytester) -> None:
    write(demo.path, "cases/slow/slow.yaml", TIMEOUT_CASE)
    result = demo.runpytest(*PLUGIN, "cases/slow", "-v", "--report-dir", "report")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "cases/slow/slow.yaml::waits-forever[[]anon[]] TIMEOUT*",
            "timed out after 0.3 s; still running: a step 1 (wait_for)",
        ]
    )
    assert report_outcomes(demo.path) == {"waits-forever[anon]": "timeout"}


def test_a_baselined_failure_is_an_xfail_and_known_in_the_report(demo: pytest.Pytester) -> None:
    demo.makefile(
        ".yaml",
        known="""\
version: 1
entries:
  - name: "demo-fail[anon]"
    reason: a deviation we know of
    evidence: the self-test
""",
    )
    result = demo.runpytest(*PLUGIN, "cases", "--report-dir", "report", "--baseline", "known.yaml")
    # known has its own mark and word: not F/FAILED, nor pytest's x/XFAIL
    result.stdout.fnmatch_lines(
        ["cases/demo/demo.yaml .K..sE *", "*3 passed, 1 skipped, *1 error, 1 known*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # demo-error, not the known one
    verbose = demo.runpytest(*PLUGIN, "cases", "-v", "-k", "demo-fail", "--baseline", "known.yaml")
    verbose.stdout.fnmatch_lines(["*::demo-fail[[]anon[]] KNOWN*", "*1 known*"])
    assert verbose.ret == pytest.ExitCode.OK
    data = json.loads((demo.path / "report" / "report.json").read_text())
    known = [r for r in data["results"] if r["outcome"] == "known"]
    assert [r["name"] for r in known] == ["demo-fail[anon]"]
    assert data["summary"]["known"] == 1 and data["summary"]["failed"] == 0
