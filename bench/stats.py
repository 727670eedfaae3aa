"""Order statistics for timing samples, and how the figures are printed."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def p95(xs: Sequence[float]) -> float:
    """Nearest-rank 95th percentile: a value that was really observed, never interpolated."""
    if not xs:
        return math.nan
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.3f} ms"


def ratio(value: float, base: float) -> str:
    return f"{value / base:6.2f}x" if base > 0 else "     -"
