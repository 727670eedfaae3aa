"""mmapconf's cache folder, and the cache of validated case files in it.

Loading and validating the catalogue is most of a run's start (YAML parsing above all), and the
case files rarely change between runs. A file's validated form is kept under the SHA-256 of
everything it was made from: the file's bytes (the ones then parsed, read once), the name it is
shown by, the architecture whose names it is checked against, the source of the code that parses
and validates it, the Python and the PyYAML. An edited file, or edited validation code, has
another key, so it is validated again: nothing in the cache stands for bytes not validated.

An entry is a pickle, read back by an unpickler that builds only the case model's own classes
and plain data, from a folder and files this user owns and no one else can write (a folder that
is not is not used). ``MMAPCONF_CACHE`` moves the cache folder; ``MMAPCONF_NO_CACHE=1`` turns the
cache of case files off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

import runner.errors
import runner.lang

# Entries of one version of the code, and versions kept (the oldest go when a new one is made).
MAX_ENTRIES = 4096
KEPT_VERSIONS = 4
_CODE_SOURCES = (Path(runner.errors.__file__), *sorted(Path(runner.lang.__file__).parent.glob("*")))


def root() -> Path:
    """The cache folder: $MMAPCONF_CACHE, or mmapconf under $XDG_CACHE_HOME or ~/.cache."""
    given = os.environ.get("MMAPCONF_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "mmapconf"


@functools.cache
def code_version() -> str:
    """The hash of what a validated file depends on besides its own bytes."""
    h = hashlib.sha256()
    h.update(repr((sys.version, yaml.__version__)).encode())
    for path in _CODE_SOURCES:
        if path.suffix in (".py", ".json") and path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def key(raw: bytes, *context: str) -> str:
    """The entry of ``raw`` as made in ``context`` (the name it is shown by, the architecture
    whose names it was checked against)."""
    h = hashlib.sha256(raw)
    for part in context:
        h.update(b"\0" + part.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def enabled() -> bool:
    return os.environ.get("MMAPCONF_NO_CACHE", "") in ("", "0")


def load(entry_key: str, allowed: frozenset[type]) -> Any | None:
    """The entry stored under ``entry_key``, or None (none, unreadable, not ours, or holding
    anything but ``allowed`` classes and plain data)."""
    folder = _folder(create=False)
    if folder is None:
        return None
    try:
        fd = os.open(folder / entry_key, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not _private(os.fstat(fd)):
            return None
        try:
            return _Unpickler(f, allowed).load()
        except Exception:  # noqa: BLE001 - a damaged entry is a miss
            return None


def store(entry_key: str, value: Any) -> None:
    """Keep ``value`` under ``entry_key``, atomically; a cache that cannot be written is none."""
    folder = _folder(create=True)
    if folder is None:
        return
    with contextlib.suppress(OSError, pickle.PicklingError, RecursionError):
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if len(os.listdir(folder)) >= MAX_ENTRIES:  # a bound, not an LRU: start again
            _empty(folder)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, folder / entry_key)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class _Unpickler(pickle.Unpickler):
    def __init__(self, f: io.BufferedReader, allowed: frozenset[type]):
        super().__init__(f)
        self.allowed = {(c.__module__, c.__qualname__): c for c in allowed}

    def find_class(self, module: str, name: str) -> Any:
        found = self.allowed.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a cached case")
        return found


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _folder(create: bool) -> Path | None:
    """This code version's folder of validated files, if it is (or, with ``create``, can be
    made) private to this user, every folder above it up to the cache folder too."""
    base = root()
    folder = base / "cases" / code_version()
    if create:
        try:
            for f in (base, base / "cases"):
                f.mkdir(mode=0o700, exist_ok=True)
            if not folder.exists():
                _drop_other_versions(base / "cases")
                folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return None
    try:
        # the cache folder may be a link to one of this user's; the two folders below it are ours
        if _private(os.stat(base)) and all(_private(os.lstat(f)) for f in (base / "cases", folder)):
            return folder
    except OSError:
        pass
    return None


def _drop_other_versions(parent: Path) -> None:
    """Remove all but the most recently made versions' folders: two versions of the code in use
    at once (two checkouts, a test run beside a real one) each keep theirs."""
    folders = [f for f in parent.iterdir() if f.is_dir() and not f.is_symlink()]
    folders.sort(key=lambda f: f.stat().st_mtime, reverse=True)
    for old in folders[KEPT_VERSIONS - 1 :]:
        _empty(old)
        with contextlib.suppress(OSError):
            old.rmdir()


def _empty(folder: Path) -> None:
    for entry in os.scandir(folder):
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
