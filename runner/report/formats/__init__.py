"""Writing the rendered formats of one report next to report.json, each file atomically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runner.errors import ReportError
from runner.report import atomic
from runner.report.formats.html import render_html
from runner.report.formats.junit import render_junit
from runner.report.formats.ktap import render_ktap
from runner.report.formats.ltp import render_ltp
from runner.report.formats.markdown import render_markdown

Renderer = Callable[[dict[str, Any]], str]

# format name -> (file name, renderer). json is the engine's own file and is not rendered here.
FORMATS: dict[str, tuple[str, Renderer]] = {
    "junit": ("report.xml", render_junit),
    "html": ("report.html", render_html),
    "md": ("report.md", render_markdown),
    "ktap": ("report.ktap", render_ktap),
    "ltp": ("report-ltp.json", render_ltp),
}
ALIASES = {"xml": "junit", "markdown": "md", "tap": "ktap", "kirk": "ltp"}
ALL_FORMATS = ("json", *FORMATS)


def parse_formats(text: str) -> list[str]:
    """``"junit,html"`` -> ``["junit", "html"]``; ``all`` means every format; unknown names are
    a ReportError that lists the known ones."""
    out: list[str] = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        names = list(ALL_FORMATS) if name == "all" else [ALIASES.get(name, name)]
        for n in names:
            if n not in ALL_FORMATS:
                raise ReportError(
                    f"unknown report format {raw.strip()!r} (known: {', '.join(ALL_FORMATS)}, all)"
                )
            if n not in out:
                out.append(n)
    return out


def render_one(report: dict[str, Any], formats: Sequence[str]) -> str:
    """The one rendered format of ``formats`` (for stdout); several, or json alone, are a
    ReportError."""
    names = [n for n in formats if n != "json"]
    if len(names) != 1:
        raise ReportError(
            f"stdout takes one format, not {', '.join(formats) or 'none'}: "
            f"give --format with one of {', '.join(FORMATS)}"
        )
    return FORMATS[names[0]][1](report)


def write_formats(report: dict[str, Any], report_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Render ``report`` in each of ``formats`` into ``report_dir``; return the files written.

    ``json`` is accepted and ignored (the engine writes report.json itself). Every file is
    written to a temporary name and renamed, so a crash leaves the previous file or none.
    """
    names: list[str] = []
    for f in formats:
        names += [n for n in parse_formats(f) if n not in names]
    report_dir = Path(report_dir)
    written = []
    for name in names:
        if name == "json":
            continue
        filename, render = FORMATS[name]
        path = report_dir / filename
        atomic.write_text(path, render(report))
        written.append(path)
    return written
