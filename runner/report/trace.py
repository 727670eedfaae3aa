"""A result's step trace, rendered by one function for every reader: ``mmapconf explain``, the
pytest failure display, JUnit, Markdown (``trace_lines``) and HTML (``step_cells``, the same
cells as a table)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

COLUMNS = ("process", "step", "line", "op", "args", "expected", "observed")
CELL = 60  # widest a text cell gets: observed values can be long byte strings
CONTEXT = 3  # steps shown before each failing step when the trace is cut
FULL_TRACE = 25  # traces up to this many steps are shown whole
MOST_SHOWN = 60  # steps of a cut trace at the most
# a step that went as expected, one that did not, one never judged (it did not finish)
MARKS = {True: " ", False: ">", None: "-"}


def format_args(args: Any) -> str:
    if isinstance(args, dict):
        return ", ".join(
            f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in args.items()
        )
    if args is None:
        return ""
    return json.dumps(args)


def steps_of(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in r.get("steps") or [] if isinstance(s, dict)]


def step_cells(step: dict[str, Any]) -> dict[str, str]:
    """One step's cells, whole (``COLUMNS``), and its ``ok``: the row every renderer shows."""
    cells = {c: "" if step.get(c) is None else str(step.get(c)) for c in COLUMNS}
    cells["args"] = format_args(step.get("args"))
    cells["ok"] = MARKS.get(step.get("ok"), MARKS[None])
    return cells


def trace_lines(steps: list[dict[str, Any]], whole: bool = False) -> list[str]:
    """The steps as a text table, failing ones marked ``>``; unless ``whole``, a long trace
    keeps its start, its end and the steps before each failure."""
    steps = [s for s in steps if isinstance(s, dict)]
    if not steps:
        return []
    rows = [tuple(_cell(step_cells(s)[c]) for c in COLUMNS) for s in steps]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    out = ["  " + _join(COLUMNS, widths)]
    previous = -1
    for index in range(len(steps)) if whole else _shown(steps):
        if index != previous + 1:
            out.append(f"  ... {index - previous - 1} step(s) ...")
        out.append(f"{step_cells(steps[index])['ok']} " + _join(rows[index], widths))
        previous = index
    if previous != len(steps) - 1:
        out.append(f"  ... {len(steps) - 1 - previous} step(s) ...")
    return out


def _cell(text: str) -> str:
    text = " ".join(text.splitlines())
    return text if len(text) <= CELL else text[: CELL - 3] + "..."


def _join(cells: Iterable[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _shown(steps: list[dict[str, Any]]) -> list[int]:
    """Indices to show: all when short, else the start, the end and context around failures."""
    if len(steps) <= FULL_TRACE:
        return list(range(len(steps)))
    keep = set(range(CONTEXT)) | set(range(len(steps) - CONTEXT, len(steps)))
    for i, step in enumerate(steps):
        if step.get("ok") is False:
            keep |= set(range(max(0, i - CONTEXT), i + 1))
    shown = sorted(keep)  # many failing steps: the first ones, and the end
    return shown if len(shown) <= MOST_SHOWN else shown[: MOST_SHOWN - CONTEXT] + shown[-CONTEXT:]
