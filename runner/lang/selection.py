"""``-k`` expressions as pytest reads them: words joined by and/or/not, with parentheses,
each word a case-insensitive substring of the case's id, title or tags."""

from __future__ import annotations

import re

from runner.errors import UsageError
from runner.lang.model import Case

_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def matches_keyword(expr: str, case: Case) -> bool:
    haystack = " ".join([case.id, case.title, *case.tags]).lower()
    tokens = _TOKEN.findall(expr)
    pos = 0

    def parse_or() -> bool:
        nonlocal pos
        value = parse_and()
        while pos < len(tokens) and tokens[pos] == "or":
            pos += 1
            value = parse_and() or value
        return value

    def parse_and() -> bool:
        nonlocal pos
        value = parse_not()
        while pos < len(tokens) and tokens[pos] == "and":
            pos += 1
            value = parse_not() and value
        return value

    def parse_not() -> bool:
        nonlocal pos
        if pos < len(tokens) and tokens[pos] == "not":
            pos += 1
            return not parse_not()
        if pos < len(tokens) and tokens[pos] == "(":
            pos += 1
            value = parse_or()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise UsageError(f"-k {expr!r}: missing ')'")
            pos += 1
            return value
        if pos >= len(tokens) or tokens[pos] in ("and", "or", ")"):
            raise UsageError(f"-k {expr!r}: expected a word")
        word = tokens[pos].lower()
        pos += 1
        return word in haystack

    result = parse_or()
    if pos != len(tokens):
        raise UsageError(f"-k {expr!r}: unexpected {tokens[pos]!r}")
    return result
