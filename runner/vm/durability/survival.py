"""Whether the stored data was on the disk after the cut, as the durability table says it
(S: survived, L: lost, P: partly): the bytes each ``read`` step of ``after_reboot`` returned,
against the data of the case's ``store`` steps. This is a reading for the table; the result's
outcome is judged by the case's expectations alone.
"""

from __future__ import annotations

from typing import Any

from runner.lang.model import Case, Step

SYMBOL = {"survived": "S", "lost": "L", "partly": "P", "unknown": "?"}


def _stored(steps: list[Step]) -> bytes | None:
    for s in steps:
        if s.op == "store" and "data" in s.args:
            return str(s.args["data"]).encode()
        if s.op == "store" and "hex" in s.args:
            return bytes.fromhex(s.args["hex"])
        inner = _stored(s.steps)
        if inner is not None:
            return inner
    return None


def _reads(result: dict[str, Any]) -> list[bytes]:
    out = []
    for step in result.get("steps") or []:
        value = step.get("result")
        if step.get("op") == "read" and isinstance(value, dict) and "$bytes" in value:
            out.append(bytes.fromhex(value["$bytes"]))
    return out


def survival(case: Case, result: dict[str, Any]) -> str:
    """survived, lost (old bytes: zeros), partly, or unknown (nothing read, nothing stored)."""
    stored = next(
        (d for steps in case.processes.values() if (d := _stored(steps)) is not None), None
    )
    reads = _reads(result)
    if stored is None or not reads:
        return "unknown"
    seen = {
        "survived" if r == stored[: len(r)] else "lost" if not any(r) else "other" for r in reads
    }
    if seen == {"survived"}:
        return "survived"
    if seen == {"lost"}:
        return "lost"
    return "partly"
