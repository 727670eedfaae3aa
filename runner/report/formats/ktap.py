"""KTAP version 1 (Documentation/dev-tools/ktap.rst), the kernel selftest result format.

One flat test plan with a result line per ``ID[BACKING]``: kselftest runners and
KernelCI's parsers read it as they read any selftest. Details go on ``#`` diagnostic lines
just before their result line, as the spec recommends.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from runner import outcomes
from runner.report import model

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _one_line(text: Any) -> str:
    # KTAP is line-oriented plain text: control characters would corrupt a reader's view.
    return " ".join(_CONTROL.sub(" ", str(text or "")).split())


def _description(name: str) -> str:
    # The spec: a description "can be any string of words (can't include #)".
    return _one_line(name).replace("#", "_") or "unnamed"


def _directive_data(text: Any) -> str:
    # Diagnostic data follows the directive on the same line; a newline would start an
    # unknown line, which parsers ignore, so it is folded instead.
    return _one_line(text)


def result_line(n: int, r: dict[str, Any]) -> list[str]:
    """The diagnostic lines and the result line for result number ``n``."""
    o = model.outcome(r)
    kind = outcomes.of(o)
    desc = _description(model.result_name(r))
    reason = r.get("reason") or ""
    # kselftest prints expected failures as "ok ... # XFAIL": a gate that passes is "ok"
    line = f"{'not ok' if kind.fails_gate else 'ok'} {n} {desc}"
    if kind.ktap:
        line = f"{line} # {kind.ktap} {_directive_data(reason)}".rstrip()
    return _diagnostics(desc, o, r) + [line]


def _diagnostics(desc: str, o: str, r: dict[str, Any]) -> list[str]:
    reason = r.get("reason") or ""
    base = r.get("baseline")
    if o == "passed" and isinstance(base, dict) and base.get("status") == "unexpected-pass":
        return [f"# {desc}: unexpected pass: baselined as a known deviation"]
    if o == "failed":
        return [f"# {desc}: {_one_line(x)}" for x in str(reason).splitlines() if x.strip()]
    if o == "flaky":
        return [f"# {desc}: flaky: {_one_line(r.get('outcomes_seen') or reason)}"]
    if o not in outcomes.BY_NAME:
        # An outcome this renderer does not know: say what it was.
        return [f"# {desc}: outcome {_one_line(o)}: {_one_line(reason)}"]
    return []


def render_ktap(report: dict[str, Any]) -> str:
    """The KTAP document for ``report``."""
    rs = model.results(report)
    env = model.environment(report)
    out = ["KTAP version 1", f"1..{len(rs)}"]
    out.append(
        f"# mmapconf on Linux {_one_line(env.get('kernel_release') or 'unknown')}"
        f" {_one_line(env.get('machine') or '')}".rstrip()
    )
    if report.get("interrupted"):
        out.append("# run interrupted: results are incomplete")
    for n, r in enumerate(rs, 1):
        out += result_line(n, r)
    totals = Counter(kselftest_count(r) for r in rs)
    out.append("# Totals: " + " ".join(f"{k}:{totals[k]}" for k in KSELFTEST_TOTALS))
    return "\n".join(out) + "\n"


# kselftest's ksft_print_cnts(): "# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N"
KSELFTEST_TOTALS = ("pass", "fail", "xfail", "xpass", "skip", "error")


def kselftest_count(r: dict[str, Any]) -> str:
    """Which of kselftest's totals a result counts in, as its result line reads: a known
    deviation is an xfail, its unexpected pass an xpass, an engine error an error; a failure,
    timeout or flaky result ("not ok") a fail."""
    o = model.outcome(r)
    base = r.get("baseline")
    if o == "passed" and isinstance(base, dict) and base.get("status") == "unexpected-pass":
        return "xpass"
    return {"passed": "pass", "skipped": "skip", "known": "xfail"}.get(
        o, "error" if o == "error" else "fail"
    )
