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


def _cells(reports: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, str]]:
    """(kernel, case, fs) -> model -> symbol."""
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for rep in reports:
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


def write(paths: list[Path], report_dir: Path) -> str:
    text = render([load_report(p) for p in paths])
    if text:
        write_text(report_dir / "durability.md", "# Power-cut durability\n\n" + text)
    return text


def main(argv: list[str]) -> int:
    """``python -m runner.vm.durability.table REPORT.json...``: the table of existing reports."""
    print(render([load_report(Path(a)) for a in argv]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
