"""The durability table of a run: per power-cut case and filesystem, what was on the disk after
the cut in each model (S survived, L lost, P partly; submitted/flushed), written as
durability.md beside the kernels' report folders and printed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from runner.report.atomic import write_text
from runner.report.model import load_report

from .survival import SYMBOL

MODELS = ("submitted", "flushed")


def _superseding_last(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """REPORTS in the order their cells are taken, a later one replacing an earlier one's: those
    made before the marker placed "stored" (by the log's size) first, then the others, each in
    the order given. So a case re-run since the marker replaces its cells and rows from before."""
    return sorted(reports, key=_placed_by_marker)


def _placed_by_marker(rep: dict[str, Any]) -> bool:
    return any(
        isinstance(r.get("durability"), dict) and "stored_at" in r["durability"]
        for r in rep.get("results", [])
    )


def _cells(reports: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, str]]:
    """(kernel, case, fs) -> model -> symbol."""
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for rep in _superseding_last(reports):
        kernel = str(rep.get("environment", {}).get("kernel_release") or "?")
        for r in rep.get("results", []):
            d = r.get("durability")
            facts = r.get("facts") or {}
            if not isinstance(d, dict) or facts.get("disk") not in MODELS:
                continue
            symbol = SYMBOL.get(str(d.get("data")), "?")
            if r.get("outcome") not in ("passed", "failed"):
                symbol = "E"  # no judgement: an error or a timeout
            cells.setdefault((kernel, str(r.get("id")), str(facts.get("fs"))), {})[
                facts["disk"]
            ] = symbol
    return cells


def render(reports: list[dict[str, Any]]) -> str:
    cells = _cells(reports)
    if not cells:
        return ""
    filesystems = sorted({fs for _, _, fs in cells})
    lines = [
        "S: the stored data survived the cut, L: the old data (lost), P: partly, E: no judgement;",
        "each cell submitted/flushed (docs/durability.md says what each model means).",
        "",
        "| kernel | case | " + " | ".join(filesystems) + " |",
        "|---|---|" + "---|" * len(filesystems),
    ]
    for kernel, case in sorted({(k, c) for k, c, _ in cells}):
        row = []
        for fs in filesystems:
            by_model = cells.get((kernel, case, fs))
            row.append("/".join(by_model.get(m, "·") for m in MODELS) if by_model else "·")
        lines.append(f"| {kernel} | `{case}` | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _first_text(d: dict[str, Any], points: dict[str, dict[str, Any]]) -> str:
    """Where the data first survived in one model: at "stored" (the case's own call made it
    durable), or the log entry after it that did and when the host saw it."""
    first = d.get("first_survived")
    if not isinstance(first, dict):
        left = d.get("points_left_out") or 0
        return f"never ({d.get('points_judged')} points" + (f", {left} left out)" if left else ")")
    point = points.get(str(first.get("point")), {})
    if point.get("before_stored"):
        return "at 'stored' (the case)"
    return f"{point.get('last_op', '?')} at +{_seconds(first.get('t_s'))} s"


def _seconds(t: object) -> str:
    return f"{t:.2f}" if isinstance(t, (int, float)) else "?"


def _log_text(timeline: list[dict[str, Any]]) -> str:
    """The write log after "stored": writes between flushes together, each with its time."""
    items = []
    for t in timeline:
        what = f"{t['count']} writes ({t['bytes'] >> 10} KiB)" if t["op"] == "writes" else t["op"]
        items.append(f"{what} +{_seconds(t['t_s'])}")
    return ", ".join(items) or "nothing"


def render_timelines(reports: list[dict[str, Any]]) -> str:
    """For each case judged at its crash points: the first point from which the data survives
    in each model, what made it so and when, and the write log after "stored"."""
    lines: dict[tuple[str, str, str], str] = {}  # (kernel, fs, case) -> its row
    for rep in _superseding_last(reports):
        kernel = str(rep.get("environment", {}).get("kernel_release") or "?")
        by: dict[tuple[str, str], dict[str, Any]] = {}  # (case, disk) -> its result
        for r in rep.get("results", []):
            if isinstance(r.get("durability"), dict):
                by[(str(r.get("id")), str((r.get("facts") or {}).get("disk")))] = r
        for (case, model), r in sorted(by.items()):
            d = r["durability"]
            if model != MODELS[0] or "points_judged" not in d:
                continue
            points = {
                m: p["durability"]["point"]
                for (c, m), p in by.items()
                if c == case and "point" in p["durability"]
            }
            cells = [
                _first_text(by.get((case, m), {}).get("durability", {}), points) for m in MODELS
            ]
            # a report from before the marker placed "stored" by the log's size (issue 16)
            placed = "" if "stored_at" in d else " (by size)"
            row = [kernel, r["facts"]["fs"], f"`{case}`{placed}", *cells, _log_text(d["timeline"])]
            lines[(kernel, row[1], case)] = "| " + " | ".join(row) + " |"
    if not lines:
        return ""
    head = [
        "Crash points (`at:`): the first from which the stored data survives a cut, per model,",
        'and the write log after "stored", placed in the log at the guest\'s marker ("by size":',
        'a report made before the marker, by the log\'s size when the host saw "stored"); +T:',
        'seconds after "stored" (host CLOCK_MONOTONIC, polling the write log every 5 ms, from the',
        'poll that first saw the marker; "by size": from the one that saw "stored").',
        "",
        "| kernel | fs | case | submitted: first survives | flushed: first survives | "
        'write log after "stored" |',
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(head + sorted(lines.values())) + "\n"


def write(paths: list[Path], report_dir: Path) -> str:
    reports = [load_report(p) for p in paths]
    text = render(reports)
    timelines = render_timelines(reports)
    text += "\n" + timelines if text and timelines else ""
    if text:
        write_text(report_dir / "durability.md", "# Power-cut durability\n\n" + text)
    return text


def main(argv: list[str]) -> int:
    """``python -m runner.vm.durability.table REPORT.json...``: the table of existing reports."""
    reports = [load_report(Path(a)) for a in argv]
    print(render(reports), end="")
    print(render_timelines(reports), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
