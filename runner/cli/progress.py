"""What a run prints while it runs and at its end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from runner.report.baseline import KnownDeviations
from runner.session.runner import Result

MARKS = {"passed": ".", "failed": "F", "skipped": "s", "error": "E", "timeout": "T", "known": "K"}
WIDTH = 60
BAD = ("failed", "error", "timeout", "flaky")


class Progress:
    def __init__(
        self,
        total: int,
        verbose: bool = False,
        out: TextIO | None = None,
        known: KnownDeviations | None = None,
    ):
        self.total, self.verbose, self.done = total, verbose, 0
        self.out = out or sys.stdout  # the current one, not the one when this module loaded
        self.known = known

    def _outcome(self, result: Result) -> str:
        """As the report will say: a failure the baseline covers is known."""
        if self.known is not None and self.known.entry_for(result.to_json()) is not None:
            return "known"
        return result.outcome

    def update(self, result: Result) -> None:
        self.done += 1
        outcome = self._outcome(result)
        if self.verbose:
            reason = f"  {result.reason}" if result.reason and outcome != "passed" else ""
            self.out.write(
                f"[{self.done:>{len(str(self.total))}}/{self.total}] "
                f"{outcome.upper():7} {result.name}{reason}\n"
            )
        else:
            self.out.write(MARKS.get(outcome, "?"))
            if self.done % WIDTH == 0 or self.done == self.total:
                self.out.write(f" [{self.done}/{self.total}]\n")
        self.out.flush()

    def summary(self, report: dict[str, Any], path: Path) -> None:
        """The failures, then the counts, from the report as written (baseline applied)."""
        summary = report["summary"]
        if self.done % WIDTH and not self.verbose:
            self.out.write("\n")
        bad = [r for r in report["results"] if r["outcome"] in BAD]
        if bad:
            self.out.write("\n")
        for r in bad:
            self.out.write(
                f"{r['outcome'].upper():7} {r['name']} ({r['file']}:{r['line']})\n"
                f"        {r['reason']}\n"
            )
        counts = ", ".join(
            f"{summary[k]} {k}"
            for k in ("passed", "failed", "skipped", "error", "timeout", "flaky", "known")
            if summary.get(k)
        )
        interrupted = report.get("interrupted")
        state = " (INTERRUPTED)" if interrupted else ""
        self.out.write(f"\n{counts or 'nothing run'} in {summary['duration_s']:.2f} s{state}\n")
        self.out.write(f"report: {path}\n")
