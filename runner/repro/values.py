"""Value expectations written as C conditions, with the engine's comparison rules
(runner.engine.matching.value_matches) applied to each result's static kind.

An expected string is an expression when an integer is observed and text otherwise; a mapping is a
subset of the result's fields; comparators are eq ne gt ge lt le; a list compares element-wise;
a one-element list observed against a scalar compares its element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.lang import names
from runner.lang.expr import ExprError, parse
from runner.lang.ops import COMPARATORS
from runner.repro.cexpr import CExpr
from runner.repro.kinds import (
    CACHESTAT_FIELDS,
    DEDUPE_FIELDS,
    FSTAT_FIELDS,
    MAPS_INT_FIELDS,
    MAPS_TEXT_FIELDS,
    RLIMIT_FIELDS,
    UFFD_MSG_FIELDS,
    Field,
    Unreproducible,
)

_C_OPS = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_KV_OPS = {"eq": "EQ", "ne": "NE", "gt": "GT", "ge": "GE", "lt": "LT", "le": "LE"}
TRUE, FALSE = "1", "0"


def c_string(data: bytes) -> str:
    """A C string literal of exactly these bytes (octal escapes cannot run into what follows)."""
    out = []
    for b in data:
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= b < 127 and not (ch == "?" and out[-1:] == ["?"]):  # no trigraphs
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class Have:
    """An observed value as C holds it: ``kind`` and the C expression ``c``."""

    kind: str  # int text bytes list format fstat cachestat maps wait kv kvfield
    c: str
    fields: tuple[Field, ...] = ()  # for format
    key: str = ""  # for kvfield


def _and(parts: list[str]) -> str:
    parts = [p for p in parts if p != TRUE]
    if FALSE in parts:
        return FALSE
    return " && ".join(f"({p})" if " || " in p else p for p in parts) or TRUE


class Matcher:
    """Writes the C condition under which an observed value meets an expected one."""

    def __init__(self, kinds: dict[str, str]):
        self.expr = CExpr(kinds, names.ALL_FLAGS)

    def match(self, want: Any, have: Have) -> str:
        if have.kind == "format" and len(have.fields) == 1:
            return self.match(want, self._format_field(have, 0))
        if isinstance(want, dict):
            return self._dict(want, have)
        if isinstance(want, list):
            return self._list(want, have)
        if have.kind == "list":  # a one-element list against a scalar compares its element
            return _and([f"{have.c}.n == 1", self.match(want, Have("int", f"{have.c}.p[0]"))])
        return self._compare("eq", want, have)

    # -- shapes ----------------------------------------------------------------------------
    def _dict(self, want: dict, have: Have) -> str:
        if set(want) == {"hex"}:
            if have.kind != "bytes":
                return FALSE
            data = bytes.fromhex(want["hex"])
            return f"bytes_eq({have.c}, {c_string(data)}, {len(data)})"
        if set(want) == {"fill"}:
            if have.kind != "bytes":
                return FALSE
            data = bytes.fromhex(want["fill"])
            return f"bytes_fill({have.c}, {c_string(data)}, {len(data)})"
        if set(want) == {"contains"}:
            return self._contains(str(want["contains"]), have)
        if set(want) == {"data"} and have.kind == "bytes":
            data = str(want["data"]).encode()
            return f"bytes_eq({have.c}, {c_string(data)}, {len(data)})"
        if want and set(want) <= COMPARATORS:
            return _and([self._compare(op, v, have) for op, v in want.items()])
        return _and([self._field(str(k), v, have) for k, v in want.items()])

    def _list(self, want: list, have: Have) -> str:
        if have.kind == "list":
            items = [self.match(w, Have("int", f"{have.c}.p[{i}]")) for i, w in enumerate(want)]
            return _and([f"{have.c}.n == {len(want)}", *items])
        if have.kind == "format":
            if len(want) != len(have.fields):
                return FALSE
            return _and([self.match(w, self._format_field(have, i)) for i, w in enumerate(want)])
        return FALSE

    def _format_field(self, have: Have, i: int) -> Have:
        f = have.fields[i]
        if f.code == "s":
            return Have("fieldtext", f"{have.c}, {f.offset}, {f.size}")
        signed = int(f.code.islower())
        return Have("int", f"field_int({have.c}, {f.offset}, {f.size}, {signed})")

    def _field(self, key: str, want: Any, have: Have) -> str:
        """``key`` must be a field of the result, and its value must match."""
        v = have.c
        if have.kind == "fstat" and key in FSTAT_FIELDS:
            return self.match(want, Have("int", FSTAT_FIELDS[key].replace("%s", v)))
        if have.kind == "cachestat" and key in CACHESTAT_FIELDS:
            return self.match(want, Have("int", CACHESTAT_FIELDS[key].replace("%s", v)))
        tables = (
            ("rlimit", RLIMIT_FIELDS),
            ("uffdmsg", UFFD_MSG_FIELDS),
            ("dedupe", DEDUPE_FIELDS),
        )
        for kind, table in tables:
            if have.kind == kind and key in table:
                return self.match(want, Have("int", table[key].replace("%s", v)))
        if have.kind == "maps" and key in MAPS_INT_FIELDS:
            return self.match(want, Have("int", MAPS_INT_FIELDS[key].replace("%s", v)))
        if have.kind == "maps" and key in MAPS_TEXT_FIELDS:
            return self.match(want, Have("text", MAPS_TEXT_FIELDS[key].replace("%s", v)))
        if have.kind == "kv":
            return self.match(want, Have("kvfield", v, key=key))
        if have.kind == "wait":
            return self._wait_field(key, want, v)
        return FALSE  # not a mapping, or a field it never has

    def _wait_field(self, key: str, want: Any, v: str) -> str:
        if key == "exit":
            return _and([f"{v}.exited", self.match(want, Have("int", f"{v}.status"))])
        if key == "signal":
            return _and([f"!{v}.exited", self.match(want, Have("text", f"signal_name({v}.sig)"))])
        if key == "si_code":
            name = f"si_code_name({v}.sig, {v}.code)"
            return _and([f"!{v}.exited && {v}.code != -1000", self.match(want, Have("text", name))])
        if key == "si_addr":
            addr = Have("int", f"(i64){v}.addr")
            return _and([f"!{v}.exited && {v}.code != -1000", self.match(want, addr)])
        return FALSE

    def _contains(self, part: str, have: Have) -> str:
        """Text (a maps or smaps field) or bytes holding ``part``."""
        data, n = c_string(part.encode()), len(part.encode())
        if have.kind == "text":
            return f"strstr({have.c}, {data}) != NULL"
        if have.kind == "kvfield":
            return f'kv_contains(&{have.c}, "{have.key}", {data})'
        if have.kind == "bytes":
            return f"memmem({have.c}.p, (size_t)max_({have.c}.n, 0), {data}, {n}) != NULL"
        return FALSE

    # -- scalars ---------------------------------------------------------------------------
    def _compare(self, op: str, want: Any, have: Have) -> str:
        if have.kind == "kvfield":
            return self._kv_compare(op, want, have)
        if isinstance(want, dict | list):
            return {"eq": FALSE, "ne": TRUE}.get(op, FALSE)
        if have.kind == "int":
            target = self._int_target(want)
            if target is None:  # text (or nothing) against an integer
                return TRUE if op == "ne" else FALSE
            return f"{have.c} {_C_OPS[op]} {target}"
        if have.kind in ("text", "fieldtext"):
            if not isinstance(want, str):
                return TRUE if op == "ne" else FALSE
            if op not in ("eq", "ne"):
                raise Unreproducible("an order comparison between texts is not written in C here")
            data = c_string(want.encode())
            test = (
                f"field_text_eq({have.c}, {data})"
                if have.kind == "fieldtext"
                else f"strcmp({have.c}, {data}) == 0"
            )
            return test if op == "eq" else f"!({test})"
        # bytes, lists and mappings never equal a scalar; order comparisons with them are errors
        return TRUE if op == "ne" else FALSE

    def _int_target(self, want: Any) -> str | None:
        """The C integer an expected value stands for when an integer is observed."""
        if isinstance(want, bool | int):
            return str(int(want))
        if isinstance(want, float):
            raise Unreproducible(f"the expected number {want!r} is not an integer")
        if not isinstance(want, str):
            return None
        try:
            expr = parse(want)
        except ExprError:
            return None
        if not all(self.expr.knows(n) for n in expr.names):
            return None  # the engine cannot evaluate it either: it stays text
        return f"({self.expr.text(want)})"

    def _kv_compare(self, op: str, want: Any, have: Have) -> str:
        """A field of a /proc record: integer or text, known only when the file is read."""
        if isinstance(want, dict | list):
            return f'kv_find(&{have.c}, "{have.key}") >= 0' if op == "ne" else FALSE
        target = self._int_target(want)
        text = c_string(str(want).encode()) if isinstance(want, str) else '""'
        if not isinstance(want, str) and target is None:
            return f'kv_find(&{have.c}, "{have.key}") >= 0' if op == "ne" else FALSE
        is_int = int(target is not None)
        return f'kv_cmp(&{have.c}, "{have.key}", {_KV_OPS[op]}, {is_int}, {target or 0}, {text})'
