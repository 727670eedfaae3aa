"""What one case-run observed, as the verdict (runner.engine.verdict) reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Ending:
    """How one process ended, from its wait status."""

    pid: int
    exit: int | None = None
    signal: int | None = None


@dataclass
class Execution:
    """Everything observed while one case ran on one backing."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    endings: dict[int, Ending] = field(default_factory=dict)
    timed_out: bool = False
    dropped_steps: int = 0  # passed steps inside loops, counted by the executor, not sent
    init_status: int = 0  # a wait status of the case's init that we did not cause (0: none)
    output: bytes = b""  # the first bytes of the case's stdout and stderr (server.MAX_OUTPUT)
    output_dropped: int = 0
    memory_limit_hit: bool = False
