"""Atomic file writes: a crash leaves the previous complete file or none, never a torn one.

Every file is mode 0644 whatever the umask: reports are for others to read (a CI's artifact
upload, a web server, the user who did not run the kernel job as root)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from runner.errors import ReportError

MODE = 0o644


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    Text that holds what UTF-8 cannot encode (the lone surrogates a file name that is not UTF-8
    decodes to) is written with backslash escapes: a report is always written, and readable."""
    write_bytes(path, text.encode("utf-8", "backslashreplace"))


def write_bytes(path: Path, data: bytes) -> None:
    """Raises ReportError (a folder the user named that cannot be written) on failure."""
    write_chunks(path, [data])


def write_chunks(path: Path, chunks: Iterable[bytes]) -> None:
    """``write_bytes`` of the chunks' concatenation, which is never held whole in memory."""
    path = Path(path)
    try:
        _write(path, chunks)
    except OSError as exc:
        where = exc.filename or path
        raise ReportError(f"{where}: cannot write: {exc.strerror or exc}") from None


def _write(path: Path, chunks: Iterable[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, MODE)  # mkstemp's 0600 would survive the rename
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
