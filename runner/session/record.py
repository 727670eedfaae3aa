"""report.json: the one record of a run that every other format is rendered from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.report.atomic import write_text
from runner.session.runner import Result, summarize

SCHEMA_VERSION = 1
# A passed result keeps this many steps from the start and from the end of its trace (a loop
# of thousands of passed steps is most of a report otherwise); --full-traces keeps them all.
# What did not pass always keeps its whole trace.
PASSED_HEAD, PASSED_TAIL = 8, 4


def build(
    environment: dict[str, Any],
    results: list[Result],
    duration_s: float,
    interrupted: bool = False,
    full_traces: bool = False,
) -> dict[str, Any]:
    out = [r.to_json() for r in results]
    if not full_traces:
        out = [bounded(r) for r in out]
    return {
        "schema_version": SCHEMA_VERSION,
        "interrupted": interrupted,
        "environment": environment,
        "summary": summarize(results, duration_s),
        "results": out,
    }


def bounded(result: dict[str, Any]) -> dict[str, Any]:
    """A passed result's trace cut to its start and end; ``steps_left_out`` counts the rest."""
    steps = result.get("steps") or []
    if result["outcome"] != "passed" or len(steps) <= PASSED_HEAD + PASSED_TAIL:
        return result
    left_out = len(steps) - PASSED_HEAD - PASSED_TAIL
    return {
        **result,
        "steps": steps[:PASSED_HEAD] + steps[-PASSED_TAIL:],
        "steps_left_out": result.get("steps_left_out", 0) + left_out,
    }


def dumps(data: dict[str, Any]) -> str:
    """JSON in one line per result: the C encoder's speed (``indent`` falls back to the pure
    Python one, about six times slower), and still a file to read, grep and diff by result."""
    results = data.get("results")
    if not isinstance(results, list):
        return json.dumps(data, default=str) + "\n"
    head = json.dumps({k: v for k, v in data.items() if k != "results"}, default=str)
    lines = ",\n".join(json.dumps(r, default=str) for r in results)
    opening = head[:-1] + ", " if head != "{}" else "{"
    return f'{opening}"results": [\n{lines}\n]}}\n'


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically, mode 0644 (runner.report.atomic)."""
    write_text(path, dumps(data))


def write(report: dict[str, Any], report_dir: Path) -> Path:
    path = Path(report_dir) / "report.json"
    write_json(path, report)
    return path


def read(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)
