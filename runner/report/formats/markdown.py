"""A Markdown summary, fit for ``$GITHUB_STEP_SUMMARY`` or a merge-request note.

Short by design: a job summary is read at a glance and GitHub caps it at 1 MiB, so it shows
the counts, the environment, and only what did not pass, each with its failing step.
"""

from __future__ import annotations

import html
import re
from typing import Any

from runner import outcomes
from runner.report import model
from runner.report.trace import steps_of, trace_lines

# More rows than this is unreadable in a summary page; the HTML report has them all.
MAX_ROWS = 200
# A reason longer than this is cut in the table (an invalid case can list a dozen problems);
# the HTML report and report.json keep it whole.
MAX_REASON = 240

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _flat(text: Any) -> str:
    return " ".join(_CONTROL.sub(" ", str("" if text is None else text)).split())


def cell(text: Any) -> str:
    """Text made safe for one Markdown table cell."""
    s = _flat(text)
    for ch in "\\|`*_[]<>":
        s = s.replace(ch, "\\" + ch)
    return s


def _short(text: Any) -> str:
    s = _flat(text)
    return s if len(s) <= MAX_REASON else s[: MAX_REASON - 1] + "…"


def code(text: Any) -> str:
    """An inline code span for a table cell: backslash escapes do not work inside code spans,
    but GFM tables still split on a bare pipe, so only the pipe is escaped."""
    s = _flat(text).replace("`", "'").replace("|", "\\|")
    return f"`{s}`"


def icon(o: str) -> str:
    return outcomes.of(o).icon


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown summary of ``report``."""
    env = model.environment(report)
    c = model.counts(report)
    verdict = "❌ failed" if model.gate_exit_code(report) else "✅ passed"
    lines = [f"## mmapconf: {verdict}", ""]
    backings = model.backings(report)
    used = sorted({str(r.get("backing")) for r in model.results(report) if r.get("backing")})
    bdesc = ", ".join(f"{b} ({backings[b].get('fs') or '-'})" if b in backings else b for b in used)
    lines.append(
        f"Linux {code(env.get('kernel_release') or 'unknown')}"
        f" on {cell(env.get('machine') or '?')},"
        f" page size {cell(env.get('page_size') or '?')}, {cell(env.get('libc') or 'libc ?')},"
        f" Python {cell(env.get('python') or '?')}; backings: {cell(bdesc) or '-'}."
    )
    if report.get("interrupted"):
        lines += ["", "> **The run was interrupted: results are incomplete.**"]
    lines += ["", "| outcome | count |", "|---|---:|"]
    lines += [f"| {icon(o)} {o} | {n} |" for o, n in c.items()]
    lines.append(f"| **total** | **{len(model.results(report))}** |")
    lines += ["", f"Duration: {model.total_duration(report):.2f} s.", ""]

    base = report.get("baseline")
    if isinstance(base, dict):
        lines.append(
            f"Baseline {code(base.get('file'))}: {len(base.get('known') or [])} known,"
            f" {len(base.get('unexpected_passes') or [])} unexpected pass(es),"
            f" {len(base.get('expired') or [])} expired entr(y/ies)."
        )
        for p in base.get("problems") or []:
            lines.append(f"- ❌ {cell(p)}")
        lines.append("")

    notable = [r for r in model.results(report) if model.outcome(r) not in outcomes.UNREMARKABLE]
    if notable:
        order = {o: i for i, o in enumerate(outcomes.NAMES)}
        notable.sort(key=lambda r: (order.get(model.outcome(r), -1), model.result_name(r)))
        lines += ["| result | outcome | reason |", "|---|---|---|"]
        for r in notable[:MAX_ROWS]:
            o = model.outcome(r)
            reason = cell(_short(r.get("reason")))
            lines.append(f"| {code(model.result_name(r))} | {icon(o)} {o} | {reason} |")
        if len(notable) > MAX_ROWS:
            lines.append(f"\n…and {len(notable) - MAX_ROWS} more: see the HTML report.")
        lines.append("")
        for r in notable[:MAX_ROWS]:
            if not model.failing(r):
                continue
            lines += [
                # Inside an HTML block Markdown escapes are not undone, so escape as HTML.
                f"<details><summary><code>{html.escape(model.result_name(r))}</code>:"
                f" {html.escape(str(r.get('title') or ''))}</summary>",
                "",
            ]
            if r.get("claim"):
                lines += [f"Claim: {cell(r['claim'])}", ""]
            trace = trace_lines(steps_of(r))
            if trace:
                lines += ["```", *[t.replace("```", "'''") for t in trace], "```"]
            lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"
