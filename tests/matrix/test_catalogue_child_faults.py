"""The catalogue's faults expected inside a fork child its parent waits for are judged.

Until the verdict judged a waited child's death by the step it ended, these cases' child-side
expectations never ran (shown "not finished"): a wrong signal, si_code or si_addr passed. Here
each case runs as shipped (the child's step must be judged and met) and once per mutation of
each such expectation (must fail, naming the child and its step). Same runner as test_matrix.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from matrix_run import run_cases

ROOT = Path(__file__).resolve().parents[2]
CASES = {
    "sig-ro-write": "signal/access.yaml",
    "sig-guard": "signal/access.yaml",
    "fork-dontfork": "fork/fork.yaml",
    "madv-guard-install": "madvise/advice.yaml",
    "sig-eof-page-read": "signal/eof.yaml",
    "sig-eof-page-write": "signal/eof.yaml",
    "trunc-shrink": "truncate/truncate.yaml",
}
OTHER_CODE = {
    "SEGV_ACCERR": "SEGV_MAPERR",
    "SEGV_MAPERR": "SEGV_ACCERR",
    "BUS_ADRERR": "BUS_ADRALN",
}
OTHER_SIGNAL = {"SIGSEGV": "SIGBUS", "SIGBUS": "SIGSEGV"}


def _case(case_id: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "cases" / CASES[case_id]).read_text())
    return next(d for d in docs if d and d.get("id") == case_id)


def _child_faults(steps: list[dict], prefix: str = "") -> Iterator[tuple[dict, str, str]]:
    """(the expect mapping, child name, step label) of each signal expected in a fork child."""
    for i, step in enumerate(steps, 1):
        if "fork" in step:
            body = step["fork"]["steps"] if isinstance(step["fork"], dict) else step["steps"]
            for j, child in enumerate(body, 1):
                if "signal" in child.get("expect", {}):
                    yield child["expect"], step["as"], f"{prefix}{i}.{j}"


def _mutations(expect: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "signal", {**expect, "signal": OTHER_SIGNAL[expect["signal"]], "si_code": None}
    if expect.get("si_code"):
        yield "si_code", {**expect, "si_code": OTHER_CODE[expect["si_code"]]}
    if expect.get("si_addr"):
        yield "si_addr", {**expect, "si_addr": f"{expect['si_addr']} + 1"}


def _variants() -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    """(variant id, case id, child, label, case document): the case, then each mutation."""
    for case_id in CASES:
        original = _case(case_id)
        yield case_id, case_id, "", "", original
        for n, (expect, child, label) in enumerate(_child_faults(original["steps"])):
            for what, wrong in _mutations(expect):
                doc = copy.deepcopy(original)
                target = list(_child_faults(doc["steps"]))[n][0]
                target.clear()
                target.update({k: v for k, v in wrong.items() if v is not None})
                doc["id"] = f"{case_id}-wrong-{what.replace('_', '-')}-{n}"
                yield doc["id"], case_id, child, label, doc


VARIANTS = {v[0]: v for v in _variants()}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("child-faults")
    path = folder / "cases.yaml"
    path.write_text(yaml.safe_dump_all([v[4] for v in VARIANTS.values()], sort_keys=False))
    # every step of a passed case: its child steps must be in the report to be checked
    return run_cases([path], folder / "report", "--backing", "tmpfs", "--full-traces")


def test_each_case_has_child_faults() -> None:
    assert all(list(_child_faults(_case(c)["steps"])) for c in CASES)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_child_fault_is_judged(variant: str, results: dict[str, dict[str, Any]]) -> None:
    _, case_id, child, label, doc = VARIANTS[variant]
    result = results[variant]
    if result["outcome"] == "skipped":
        pytest.skip(result["reason"])
    if not child:  # as shipped: every expected child fault was met, none left unjudged
        assert result["outcome"] == "passed", result["reason"]
        faults = {(c, lbl) for _, c, lbl in _child_faults(doc["steps"])}
        judged = {(s["process"], s["step"]) for s in result["steps"] if s["ok"] is True}
        assert faults <= judged, result["steps"]
    else:
        assert result["outcome"] == "failed"
        assert f"{child} step {label} (" in result["reason"], result["reason"]
