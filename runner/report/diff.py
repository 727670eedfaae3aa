"""Run-to-run diff: what regressed, what got fixed, what appeared and what vanished.

A regression is a result that passed in the base run and failed, errored or timed out in the
new one: exactly what a CI gate on "did this kernel/filesystem change break mmap?" must stop.
"""

from __future__ import annotations

import json
from typing import Any

from runner import outcomes
from runner.errors import ReportError
from runner.report import model


def _was_broken(o: str) -> bool:
    """Passing after this is a fix: a result that failed its gate, or a baselined ``known``
    failure."""
    return outcomes.fails_gate(o) or o == "known"


def _index(report: dict[str, Any], by: str, where: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in model.results(report):
        key = model.result_name(r) if by == "name" else model.result_id(r)
        if key in out:
            raise ReportError(
                f"{where}: {key} appears more than once"
                + (" (several backings: compare --by name)" if by == "id" else "")
            )
        out[key] = r
    return out


def diff_reports(
    base: dict[str, Any], new: dict[str, Any], by: str = "name", names: tuple[str, str] = ("", "")
) -> dict[str, Any]:
    """Compare two reports. ``by="name"`` matches ``ID[BACKING]``; ``by="id"`` matches case ids
    across backings (e.g. a disk run against a tmpfs run)."""
    b = _index(base, by, names[0] or "base")
    n = _index(new, by, names[1] or "new")

    def entry(key: str) -> dict[str, Any]:
        rb, rn = b.get(key), n.get(key)
        e: dict[str, Any] = {"key": key}
        if rb is not None:
            e["before"] = model.outcome(rb)
        if rn is not None:
            e["after"] = model.outcome(rn)
            e["reason"] = rn.get("reason") or ""
        elif rb is not None:
            e["reason"] = rb.get("reason") or ""
        return e

    out: dict[str, Any] = {
        "by": by,
        "base_run": {
            "file": names[0],
            "kernel_release": model.kernel_release(base),
            "results": len(b),
        },
        "new_run": {
            "file": names[1],
            "kernel_release": model.kernel_release(new),
            "results": len(n),
        },
        "regressions": [],
        "fixes": [],
        "new": [],
        "vanished": [],
        "changed": [],
        "unchanged": 0,
    }
    for key in sorted(set(b) | set(n)):
        e = entry(key)
        if key not in b:
            out["new"].append(e)
        elif key not in n:
            out["vanished"].append(e)
        elif e["before"] == e["after"]:
            out["unchanged"] += 1
        elif e["before"] == "passed" and outcomes.fails_gate(e["after"]):
            out["regressions"].append(e)
        elif _was_broken(e["before"]) and e["after"] == "passed":
            out["fixes"].append(e)
        else:
            out["changed"].append(e)
    return out


def diff_exit_code(d: dict[str, Any]) -> int:
    return 1 if d["regressions"] else 0


def render_diff_text(d: dict[str, Any]) -> str:
    b, n = d["base_run"], d["new_run"]
    lines = [
        f"mmapconf diff (by {d['by']}): base {b['file'] or '-'} (Linux {b['kernel_release']},"
        f" {b['results']} results) -> new {n['file'] or '-'} (Linux {n['kernel_release']},"
        f" {n['results']} results)"
    ]
    sections = (
        ("regressions", "REGRESSIONS"),
        ("fixes", "fixes"),
        ("new", "new"),
        ("vanished", "vanished"),
        ("changed", "other changes"),
    )
    for key, title in sections:
        items = d[key]
        lines.append(f"{title}: {len(items)}")
        for e in items:
            move = f"{e.get('before', '-')} -> {e.get('after', '-')}"
            reason = " ".join(str(e.get("reason") or "").split())
            lines.append(f"  {e['key']}: {move}" + (f": {reason}" if reason else ""))
    lines.append(f"unchanged: {d['unchanged']}")
    verdict = "REGRESSED" if d["regressions"] else "no regression"
    lines.append(f"verdict: {verdict}")
    return "\n".join(lines) + "\n"


def render_diff_json(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2, sort_keys=False) + "\n"
