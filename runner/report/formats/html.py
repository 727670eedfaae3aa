"""A self-contained HTML report: inline CSS and JS, no request to any network.

Rows are rendered here, in Python, so the page reads fine with scripts off; the script only
filters. A Content-Security-Policy forbids every fetch, so a report opened from a CI artifact
cannot phone home even if a case's text were hostile; every string is escaped.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from runner import outcomes
from runner.report import model
from runner.report.trace import COLUMNS, step_cells, steps_of

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def asset(name: str) -> str:
    """A CSS or JS file shipped beside this module (package data)."""
    return resources.files("runner.report.formats").joinpath(name).read_text(encoding="utf-8")


def page(title: str, body: str, script: str = "") -> str:
    """A complete page around ``body``, with the shared stylesheet inlined."""
    js = f"<script>\n{script}\n</script>\n" if script else ""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>\n{asset('report.css')}</style>\n</head>\n"
        f"<body>\n{body}\n{js}</body>\n</html>\n"
    )


def outcome_class(o: str) -> str:
    return f"o-{o}" if o in outcomes.BY_NAME else "o-other"


def _env_table(report: dict[str, Any]) -> str:
    env = model.environment(report)
    rows = []
    keys = (
        "kernel_release",
        "kernel_version",
        "machine",
        "page_size",
        "python",
        "libc",
        "uid",
        "started",
    )
    for k in keys:
        if k in env:
            rows.append(f'<tr><th>{esc(k)}</th><td class="mono">{esc(env[k])}</td></tr>')
    if env.get("argv"):
        argv = " ".join(str(a) for a in env["argv"])
        rows.append(f'<tr><th>argv</th><td class="mono">{esc(argv)}</td></tr>')
    for name, b in model.backings(report).items():
        rows.append(
            f'<tr><th>backing {esc(name)}</th><td class="mono">'
            f"dir {esc(b.get('dir') or '-')}, fs {esc(b.get('fs') or '-')}</td></tr>"
        )
    for k, v in env.items():
        if k not in keys and k not in ("argv", "backings"):
            rows.append(f'<tr><th>{esc(k)}</th><td class="mono">{esc(json.dumps(v))}</td></tr>')
    return '<table id="env">' + "".join(rows) + "</table>"


_MONO = ("op", "args", "expected", "observed")
_OK = {" ": "✓", ">": "✗", "-": "–"}


def _steps_table(r: dict[str, Any]) -> str:
    steps = steps_of(r)
    if not steps:
        return '<p class="muted">No step trace.</p>'
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in COLUMNS) + "<th>ok</th></tr>"
    body = []
    for s in steps:
        cells = step_cells(s)
        tds = "".join(
            f'<td class="mono">{esc(cells[c])}</td>' if c in _MONO else f"<td>{esc(cells[c])}</td>"
            for c in COLUMNS
        )
        bad = cells["ok"] == ">"
        body.append(f'<tr class="{"bad" if bad else "good"}">{tds}<td>{_OK[cells["ok"]]}</td></tr>')
    return f'<table class="steps">{head}{"".join(body)}</table>'


def _result_row(report: dict[str, Any], i: int, r: dict[str, Any]) -> str:
    o = model.outcome(r)
    name = model.result_name(r)
    tags = [str(t) for t in r.get("tags") or []]
    refs = [str(x) for x in r.get("refs") or []]
    text = " ".join(
        [
            name,
            str(r.get("title") or ""),
            str(r.get("claim") or ""),
            str(r.get("reason") or ""),
            o,
            *tags,
            *refs,
        ]
    ).lower()
    where = f"{r.get('file') or '?'}:{r.get('line') or '?'}"
    fs = model.backing_fs(report, r)
    details = [f"<p><b>Case</b> <code>{esc(where)}</code></p>"]
    if r.get("claim"):
        details.append(f"<p><b>Claim</b> {esc(r['claim'])}</p>")
    if refs:
        details.append(
            "<p><b>Refs</b></p><ul>" + "".join(f"<li>{esc(x)}</li>" for x in refs) + "</ul>"
        )
    base = r.get("baseline")
    if isinstance(base, dict):
        details.append(
            f"<p><b>Baseline</b> {esc(base.get('status'))}: {esc(base.get('reason'))}"
            f" (evidence: {esc(base.get('evidence'))})</p>"
        )
    if r.get("outcomes_seen"):
        details.append(f"<p><b>Outcomes seen</b> {esc(r['outcomes_seen'])}</p>")
    details.append(_steps_table(r))
    return (
        f'<tr class="result" id="r{i}" data-name="{esc(name)}" data-outcome="{esc(o)}"'
        f' data-backing="{esc(r.get("backing") or "")}" data-tags="{esc(" ".join(tags))}"'
        f' data-text="{esc(text)}">'
        f'<td class="mono">{esc(name)}</td>'
        f'<td>{esc(r.get("backing") or "")}<span class="muted"> {esc(fs or "")}</span></td>'
        f'<td class="o {outcome_class(o)}">{esc(o)}</td>'
        f"<td><details><summary>{esc(r.get('title') or name)}</summary>{''.join(details)}"
        f"</details></td>"
        f'<td class="reason">{esc(r.get("reason") or "")}</td>'
        f"<td>{float(r.get('duration_s') or 0):.3f}</td></tr>"
    )


def _options(values: list[str], counts: dict[str, int] | None = None) -> str:
    opts = ['<option value="">all</option>']
    for v in values:
        label = f"{v} ({counts[v]})" if counts else v
        opts.append(f'<option value="{esc(v)}">{esc(label)}</option>')
    return "".join(opts)


def render_html(report: dict[str, Any]) -> str:
    """The self-contained HTML page for ``report``."""
    rs = model.results(report)
    c = model.counts(report)
    env = model.environment(report)
    verdict = (
        '<span class="o o-failed">FAILED</span>'
        if model.gate_exit_code(report)
        else '<span class="o o-passed">PASSED</span>'
    )
    buttons = "".join(
        f'<li><button type="button" class="{outcome_class(o)}" data-outcome="{esc(o)}">'
        f'<span class="n" id="count-{esc(o)}">{n}</span> {esc(o)}</button></li>'
        for o, n in c.items()
    )
    tags = sorted({str(t) for r in rs for t in r.get("tags") or []})
    backings = sorted({str(r.get("backing")) for r in rs if r.get("backing")})
    present = {o: n for o, n in c.items() if n}
    parts = [
        f'<header><h1>mmapconf report</h1><p class="verdict">{verdict} on Linux '
        f"<code>{esc(env.get('kernel_release') or 'unknown')}</code></p></header>",
    ]
    if report.get("interrupted"):
        parts.append('<p class="o o-failed">The run was interrupted: results are incomplete.</p>')
    parts.append(
        '<section id="summary"><h2>Summary</h2>'
        f'<ul class="counts">{buttons}'
        f'<li><span class="n" id="count-total">{len(rs)}</span> total</li></ul>'
        f'<p class="muted">Duration {model.total_duration(report):.2f} s.</p></section>'
    )
    base = report.get("baseline")
    if isinstance(base, dict):
        problems = "".join(f"<li>{esc(p)}</li>" for p in base.get("problems") or [])
        parts.append(
            f'<section id="baseline"><h2>Baseline</h2><p><code>{esc(base.get("file"))}</code>:'
            f" {len(base.get('known') or [])} known, {len(base.get('unexpected_passes') or [])}"
            f" unexpected pass(es), {len(base.get('expired') or [])} expired.</p>"
            f"<ul>{problems}</ul></section>"
        )
    parts.append(f'<section id="environment"><h2>Environment</h2>{_env_table(report)}</section>')
    parts.append(
        '<section id="results"><h2>Results</h2><form id="filters" onsubmit="return false">'
        f'<label>outcome<select id="f-outcome">{_options(list(present), present)}</select></label>'
        f'<label>tag<select id="f-tag">{_options(tags)}</select></label>'
        f'<label>backing<select id="f-backing">{_options(backings)}</select></label>'
        '<label>text<input id="f-text" type="search" placeholder="name, title, reason…">'
        '</label><button type="button" id="f-reset">reset</button></form>'
        f'<p>Showing <span id="shown">{len(rs)}</span> of <span id="total">{len(rs)}</span>'
        " results.</p>"
        '<table id="results-table"><thead><tr><th>result</th><th>backing</th><th>outcome</th>'
        "<th>title (click for claim, refs and steps)</th><th>reason</th><th>s</th></tr></thead>"
        "<tbody>" + "".join(_result_row(report, i, r) for i, r in enumerate(rs)) + "</tbody>"
        '</table><p id="no-match" class="muted" hidden>No result matches the filter.</p>'
        "</section>"
    )
    title = f"mmapconf report: Linux {env.get('kernel_release') or 'unknown'}"
    return page(title, "\n".join(parts), asset("report.js"))
