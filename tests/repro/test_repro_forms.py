"""The forms operations (tests/engine/forms_ops.py) as generated C: the right expectation
passes and the wrong one fails, each as the engine's run of the same case ends, the failure line
naming the process, the step and its operation."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from repro_util import reproduce, static_libc_missing

from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from forms_ops import FORMS_OPERATIONS  # noqa: E402

pytestmark = pytest.mark.skipif(bool(static_libc_missing()), reason=static_libc_missing())


def _text(op: str, right: bool) -> str:
    pre, step, good, bad, _ = FORMS_OPERATIONS[op]
    steps = textwrap.dedent(pre).strip()
    body = textwrap.indent(steps, "  ") + "\n" if steps else ""
    return (
        f"id: t\ntitle: t\nbackings: [tmpfs]\nsteps:\n{body}"
        f"  - {step}\n    expect: {good if right else bad}\n"
    )


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
@pytest.mark.parametrize("op", sorted(FORMS_OPERATIONS))
def test_forms_operation_in_c(tmp_path: Path, op: str, right: bool) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(_text(op, right))
    suite = load_suite([str(path)])
    assert not suite.invalid, suite.problems
    runner = Runner(RunConfig())
    (item,) = runner.plan(suite)
    assert item.case is not None and item.backing is not None
    engine = runner.run_item(item)
    repro = reproduce(item.case, item.backing)
    want = "passed" if right else "failed"
    assert repro.outcome == engine.outcome == want, (engine.reason, repro.stdout)
    if not right:
        n = len(item.case.processes["main"])
        line = next(x for x in repro.stdout.splitlines() if x.startswith("FAIL "))
        assert line.startswith(f"FAIL main step {n} ({op}): expected "), line
