"""The KTAP checker itself, against the spec's own examples and some broken documents."""

from __future__ import annotations

import pytest
from ktap_grammar import KtapError, parse

SPEC_EXAMPLE = """KTAP version 1
1..1
  KTAP version 1
  1..3
    KTAP version 1
    1..1
    # test_1: initializing test_1
    ok 1 test_1
  ok 1 example_test_1
    KTAP version 1
    1..2
    ok 1 test_1 # SKIP test_1 skipped
    ok 2 test_2
  ok 2 example_test_2
    KTAP version 1
    1..3
    ok 1 test_1
    # test_2: FAIL
    not ok 2 test_2
    ok 3 test_3 # SKIP test_3 skipped
  not ok 3 example_test_3
not ok 1 main_test
"""


def test_spec_example_parses_with_its_hierarchy() -> None:
    (main,) = parse(SPEC_EXAMPLE)
    assert main.description == "main_test" and not main.ok
    assert [s.description for s in main.subtests] == [
        "example_test_1",
        "example_test_2",
        "example_test_3",
    ]
    assert main.subtests[1].subtests[0].directive == "SKIP"
    assert main.subtests[1].subtests[0].data == "test_1 skipped"
    assert main.subtests[2].subtests[1].diagnostics == ["test_2: FAIL"]


@pytest.mark.parametrize(
    "line, directive, data",
    [
        (
            "ok 1 test # SKIP necessary dependency unavailable",
            "SKIP",
            "necessary dependency unavailable",
        ),
        ("not ok 1 test # TIMEOUT 30 seconds", "TIMEOUT", "30 seconds"),
        ("ok 1 check return code # rcode=0", None, "rcode=0"),
        ("ok 1 x # XFAIL known", "XFAIL", "known"),
        ("ok 1", None, ""),
    ],
)
def test_spec_result_lines(line: str, directive: str | None, data: str) -> None:
    (r,) = parse(f"KTAP version 1\n1..1\n{line}\n")
    assert (r.directive, r.data) == (directive, data)


@pytest.mark.parametrize(
    "doc",
    [
        "1..1\nok 1 a\n",  # no version line
        "KTAP version 1\n1..2\nok 1 a\n",  # plan mismatch
        "KTAP version 1\n1..2\nok 1 a\nok 3 b\n",  # numbering gap
        "KTAP version 1\n1..1\nok 1 a # TIMEOUT 3 s\n",  # TIMEOUT must be not ok
        "KTAP version 1\n1..1\nok 1 a\nstray text\n",  # unknown line
        "KTAP version 1\n1..1\nok 1 a\n\n",  # empty line
        "KTAP version 1\n1..1\n  KTAP version 1\n  1..1\n  ok 1 x\n",  # subtest without result
    ],
)
def test_broken_documents_are_rejected(doc: str) -> None:
    with pytest.raises(KtapError):
        parse(doc)
