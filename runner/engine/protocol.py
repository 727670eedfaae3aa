"""The contract between a case process and the harness: how a case process ends.

A case process ends with one of these exit statuses (or dies by a signal); the harness turns the
ending, with the process's final report, into a verdict in runner.engine.verdict. The numbers
are shared with runner/engine/native/executor.c.
"""

from __future__ import annotations

EXIT_DONE = 0  # every step ran and every expectation held
EXIT_FAILED = 3  # an expectation did not hold (recorded in a step report)
EXIT_ABORTED = 4  # another process of the case failed and the case was abandoned
EXIT_ERROR = 70  # the executor in the case process failed (EX_SOFTWARE)
