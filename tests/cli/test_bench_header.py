"""bench/run.py says when and under what load its figures were taken (the README quotes both)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import run  # noqa: E402


def test_the_benchmark_prints_its_date_and_load(capsys: pytest.CaptureFixture[str]) -> None:
    run.header(["cases/"])
    first = capsys.readouterr().out.splitlines()[0]
    assert re.search(
        r"started \d{4}-\d\d-\d\d \d\d:\d\d UTC, load average [\d.]+ [\d.]+ [\d.]+$", first
    )
