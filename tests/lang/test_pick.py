"""pick(i, a, b, ...): a value per iteration. The evaluator, then a right and a wrong
expectation over it on the native executor, and an index outside the choices as an error."""

from __future__ import annotations

import pytest
from native_util import run_native

from runner.lang.expr import ExprError, parse


def test_pick_chooses_by_index():
    assert parse("pick(i, 10, 20, PAGE)").eval({"i": 2, "PAGE": 4096}) == 4096
    assert parse("pick(0, 7)").eval({}) == 7


@pytest.mark.parametrize("index", [-1, 3])
def test_an_index_outside_the_choices_is_an_error(index):
    with pytest.raises(ExprError, match=rf"pick: index {index} is outside 0..2"):
        parse("pick(i, 1, 2, 3)").eval({"i": index})


def case(want: str, times: int = 3) -> str:
    return f"""\
        id: p
        title: t
        steps:
          - repeat:
              times: {times}
              var: i
              steps:
                - let: pick(i, 5, 6, 7) * 2
                  expect: {{value: {want}}}
        """


def test_a_right_per_iteration_value_passes(tmp_path):
    result = run_native(tmp_path, case("10 + 2 * i"))
    assert result.outcome == "passed", result.reason


def test_a_wrong_one_fails_naming_process_step_and_both_sides(tmp_path):
    result = run_native(tmp_path, case("pick(i, 10, 12, 15)"))
    assert result.outcome == "failed", result.reason
    assert "main step 1.1 (let): expected value 15, got success, value 14" in result.reason


def test_an_index_past_the_choices_ends_the_case_as_an_error(tmp_path):
    result = run_native(tmp_path, case("10 + 2 * i", times=4))
    assert result.outcome == "error", result.reason
    assert "pick: index 3 is outside 0..2" in result.reason
