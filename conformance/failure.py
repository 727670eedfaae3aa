"""How a case that did not pass reads in pytest's output: what the case claims, then the steps.

The first line is the engine's one-line reason, since pytest's short summary shows only the first
line of a report; a Python traceback would show the harness, not the system under test.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runner.errors import Problem
from runner.report.trace import trace_lines

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr


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
        lines += ["", *trace_lines(steps)]
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


def format_problems(problems: Iterable[Problem]) -> str:
    """An invalid case document: one ``file:line:column: key: message`` per problem."""
    return "\n".join(str(p) for p in problems)
