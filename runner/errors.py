"""The one exception tree of mmapconf."""

from __future__ import annotations

from dataclasses import dataclass


class MmapconfError(Exception):
    """Base of every error the harness raises on purpose."""


class UsageError(MmapconfError):
    """Unusable command-line arguments or options (exit status 2)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a case file, located at file:line:column."""

    file: str
    line: int
    column: int
    message: str
    key: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class CaseRuntimeError(MmapconfError):
    """A case could not be carried out as written (its set-up broke): outcome ``error``."""
