"""The self-test matrix: every expectation kind x every process context, judged end to end.

The cases in tests/matrix/generated/ (written by matrixgen.py) run through the public runner,
``mmapconf run``, as a user's cases do; each right expectation must pass with every step judged,
each wrong one must fail with a reason that starts with ``PROC step N (OP): expected X, got Y``.
probe.c, compiled here, sets what the right expectations say.

Run it:      python -m pytest tests/matrix -n 2
Another runner meets the same matrix with its own run command, e.g.
             MMAPCONF_MATRIX_CMD="python -m runner run" python -m pytest tests/matrix
(the command gets the case folder, ``-n 2`` and ``--report-dir DIR`` appended).
After editing matrixgen.py: python tests/matrix/matrixgen.py
"""

from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

import matrixgen
import pytest
from matrix_run import run_cases

PAGE = resource.getpagesize()
CELLS = {c.id: c for c in matrixgen.cells()}


def test_generated_cases_are_current() -> None:
    texts = matrixgen.rendered()
    on_disk = {p: p.read_text() for p in matrixgen.GENERATED.glob("*.yaml")}
    assert on_disk == texts, "tests/matrix/generated is stale: python tests/matrix/matrixgen.py"


def test_the_probe_observes_what_the_right_expectations_say(tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build tests/matrix/probe.c")
    exe = tmp_path / "probe"
    subprocess.run([cc, "-O1", "-o", str(exe), str(matrixgen.HERE / "probe.c")], check=True)
    seen = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    truth = [t.format(page=PAGE, page7=PAGE + 7) for k in matrixgen.KINDS for t in k.truth]
    assert sorted(seen.splitlines()) == sorted(truth)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_cases([matrixgen.GENERATED], tmp_path_factory.mktemp("matrix"))


def test_the_matrix_covers_every_kind_in_every_context() -> None:
    assert len(matrixgen.KINDS) >= 10 and len(matrixgen.CONTEXTS) == 8
    assert len(CELLS) == 2 * len(matrixgen.KINDS) * len(matrixgen.CONTEXTS)


@pytest.mark.parametrize("cell_id", sorted(CELLS))
def test_cell(cell_id: str, results: dict[str, dict[str, Any]]) -> None:
    cell, result = CELLS[cell_id], results[cell_id]
    checked = [
        s for s in result["steps"] if (s["process"], s["step"]) == (cell.context.proc, cell.label)
    ]
    assert checked, f"no trace of {cell.context.proc} step {cell.label}"
    if cell.right:
        assert (result["outcome"], result["reason"]) == ("passed", "")
        for step in result["steps"]:  # every step judged: none left "not finished"
            if step["op"] == "repeat" and cell.kind.death:
                assert step["observed"] == f"not finished: step {cell.label} ended the process"
            elif step["op"] == "join" and cell.kind.death:  # the thread's death ends its process
                op = next(k for k in cell.kind.check if k != "as")
                where = f"{cell.context.proc} step {cell.label} ({op})"
                assert (
                    step["observed"]
                    == f"not finished: {where} ended the process by {cell.kind.death}"
                )
            else:
                assert step["ok"] is True, step
    else:
        assert result["outcome"] == "failed"
        assert result["reason"].startswith(cell.message(PAGE)), result["reason"]
        assert any(s["ok"] is False for s in checked)
