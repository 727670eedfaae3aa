"""report.json: the one record of a run that every other format is rendered from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.report.atomic import write_text
from runner.session.runner import Result, summarize

SCHEMA_VERSION = 1


def build(
    environment: dict[str, Any], results: list[Result], duration_s: float, interrupted: bool = False
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "interrupted": interrupted,
        "environment": environment,
        "summary": summarize(results, duration_s),
        "results": [r.to_json() for r in results],
    }


def write(report: dict[str, Any], report_dir: Path) -> Path:
    path = Path(report_dir) / "report.json"
    write_text(path, json.dumps(report, indent=1, default=str) + "\n")
    return path


def read(path: Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)
