"""The one exception tree of mmapconf, and the exit status each error becomes.

``mmapconf`` (runner.cli.main) turns every error below into its exit status in one place,
``exit_status``: a mistake of the user's is one line on stderr and status 2, never a traceback.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1  # the gate failed, or a run could not be carried out
EXIT_USAGE = 2  # unusable arguments, files or host: nothing was judged


class MmapconfError(Exception):
    """Base of every error the harness raises on purpose (exit status 1)."""


class UsageError(MmapconfError):
    """Unusable command-line arguments or options (exit status 2)."""


class ReportError(UsageError):
    """A report, baseline or output folder a user gave us is unusable: one clear line, exit 2."""


class HostUnfit(UsageError):
    """This host cannot do what was asked (boot kernels: no qemu, ...): exit 2, with the reason."""


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


def exit_status(exc: BaseException) -> tuple[int, str]:
    """The exit status and the message for an error that ends a command."""
    if isinstance(exc, KeyboardInterrupt):
        return 128 + getattr(exc, "signum", signal.SIGINT), "interrupted"
    if isinstance(exc, UsageError):
        return EXIT_USAGE, str(exc)
    return EXIT_FAILED, str(exc)
