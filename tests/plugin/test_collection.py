"""Collection: node ids, markers from tags, -k over ids/titles/tags, options, invalid files."""

from __future__ import annotations

import pytest
from plugin_support import INVALID, PLUGIN, write

pytest_plugins = ["pytester"]


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def test_each_case_and_backing_is_one_item(demo: pytest.Pytester) -> None:
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q", "cases")
    assert collected(result) == [
        "cases/demo/demo.yaml::demo-pass[anon]",
        "cases/demo/demo.yaml::demo-fail[anon]",
        "cases/demo/demo.yaml::demo-sigbus[tmpfs]",
        "cases/demo/demo.yaml::demo-sigbus[memfd]",
        "cases/demo/demo.yaml::demo-skip[anon]",
        "cases/demo/demo.yaml::demo-error[memfd]",
    ]


def test_tags_are_registered_markers(demo: pytest.Pytester) -> None:
    result = demo.runpytest(
        *PLUGIN, "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning",
        "-m", "sigbus", "--collect-only", "-q", "cases",
    )  # fmt: skip
    assert collected(result) == [
        "cases/demo/demo.yaml::demo-sigbus[tmpfs]",
        "cases/demo/demo.yaml::demo-sigbus[memfd]",
    ]
    assert result.ret == 0


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("smoke", ["demo-pass[anon]"]),  # a tag
        ("deliberately", ["demo-fail[anon]"]),  # a word of the title
        ("demo-skip", ["demo-skip[anon]"]),  # the id
        ("anonmem and not smoke", ["demo-fail[anon]"]),
    ],
)
def test_k_matches_ids_titles_and_tags(
    demo: pytest.Pytester, expr: str, expected: list[str]
) -> None:
    result = demo.runpytest(*PLUGIN, "-k", expr, "--collect-only", "-q", "cases")
    assert [line.rpartition("::")[2] for line in collected(result)] == expected


@pytest.mark.parametrize("option", ["--backing", "--mmapconf-backing"])
def test_backing_option_limits_file_cases(demo: pytest.Pytester, option: str) -> None:
    result = demo.runpytest(*PLUGIN, option, "tmpfs", "--collect-only", "-q", "cases")
    names = [line.rpartition("::")[2] for line in collected(result)]
    assert "demo-sigbus[tmpfs]" in names
    assert "demo-sigbus[memfd]" not in names
    assert "demo-pass[anon]" in names  # cases without files keep running, as on the CLI


def test_unknown_backing_is_a_usage_error(demo: pytest.Pytester) -> None:
    result = demo.runpytest(*PLUGIN, "--backing", "floppy", "cases")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backing floppy*"])


def test_invalid_document_fails_collection_with_its_location(
    with_invalid: pytest.Pytester,
) -> None:
    result = with_invalid.runpytest(*PLUGIN, "cases", "--report-dir", "report")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting cases/other/invalid.yaml*",
            "invalid case broken-op[invalid] at cases/other/invalid.yaml:1:",
            "cases/other/invalid.yaml:4:5: step 1: a step needs exactly one operation*",
        ]
    )
    # like `mmapconf run`, the rest still runs; the run as a whole fails
    result.assert_outcomes(passed=4, failed=1, skipped=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_other_collection_errors_still_stop_the_run(with_invalid: pytest.Pytester) -> None:
    with_invalid.makepyfile(test_broken="def test_x(:\n    pass\n")
    result = with_invalid.runpytest(*PLUGIN, "cases", "test_broken.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*Interrupted: 2 errors during collection*"])


def test_duplicate_id_across_files_is_invalid(demo: pytest.Pytester) -> None:
    write(
        demo.path,
        "cases/zz/dup.yaml",
        INVALID.split("---\n")[1].replace("fine-after-broken", "demo-pass"),
    )
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q", "cases")
    result.stdout.fnmatch_lines(
        ["*: id: duplicate id 'demo-pass', first at cases/demo/demo.yaml:1"]
    )


def test_entry_point_is_declared() -> None:
    from importlib import metadata

    try:
        metadata.distribution("mmapconf")
    except metadata.PackageNotFoundError:
        pytest.skip("mmapconf is not installed: only -p conformance can load the plugin")
    names = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    assert names.get("conformance") == "conformance"
