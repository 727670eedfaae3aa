"""What a run prints while it runs and at its end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from runner import outcomes
from runner.report import model

WIDTH = 60


class Progress:
    def __init__(self, total: int, verbose: bool = False, out: TextIO | None = None):
        self.total, self.verbose, self.done = total, verbose, 0
        self.out = out or sys.stdout  # the current one, not the one when this module loaded

    def update(self, result: dict[str, Any]) -> None:
        """One result as it arrives, judged as the report will say (a failure the baseline
        covers is known)."""
        self.done += 1
        outcome = model.outcome(result)
        if self.verbose:
            reason = f"  {result['reason']}" if result.get("reason") and outcome != "passed" else ""
            self.out.write(
                f"[{self.done:>{len(str(self.total))}}/{self.total}] "
                f"{outcome.upper():7} {result['name']}{reason}\n"
            )
        else:
            self.out.write(outcomes.of(outcome).mark)
            if self.done % WIDTH == 0 or self.done == self.total:
                self.out.write(f" [{self.done}/{self.total}]\n")
        self.out.flush()

    def summary(self, report: dict[str, Any], path: Path) -> None:
        """The failures, then the counts, from the report as written (baseline applied)."""
        if self.done % WIDTH and not self.verbose:
            self.out.write("\n")
        bad = [r for r in model.results(report) if model.failing(r)]
        if bad:
            self.out.write("\n")
        for r in bad:
            self.out.write(
                f"{r['outcome'].upper():7} {r['name']} ({r['file']}:{r['line']})\n"
                f"        {r['reason']}\n"
            )
        state = " (INTERRUPTED)" if report.get("interrupted") else ""
        duration = model.total_duration(report)
        self.out.write(f"\n{model.counts_text(report)} in {duration:.2f} s{state}\n")
        self.out.write(f"report: {path}\n")
