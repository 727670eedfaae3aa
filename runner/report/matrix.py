"""The cross-environment matrix: cases as rows, environments as columns, cells by outcome.

An environment is a kernel release × backing × filesystem (× machine, when the reports come
from more than one architecture). Rows where the environments disagree come first: they are
what a reader of a kernel or filesystem comparison is looking for.
"""

from __future__ import annotations

from typing import Any

from runner import outcomes
from runner.report import model
from runner.report.formats.html import esc, outcome_class, page
from runner.report.formats.markdown import cell, code, icon

NOT_RUN = "·"


def build_matrix(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``reports`` is ``[(label, report), ...]``; returns columns and rows (see module doc).

    Two reports with the same environment (a repeated run) share a column; when they disagree
    the cell lists both outcomes, and the row counts as disagreeing.
    """
    machines = {model.environment(rep).get("machine") for _, rep in reports}
    with_machine = len(machines) > 1
    columns: dict[tuple, dict[str, Any]] = {}
    cells: dict[str, dict[tuple, list[str]]] = {}
    titles: dict[str, str] = {}
    for label, rep in reports:
        env = model.environment(rep)
        for r in model.results(rep):
            key = (
                model.kernel_label(rep),
                env.get("machine") if with_machine else None,
                str(r.get("backing") or "-"),
                model.backing_fs(rep, r) or "-",
            )
            col = columns.setdefault(
                key,
                {
                    "kernel_release": key[0],
                    "machine": env.get("machine"),
                    "backing": key[2],
                    "fs": key[3],
                    "sources": [],
                },
            )
            if label not in col["sources"]:
                col["sources"].append(label)
            rid = model.result_id(r)
            titles.setdefault(rid, str(r.get("title") or ""))
            seen = cells.setdefault(rid, {}).setdefault(key, [])
            o = model.outcome(r)
            if o not in seen:
                seen.append(o)
    keys = list(columns)
    rows = []
    for rid, by_col in cells.items():
        row_cells = [by_col.get(k) for k in keys]
        distinct = {o for c in row_cells if c for o in c}
        disagree = len(distinct) > 1
        rows.append(
            {"id": rid, "title": titles.get(rid, ""), "disagree": disagree, "cells": row_cells}
        )

    # Disagreements first (the point of a matrix), then rows that fail everywhere they ran
    # (consistent, but still deviations), then the rest; by id within each group.
    def failing(r: dict[str, Any]) -> bool:
        return any(outcomes.fails_gate(o) for c in r["cells"] if c for o in c)

    rows.sort(key=lambda r: (not r["disagree"], not failing(r), r["id"]))
    for c in columns.values():
        m = f" {c['machine']}" if with_machine and c["machine"] else ""
        c["label"] = f"{c['kernel_release']}{m} {c['backing']}/{c['fs']}"
    return {
        "columns": list(columns.values()),
        "rows": rows,
        "disagreeing": sum(1 for r in rows if r["disagree"]),
    }


def _cell_text(c: list[str] | None) -> str:
    return (
        "/".join((outcomes.of(o).short if o in outcomes.BY_NAME else o) for o in c)
        if c
        else NOT_RUN
    )


def render_matrix_text(m: dict[str, Any]) -> str:
    cols = m["columns"]
    lines = ["environments:"]
    for i, c in enumerate(cols, 1):
        lines.append(f"  [{i}] Linux {c['label']}  ({', '.join(c['sources'])})")
    heads = [f"[{i}]" for i in range(1, len(cols) + 1)]
    body = [[_cell_text(c) for c in r["cells"]] for r in m["rows"]]
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(heads)]
    idw = max([len("case")] + [len(r["id"]) for r in m["rows"]])
    lines.append("")

    def line(mark: str, first: str, cells: list[str]) -> str:
        padded = (x.ljust(w) for x, w in zip(cells, widths, strict=True))
        return (mark + first.ljust(idw) + "  " + "  ".join(padded)).rstrip()

    lines.append(line("  ", "case", heads))
    for r, b in zip(m["rows"], body, strict=True):
        lines.append(line("! " if r["disagree"] else "  ", r["id"], b))
    lines.append("")
    lines.append(
        f"{len(m['rows'])} cases, {m['disagreeing']} where environments disagree"
        " (marked !); · = not run there"
    )
    return "\n".join(lines) + "\n"


def render_matrix_markdown(m: dict[str, Any]) -> str:
    cols = m["columns"]
    lines = [
        "## mmapconf matrix",
        "",
        f"{len(m['rows'])} cases, **{m['disagreeing']}** where environments disagree (first).",
        "",
        "| case | "
        + " | ".join(
            f"{cell(c['kernel_release'])}<br>{cell(c['backing'])}/{cell(c['fs'])}" for c in cols
        )
        + " |",
        "|---|" + "---|" * len(cols),
    ]
    for r in m["rows"]:
        name = f"**{code(r['id'])}**" if r["disagree"] else code(r["id"])
        cs = [" ".join(f"{icon(o)} {o}" for o in c) if c else NOT_RUN for c in r["cells"]]
        lines.append(f"| {name} | " + " | ".join(cs) + " |")
    return "\n".join(lines) + "\n"


def render_matrix_html(m: dict[str, Any]) -> str:
    cols = m["columns"]
    head = "".join(
        f'<th title="{esc(", ".join(c["sources"]))}">{esc(c["kernel_release"])}<br>'
        f"{esc(c['backing'])}/{esc(c['fs'])}</th>"
        for c in cols
    )
    rows = []
    for r in m["rows"]:
        tds = []
        for c in r["cells"]:
            if not c:
                tds.append(f'<td class="cell o-notrun">{NOT_RUN}</td>')
            else:
                cls = outcome_class(c[0]) if len(c) == 1 else "o-other"
                tds.append(f'<td class="cell {cls}">{esc("/".join(c))}</td>')
        rows.append(
            f'<tr class="{"disagree" if r["disagree"] else "agree"}">'
            f'<th class="mono" title="{esc(r["title"])}">{esc(r["id"])}</th>{"".join(tds)}</tr>'
        )
    body = (
        "<h1>mmapconf matrix</h1>"
        f'<p>{len(m["rows"])} cases; <b id="disagreeing">{m["disagreeing"]}</b> where the'
        " environments disagree, listed first (red edge). · = not run there.</p>"
        f'<table id="matrix"><thead><tr><th>case</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return page("mmapconf matrix", body)
