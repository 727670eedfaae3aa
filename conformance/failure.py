"""How a case that did not pass reads in pytest's output: what the case claims, then the steps.

The first line is the engine's one-line reason, since pytest's short summary shows only the first
line of a report; a Python traceback would show the harness, not the system under test.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runner.errors import Problem
from runner.report.model import shown_steps, with_gaps

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

CELL = 60  # widest a trace cell gets: observed values can be long byte strings

COLUMNS = ("process", "step", "line", "op", "expected", "observed")


def format_result(result: dict[str, Any]) -> str:
    """The display of a failed, errored or timed-out result (a ``Result.to_json()`` dict)."""
    lines = [result.get("reason") or result["outcome"], ""]
    lines.append(f"case:    {result['name']}  ({result['outcome']})")
    if result.get("title"):
        lines.append(f"title:   {result['title']}")
    if result.get("claim"):
        lines.append(f"claim:   {result['claim']}")
    lines.append(f"at:      {result['file']}:{result['line']}")
    steps = result.get("steps") or []
    if steps:
        lines += ["", *format_trace(steps)]
    return "\n".join(lines)


def as_longrepr(text: str, path: str, line: int, message: str) -> str | TerminalRepr:
    """``text`` as pytest's own exception display, with ``message`` as the crash line.

    Only the crash line goes into the short summary and JUnit's ``message`` attribute (a plain
    string would go there whole, which pytest does on CI); and xdist carries this form across
    intact. The classes are pytest's internals, so any mismatch falls back to the plain text.
    """
    try:
        from _pytest._code.code import (
            ReprEntryNative,
            ReprExceptionInfo,
            ReprFileLocation,
            ReprTraceback,
        )

        trace = ReprTraceback(
            reprentries=[ReprEntryNative([text + "\n"])], extraline=None, style="native"
        )
        crash = ReprFileLocation(path=path, lineno=line, message=message)
        return ReprExceptionInfo(reprtraceback=trace, reprcrash=crash)
    except (ImportError, TypeError):
        return text


def format_trace(steps: list[dict[str, Any]]) -> list[str]:
    """A table of the steps; failing ones marked ``>``; long traces keep the failing parts."""
    rows = [_row(s) for s in steps]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]

    def line(index: int) -> str:
        mark = ">" if steps[index].get("ok") is False else " "
        return f"{mark} " + _join(rows[index], widths)

    return ["  " + _join(COLUMNS, widths), *with_gaps(shown_steps(steps), len(steps), line)]


def format_problems(problems: Iterable[Problem]) -> str:
    """An invalid case document: one ``file:line:column: key: message`` per problem."""
    return "\n".join(str(p) for p in problems)


def _row(step: dict[str, Any]) -> tuple[str, ...]:
    return tuple(_cell(step.get(c)) for c in COLUMNS)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL else text[: CELL - 3] + "..."


def _join(cells: Iterable[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
