"""The rules of a power-cut case (docs/durability.md): one ``power_cut`` step, at the top of a
process and last in it (nothing after it is ever reached), an ``after_reboot:`` list judged in a
fresh boot on the disk the cut left, and nothing that the guest's disk cannot be.

The validator calls ``check`` with what it has read; every problem is said at its line.
"""

from __future__ import annotations

from collections.abc import Callable

from runner.lang.model import Case, Step
from runner.lang.ops import POWER_CUT_POINTS

At = Callable[[int, str, str], None]  # (line, what, message)
MAX_AFTER_MS = 600_000  # a cut later than ten minutes after "stored" is no power-cut case


def check(
    doc: dict,
    setup: list[Step],
    processes: dict[str, list[Step]],
    after_reboot: list[Step],
    at: At,
) -> None:
    cuts = [s for s in _walk(setup) if s.op == "power_cut"]
    for s in cuts:
        at(s.line, "power_cut", "a power cut is a step of a process, not of setup")
    nested = [s for steps in processes.values() for s in _walk(steps) if s.op == "power_cut"]
    for s in nested:
        if "." in s.label:
            at(s.line, "power_cut", "a power cut is a top-level step of its process")
        _arguments(s, at)
    for s in [*cuts, *nested][1:]:
        at(s.line, "power_cut", "a case cuts the power once")
    for steps in processes.values():
        _nothing_after(steps, at)
    for s in _walk(after_reboot):
        if s.op == "power_cut":
            at(s.line, "power_cut", "after_reboot runs after the cut: no second power cut")
    cut = bool(cuts or nested)
    line = getattr(doc, "key_pos", {}).get("after_reboot", (0, 0))[0]
    if after_reboot and not cut:
        at(line, "after_reboot", "after_reboot needs a power_cut step before it")
    if cut and "after_reboot" not in doc:
        at(nested[0].line, "power_cut", "a power-cut case needs after_reboot: (what is judged)")
    if cut and doc.get("backings") not in (None, "disk", ["disk"]):
        at(nested[0].line, "backings", "a power-cut case runs on the guest disk: backings: [disk]")
    provision = doc.get("provision")
    if cut and isinstance(provision, dict) and "mount" in provision:
        at(nested[0].line, "provision", "a power-cut case runs on the guest's disk, not a mount")


def _arguments(step: Step, at: At) -> None:
    if not {"after_ms", "at"} & set(step.args):
        at(step.line, "power_cut", "power_cut takes after_ms: N, and/or at: " + _points())
        return
    if "at" in step.args and step.args["at"] not in POWER_CUT_POINTS:
        at(step.line, "at", f"{step.args['at']!r}: power_cut at is one of {_points()}")
    ms = step.args.get("after_ms", 0)
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_AFTER_MS:
        at(step.line, "after_ms", f"{ms!r}: after_ms is an integer of 0..{MAX_AFTER_MS} ms")


def _points() -> str:
    return " or ".join(POWER_CUT_POINTS)


def _nothing_after(steps: list[Step], at: At) -> None:
    for i, s in enumerate(steps[:-1]):
        if s.op == "power_cut":
            after = steps[i + 1]
            at(after.line, f"step {after.label}", "comes after power_cut: it is never reached")


def _walk(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        out += [s, *_walk(s.steps)]
    return out


def is_power_cut(case: Case) -> bool:
    """Whether a case cuts the power (it runs only under --kernel, alone in its boots)."""
    return case.power_cut is not None
