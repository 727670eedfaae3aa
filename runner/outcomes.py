"""The outcomes a result can have: their names, their order, their marks, and which of them
fail a gate. Every run path (``mmapconf run``, ``run --kernel``, the pytest plugin, ``report
--gate``) and every report format reads them from here, so none can disagree on a verdict."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    name: str
    fails_gate: bool
    mark: str  # the progress line's character
    icon: str  # Markdown and HTML
    short: str  # a matrix cell
    junit: str | None  # the <testcase> child: failure, error, skipped, or none for a pass
    ktap: str  # the KTAP directive after "ok"/"not ok" ("" for none)


# In display order. ``known`` is a baselined failure and passes a gate; ``flaky`` (the
# repetitions of ``run --repeat N`` disagreed) fails it: a verdict that changes from run to run
# is no verdict a gate can rest on.
OUTCOMES: tuple[Outcome, ...] = (
    Outcome("passed", False, ".", "✅", "pass", None, ""),
    Outcome("failed", True, "F", "❌", "FAIL", "failure", ""),
    Outcome("error", True, "E", "💥", "ERR", "error", "ERROR"),
    Outcome("timeout", True, "T", "⏱️", "TIME", "failure", "TIMEOUT"),
    Outcome("flaky", True, "~", "🔁", "flaky", "failure", ""),
    Outcome("known", False, "K", "🟨", "known", "skipped", "XFAIL"),
    Outcome("skipped", False, "s", "⏭️", "skip", "skipped", "SKIP"),
)
BY_NAME = {o.name: o for o in OUTCOMES}
NAMES = tuple(BY_NAME)
# An outcome this version does not know (a newer engine's) fails the gate: nothing vouches
# for it.
UNKNOWN = Outcome("?", True, "?", "❔", "?", "error", "ERROR")
# What the engine reports a case as when it did not go as written; a baseline may cover these
BASELINABLE = ("failed", "timeout")
# outcomes that need no explanation: a report lists the others, and a merged --repeat result
# shows the first repetition that ended otherwise
UNREMARKABLE = ("passed", "skipped")
NOT_RUN = ("skipped",)


def of(name: str) -> Outcome:
    return BY_NAME.get(name, UNKNOWN)


def fails_gate(name: str) -> bool:
    return of(name).fails_gate


def ordered(seen: Iterable[str]) -> list[str]:
    """``seen`` in display order: the known outcomes first, others after in sorted order."""
    seen = set(seen)
    return [o for o in NAMES if o in seen] + sorted(seen - set(NAMES))


def tally(outcomes: Iterable[str]) -> dict[str, int]:
    """A count per outcome, every known one present (tables keep a stable shape), in order."""
    counts = dict.fromkeys(NAMES, 0)
    for o in outcomes:
        counts[o] = counts.get(o, 0) + 1
    return {o: counts[o] for o in ordered(counts)}
