"""The contract between a case process and the harness: how a case process ends.

A case process ends with one of these exit statuses (or dies by a signal); the harness turns the
ending into a verdict in runner.engine.verdict. On the way it sends step reports, whose schema
(``parse_report``) the harness checks before it reads anything in them.
"""

from __future__ import annotations

import json

EXIT_DONE = 0  # every step ran and every expectation held
EXIT_FAILED = 3  # an expectation did not hold (recorded in a step report)
EXIT_ABORTED = 4  # another process of the case failed and the case was abandoned
EXIT_ERROR = 70  # the harness code in the case process failed (EX_SOFTWARE)

# -- the step reports a case process sends: untrusted input, each checked against this schema --
# Any process of a case (and machine code in it) can write anything to its report socket; a
# report that does not fit ends that case as ``error`` with the reason, never the harness.
MAX_REPORT_BYTES = 1 << 16  # one datagram; process.MAX_MESSAGE keeps real reports well under
MAX_DEPTH = 32  # of nested JSON in one report (a result value nests a few levels)

_STR, _INT, _BOOL, _ANY, _DICT = str, int, bool, object, dict
_OPT_STR = (str, type(None))
_OPT_INT = "int or None"
_FIELDS: dict[str, dict[str, object]] = {
    "proc": {"name": _STR, "parent": _OPT_STR},
    "start": {
        "proc": _STR, "step": _STR, "op": _STR, "line": _INT,
        "args": _DICT, "expect": _DICT, "maps": _DICT,
    },
    "end": {
        "proc": _STR, "step": _STR, "ok": _BOOL, "errno": _OPT_STR, "result": _ANY,
        "expected": _STR, "observed": _STR, "maps": _DICT,
    },
    "error": {"proc": _STR, "step": _STR, "op": _STR, "message": _STR},
    "aborted": {"proc": _STR, "step": _STR},
    "done": {},
    "reaped": {"child": _INT, "exit": _OPT_INT, "signal": _OPT_INT},
    "killed": {"target": _INT, "signal": _INT},
}  # fmt: skip
_EXPECT_KINDS = ("success", "errno", "signal", "value")


class MalformedReport(ValueError):
    """A step report that is not one: its text says what is wrong with it."""


def parse_report(data: bytes, signals: dict[str, int], errnos: dict[str, int]) -> dict:
    """The report in ``data``, checked; raise MalformedReport otherwise."""
    if len(data) > MAX_REPORT_BYTES:
        raise MalformedReport(f"a report of more than {MAX_REPORT_BYTES} bytes")
    try:
        msg = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise MalformedReport(f"a report that is not JSON ({str(e)[:80]})") from None
    if not isinstance(msg, dict) or msg.get("t") not in _FIELDS:
        raise MalformedReport(f"a report of unknown type: {str(data[:80])}")
    _check_depth(msg)
    pid = msg.get("pid")
    if type(pid) is not int or not 0 < pid < 1 << 22:
        raise MalformedReport(f"a {msg['t']} report without a valid pid")
    for key, kind in _FIELDS[msg["t"]].items():
        if key not in msg or (kind is not _ANY and not _is(msg[key], kind)):
            raise MalformedReport(f"a {msg['t']} report whose {key!r} is missing or mistyped")
    if "limit" in msg and type(msg["limit"]) is not bool:
        raise MalformedReport("an error report whose 'limit' is not true or false")
    if "maps" in msg:
        _check_maps(msg["maps"])
    if msg["t"] == "start":
        _check_expect(msg["expect"], signals, errnos)
    return msg


def _is(value: object, kind: object) -> bool:
    if kind is _OPT_INT:
        return value is None or type(value) is int
    if kind is _INT:
        return type(value) is int
    if kind is _BOOL:
        return type(value) is bool
    return isinstance(value, kind)  # type: ignore[arg-type]


def _check_depth(value: object) -> None:
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if depth > MAX_DEPTH:
            raise MalformedReport(f"a report nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            todo += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            todo += [(v, depth + 1) for v in item]


def _check_maps(maps: dict) -> None:
    for name, span in maps.items():
        if not (isinstance(span, list) and len(span) == 2 and all(type(x) is int for x in span)):
            shown = str(name)[:40]
            raise MalformedReport(f"a report whose mapping {shown!r} is not [addr, length]")


def _check_expect(expect: dict, signals: dict[str, int], errnos: dict[str, int]) -> None:
    kind = expect.get("kind")
    if kind not in _EXPECT_KINDS:
        raise MalformedReport(f"a start report expecting an unknown kind {str(kind)[:40]!r}")
    if kind == "errno" and not (
        isinstance(expect.get("errno"), list) and all(e in errnos for e in expect["errno"])
    ):
        raise MalformedReport("a start report expecting errnos that are not errno names")
    if kind == "signal":
        if expect.get("signal") not in signals:
            raise MalformedReport("a start report expecting a signal that is not a signal name")
        code, addr = expect.get("si_code"), expect.get("si_addr")
        if not isinstance(code, _OPT_STR) or not _is_opt_int(addr):
            raise MalformedReport("a start report whose si_code or si_addr is mistyped")
    if kind == "value" and "value" not in expect:
        raise MalformedReport("a start report expecting a value it does not give")


def _is_opt_int(value: object) -> bool:
    return value is None or type(value) is int
