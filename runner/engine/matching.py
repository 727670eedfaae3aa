"""Does an observation meet an expectation, and how a step's trace shows both sides."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from runner.lang import names
from runner.lang.expr import ExprError, parse
from runner.lang.ops import OPS

_CMP: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "eq": ("==", operator.eq),
    "ne": ("!=", operator.ne),
    "gt": (">", operator.gt),
    "ge": (">=", operator.ge),
    "lt": ("<", operator.lt),
    "le": ("<=", operator.le),
}


@dataclass(frozen=True)
class Observation:
    """What a step did: a result, or an errno, or a death by signal."""

    result: Any = None
    errno: str | None = None
    signal: str | None = None
    si_code: str | None = None
    si_addr: int | None = None
    ip: int | None = None  # the faulting instruction's address, when the expectation asks


def fmt_addr(addr: int | None, maps: Mapping[str, tuple[int, int]]) -> str:
    """An address relative to the nearest bound mapping at or below it: ``m+4096``."""
    if addr is None:
        return "?"
    best = None
    for name, (base, length) in maps.items():
        if base <= addr <= base + max(length, 1) + (1 << 30) and (best is None or base > best[1]):
            best = (name, base)
    if best is None:
        return hex(addr)
    off = addr - best[1]
    return best[0] if off == 0 else f"{best[0]}+{off}"


def describe_signal(
    sig: str | None, code: str | None, addr: Any, maps: Mapping, ip: Any = None
) -> str:
    text = sig or "?"
    if code:
        text += f"/{code}"
    if addr is not None:
        text += f" at {fmt_addr(addr, maps) if isinstance(addr, int) else addr}"
    if isinstance(ip, dict):
        text += ", ip " + " ".join(f"{op} {_addr_text(v, maps)}" for op, v in ip.items())
    elif ip is not None:
        text += f", ip {_addr_text(ip, maps)}"
    return text


def _addr_text(value: Any, maps: Mapping) -> str:
    return fmt_addr(value, maps) if isinstance(value, int) else str(value)


def describe_expect(expect: Mapping[str, Any], maps: Mapping) -> str:
    kind = expect["kind"]
    if kind == "success":
        return "success"
    if kind == "errno":
        return "errno " + " or ".join(expect["errno"])
    if kind == "signal":
        return describe_signal(
            expect["signal"], expect.get("si_code"), expect.get("si_addr"), maps, expect.get("ip")
        )
    return f"value {show(expect['value'])}"


def describe_observation(obs: Observation, maps: Mapping) -> str:
    if obs.signal:
        return describe_signal(obs.signal, obs.si_code, obs.si_addr, maps, obs.ip)
    if obs.errno:
        return f"errno {obs.errno}"
    if obs.result is None:
        return "success"
    return f"success, value {show(obs.result)}"


def show(value: Any, limit: int = 120) -> str:
    if isinstance(value, bytes | bytearray):
        text = f"hex {bytes(value[:48]).hex()}" + ("..." if len(value) > 48 else "")
        return f"{{{text}}} ({len(value)} bytes)"
    text = repr(value) if not isinstance(value, dict | list) else _compact(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return show(value)


def judge(expect: Mapping[str, Any], obs: Observation, env: Mapping[str, Any]) -> bool:
    """True when ``obs`` is what ``expect`` (already chosen by its ``when``) asks for."""
    kind = expect["kind"]
    if kind == "signal":
        return _signal_matches(expect, obs)
    if obs.signal:
        return False
    if kind == "errno":
        # by number: EAGAIN is EWOULDBLOCK, EOPNOTSUPP is ENOTSUP
        return names.ERRNO.get(obs.errno or "") in {names.ERRNO[e] for e in expect["errno"]}
    if obs.errno:
        return False
    if kind == "value":
        return value_matches(expect["value"], obs.result, env)
    return True


def _signal_matches(expect: Mapping[str, Any], obs: Observation) -> bool:
    if obs.signal != expect["signal"]:
        return False
    if expect.get("si_code") and obs.si_code != expect["si_code"]:
        return False
    if expect.get("ip") is not None and not _ip_matches(expect["ip"], obs.ip):
        return False
    return expect.get("si_addr") is None or obs.si_addr == expect["si_addr"]


def _ip_matches(want: Any, have: int | None) -> bool:
    """``want`` resolved in the process: an address, or comparators of addresses."""
    if have is None:
        return False
    if isinstance(want, dict):
        return all(isinstance(v, int) and _compare(op, have, v) for op, v in want.items())
    return want == have


# patterns that are one key and match the observed value whole, not a mapping's field
WHOLE_PATTERNS = ({"hex"}, {"data"}, {"fill"}, {"contains"})


def value_matches(want: Any, have: Any, env: Mapping[str, Any]) -> bool:
    """The contract's value comparison: equality, bytes, mapping subsets, comparators."""
    if isinstance(want, dict):
        if set(want) == {"hex"}:
            return isinstance(have, bytes | bytearray) and bytes(have) == bytes.fromhex(want["hex"])
        if set(want) == {"data"} and isinstance(have, bytes | bytearray):
            return bytes(have) == want["data"].encode()
        if set(want) == {"fill"}:
            return isinstance(have, bytes | bytearray) and is_fill(bytes(have), want["fill"])
        if set(want) == {"contains"}:
            return contains(have, str(want["contains"]))
        if want and set(want) <= set(_CMP):
            return all(_compare(op, have, _resolve(v, have, env)) for op, v in want.items())
        if not isinstance(have, dict):
            return False
        return all(k in have and value_matches(v, have[k], env) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(have, list | tuple) or len(want) != len(have):
            return False
        return all(value_matches(w, h, env) for w, h in zip(want, have, strict=True))
    if isinstance(have, list | tuple) and len(have) == 1:
        return value_matches(want, have[0], env)
    return _resolve(want, have, env) == have


def contains(have: Any, part: str) -> bool:
    """Text (or bytes) that holds ``part`` somewhere: ``{contains: " hg"}`` of smaps VmFlags."""
    if isinstance(have, bytes | bytearray):
        return part.encode() in bytes(have)
    return isinstance(have, str) and part in have


def is_fill(have: bytes, pattern_hex: str) -> bool:
    """``have`` is the pattern repeated whole: a page of zeros is ``{fill: "00"}``."""
    pattern = bytes.fromhex(pattern_hex)
    return (
        bool(have)
        and len(have) % len(pattern) == 0
        and have == pattern * (len(have) // len(pattern))
    )


def resolved(want: Any, have: Any, env: Mapping[str, Any]) -> Any:
    """``want`` with its expressions evaluated as value_matches reads them, for messages."""
    if isinstance(want, dict):
        if set(want) in WHOLE_PATTERNS:
            return want
        if want and set(want) <= set(_CMP):
            return {op: _resolve(v, have, env) for op, v in want.items()}
        sub = have if isinstance(have, dict) else {}
        return {k: resolved(v, sub.get(k), env) for k, v in want.items()}
    if isinstance(want, list):
        items = list(have) if isinstance(have, list | tuple) else []
        return [resolved(w, items[i] if i < len(items) else None, env) for i, w in enumerate(want)]
    return _resolve(want, have, env)


def projected(want: Any, have: Any) -> Any:
    """The part of ``have`` that ``want`` speaks of: a failure shows the fields it compared."""
    if isinstance(want, dict) and isinstance(have, dict) and not set(want) <= set(_CMP):
        if set(want) in WHOLE_PATTERNS or not set(want) <= set(have):
            return have  # a field it lacks: show all it has
        return {k: projected(v, have[k]) for k, v in want.items()}
    return have


def _compare(op: str, have: Any, want: Any) -> bool:
    try:
        return _CMP[op][1](have, want)
    except TypeError:
        return False


def _resolve(want: Any, have: Any, env: Mapping[str, Any]) -> Any:
    """An expected string is an expression when an integer is observed, text otherwise."""
    if isinstance(want, str) and isinstance(have, int) and not isinstance(have, bool):
        try:
            return parse(want).eval(_int_env(env))
        except ExprError:
            return want
    return want


def _int_env(env: Mapping[str, Any]) -> dict[str, Any]:
    """Bound names, over the flag names (so ``F_SEAL_WRITE|F_SEAL_SEAL`` can be expected)."""
    return {**names.ALL_FLAGS, **env}


def to_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


class Address(int):
    """An address a step returned: shown in hex, or as the text given (``m+5``)."""

    text: str | None

    def __new__(cls, value: int, text: str | None = None) -> Address:
        self = super().__new__(cls, value)
        self.text = text
        return self

    def __repr__(self) -> str:
        return self.text or hex(self)


def shown(
    want: dict[str, Any], obs: Observation, env: dict[str, Any], maps: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """The expectation with its expressions evaluated, as failure messages show it."""
    if want["kind"] != "value":
        return want
    return {**want, "value": _fault_address(resolved(want["value"], obs.result, env), maps)}


def seen(
    op: str, want: dict[str, Any], obs: Observation, maps: dict[str, tuple[int, int]]
) -> Observation:
    """The observation as a failure shows it: an address in hex, of a mapping the fields
    expected."""
    if OPS[op].result == "addr" and type(obs.result) is int:
        return replace(obs, result=Address(obs.result))
    if want["kind"] != "value" or not isinstance(obs.result, dict):
        return obs
    return replace(obs, result=_fault_address(projected(want["value"], obs.result), maps))


def _fault_address(value: Any, maps: dict[str, tuple[int, int]]) -> Any:
    """A wait result's ``si_addr`` as deaths show theirs: relative to a bound mapping."""
    if isinstance(value, dict) and type(value.get("si_addr")) is int:
        return {**value, "si_addr": Address(value["si_addr"], fmt_addr(value["si_addr"], maps))}
    return value
