"""Running cases the way a user does (``mmapconf run``), or with MMAPCONF_MATRIX_CMD."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from runner.report.model import load_report


def run_cases(paths: list[Path], report_dir: Path, *extra: str) -> dict[str, dict[str, Any]]:
    """Run the case files or folders ``paths``; their results by case id (one backing each)."""
    command = shlex.split(os.environ.get("MMAPCONF_MATRIX_CMD", "")) or [
        sys.executable,
        "-m",
        "runner",
        "run",
    ]
    run = subprocess.run(
        [*command, *map(str, paths), *extra, "-n", "2", "--report-dir", str(report_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr
    report = load_report(report_dir / "report.json")
    return {r["id"]: r for r in report["results"]}
