"""SIGINT and SIGTERM as one exception, held back while the harness cleans up.

A run that is interrupted must still kill its case processes, remove its scratch folders and
write its report. Python's own SIGINT handler raises KeyboardInterrupt wherever the main thread
happens to be, which can be half-way through that clean-up; SIGTERM's default kills the harness
with no clean-up at all. Here both raise ``Interrupted`` (a KeyboardInterrupt, so code that already
stops on Ctrl-C stops on it too), except inside ``deferred()`` sections, which finish first.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stub: what signal wraps
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handlers = dict[signal.Signals, Any]  # what install returns, for restore


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _State:
    depth = 0  # how many deferred() sections the main thread is inside
    pending: int | None = None  # a signal that arrived inside one, raised when the last ends
    raise_as: Callable[[int], BaseException] = Interrupted


def _handler(signum: int, frame: Any) -> None:
    if _State.depth:
        _State.pending = _State.pending or signum
        return
    raise _State.raise_as(signum)


def _raise_pending() -> None:
    if _State.depth == 0 and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise _State.raise_as(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A clean-up section: SIGINT/SIGTERM arriving inside it are raised once it ends."""
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
    _raise_pending()


def install(
    raise_as: Callable[[int], BaseException] = Interrupted,
) -> Handlers:
    """Route SIGINT and SIGTERM to our handler; returns the previous handlers for ``restore``."""
    _State.raise_as = raise_as
    return {sig: signal.signal(sig, _handler) for sig in SIGNALS}


def restore(previous: Handlers) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)


@contextlib.contextmanager
def while_running() -> Iterator[None]:
    """Make SIGTERM (and Python's default SIGINT) interrupt cleanly for the duration.

    Used around each case by the session, so library users such as the pytest plugin get the
    same clean-up as ``mmapconf run``. A handler that someone else installed is left alone, and so
    is everything outside the main thread (signal handlers can only be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = [
        sig for sig, default in _DEFAULTS if _signal.getsignal(sig) in (default, signal.SIG_DFL)
    ]
    previous = [(sig, _signal.signal(sig, _handler)) for sig in ours]
    try:
        yield
    finally:
        for sig, old in previous:
            _signal.signal(sig, old)


# The handlers while_running replaces. It runs around every case, so it calls _signal, which
# signal.signal and getsignal wrap: they turn every handler into an enum member, by a failed
# lookup when it is a function (6-8 us a call; six calls were 50 us of each case-run).
_DEFAULTS = ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, None))


def block() -> Any:
    """Block SIGINT/SIGTERM (around fork: a child must not run the harness's handler)."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def unblock(previous: Any) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, previous)
