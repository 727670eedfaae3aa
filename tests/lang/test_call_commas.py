"""A call's comma inside a flow mapping (`{addr: align_up(m, PAGE)}`) is part of the expression,
not the end of the scalar; quotes, comments and every position stay as written."""

from __future__ import annotations

import pytest
from native_util import problems

from runner.lang.yamlsafe import parse_documents, protect_call_commas


def load(text: str) -> object:
    docs, errors = parse_documents(text.encode(), "t.yaml")
    assert not errors, errors
    return docs[0].data


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{addr: align_up(m, PAGE), length: 4}", {"addr": "align_up(m, PAGE)", "length": 4}),
        (
            "{a: align_down(max(x, 1), PAGE) + min(a, b)}",
            {"a": "align_down(max(x, 1), PAGE) + min(a, b)"},
        ),
        ("[align_up(m, 2), 3]", ["align_up(m, 2)", 3]),
        ('{a: "x, y", b: (1, 2)}', {"a": "x, y", "b": "(1", "2)": None}),  # not a call: YAML's
        ("{a: 'align_up(m, 2)'}", {"a": "align_up(m, 2)"}),
    ],
)
def test_call_commas_stay_in_their_scalar(text, expected):
    assert load(text) == expected


def test_only_calls_outside_quotes_and_comments_change_and_in_place():
    line = "  - load: {addr: align_up(m, PAGE)}  # see min(a, b)"
    out = protect_call_commas(line)
    assert len(out) == len(line)
    assert out.index("\ue000") == line.index(",")
    assert out.count("\ue000") == 1
    assert protect_call_commas('{a: "min(a, b)"}') == '{a: "min(a, b)"}'


def test_a_file_holding_the_placeholder_is_left_as_written():
    text = '{a: align_up(m, 2), b: "\ue000"}'
    assert protect_call_commas(text) == text


def test_positions_after_a_call_are_unchanged(tmp_path):
    text = (
        "id: c\ntitle: t\nsteps:\n"
        "  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}\n"
        "    as: m\n"
        "  - load: {addr: align_up(m, PAGE), length: nope}\n"
    )
    assert problems(tmp_path, text) == ["6:37: length: 'nope' is not bound before this step"]
