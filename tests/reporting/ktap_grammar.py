"""A strict checker for KTAP version 1, written from Documentation/dev-tools/ktap.rst.

The grammar, per the spec:
  document   := version plan? (diagnostic | result | subtest)* ; subtests indented two spaces
  version    := "KTAP version 1" | "TAP version 13" | "TAP version 14"
  plan       := "1..N"
  result     := ("ok" | "not ok") SP number [SP description] [SP? "#" [SP? directive] [SP data]]
  description: any words without "#"
  directive  := SKIP | TODO | XFAIL | TIMEOUT | ERROR ; TIMEOUT and ERROR go with "not ok"
  diagnostic := "#" text
Numbers start at 1 and go up by one per result at a nesting level; the plan, when present,
equals the number of results. The spec tolerates "unknown lines"; our writer never emits any,
so this checker rejects them (``allow_unknown=False``), to catch a stray newline in a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VERSION = re.compile(r"(KTAP version 1|TAP version 1[34])")
PLAN = re.compile(r"1\.\.(\d+)")
RESULT = re.compile(
    r"(?P<result>ok|not ok) (?P<number>[1-9]\d*)"
    r"(?: (?P<description>[^#]*?))?"
    r"(?: ?#(?: ?(?P<directive>[A-Z]+)\b)?(?: ?(?P<data>.*))?)?"
)
DIAGNOSTIC = re.compile(r"#.*")
DIRECTIVES = {"SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR"}


class KtapError(ValueError):
    pass


@dataclass
class Result:
    ok: bool
    number: int
    description: str
    directive: str | None
    data: str
    diagnostics: list[str] = field(default_factory=list)
    subtests: list[Result] = field(default_factory=list)


def _indent(line: str) -> int:
    return (len(line) - len(line.lstrip(" "))) // 2


def parse(text: str, allow_unknown: bool = False) -> list[Result]:
    """Parse a KTAP document; return the top-level results or raise KtapError(lineno: why)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pos, results = _parse_level(lines, 0, 0, allow_unknown)
    if pos != len(lines):
        raise KtapError(f"line {pos + 1}: unexpected {lines[pos]!r}")
    return results


def _parse_level(lines: list[str], pos: int, depth: int, allow_unknown: bool):
    def err(i: int, why: str) -> KtapError:
        return KtapError(f"line {i + 1}: {why}: {lines[i] if i < len(lines) else '<eof>'!r}")

    prefix = "  " * depth
    if pos >= len(lines) or not VERSION.fullmatch(lines[pos].removeprefix(prefix)):
        raise err(pos, "expected a version line")
    pos += 1
    plan = None
    if pos < len(lines) and lines[pos].startswith(prefix):
        m = PLAN.fullmatch(lines[pos][len(prefix) :])
        if m:
            plan = int(m.group(1))
            pos += 1
    results: list[Result] = []
    diags: list[str] = []
    pending_sub: list[Result] | None = None
    while pos < len(lines):
        line = lines[pos]
        if line.strip() == "":
            raise err(pos, "empty line")
        ind = _indent(line)
        body = line[len(prefix) :] if line.startswith(prefix) else None
        if ind > depth and VERSION.fullmatch(line.strip()):
            if pending_sub is not None:
                raise err(pos, "two subtest blocks before one result")
            pos, pending_sub = _parse_level(lines, pos, depth + 1, allow_unknown)
            continue
        if ind < depth or body is None:
            break
        if body.startswith(" "):
            if allow_unknown:
                pos += 1
                continue
            raise err(pos, "unexpected indentation")
        if DIAGNOSTIC.fullmatch(body):
            diags.append(body[1:].strip())
            pos += 1
            continue
        m = RESULT.fullmatch(body)
        if m:
            number = int(m.group("number"))
            if number != len(results) + 1:
                raise err(pos, f"test number {number}, expected {len(results) + 1}")
            directive = m.group("directive")
            data = m.group("data") or ""
            if directive is not None and directive not in DIRECTIVES:
                # An unknown word after '#' is diagnostic data, not a directive.
                data, directive = f"{directive} {data}".strip(), None
            if directive in ("TIMEOUT", "ERROR") and m.group("result") == "ok":
                raise err(pos, f"{directive} must be 'not ok'")
            results.append(
                Result(
                    m.group("result") == "ok",
                    number,
                    (m.group("description") or "").strip(),
                    directive,
                    data,
                    diags,
                    pending_sub or [],
                )
            )
            diags, pending_sub = [], None
            pos += 1
            continue
        if VERSION.fullmatch(body) or PLAN.fullmatch(body):
            raise err(pos, "version or plan line out of place")
        if allow_unknown:
            pos += 1
            continue
        raise err(pos, "not a KTAP line")
    if pending_sub is not None:
        raise err(pos, "subtest block without its result line")
    if plan is not None and plan != len(results):
        raise KtapError(f"plan says 1..{plan} but {len(results)} results follow")
    return pos, results
