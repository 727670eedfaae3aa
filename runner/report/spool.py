"""A run's results on disk as they come, so that the harness holds only their heads.

A result's steps and output are most of its size, and of a run's memory once the catalogue is
large: each result is written, as its line of report.json, to an unlinked temporary file when
it arrives, and report.json is written from that file at the end. What stays in memory is the
result's head (``head``): what the summary, the baseline and the gate read.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

from runner.report.model import dumps_result

# The keys of a result only the written report needs: a trace, what the case printed, and the
# case's own description (the summary, the baseline, the gate and the progress lines read none
# of them). Without these a head is about 1.5 KB of the harness's memory, not 3 KB.
BODY_KEYS = ("steps", "output", "title", "claim", "refs", "tags")

Place = tuple[int, int]  # offset and length in the spool


# Values that many results share, held once: the same backing, outcome and file come back in
# every frame a -n worker sends, each a new string otherwise.
_SHARED_TEXT = ("backing", "outcome", "file")
MAX_SHARED = 256
_FACTS: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}


def head(result: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in result.items():
        if k in BODY_KEYS:
            continue
        if k in _SHARED_TEXT and isinstance(v, str):
            v = sys.intern(v)
        elif k == "facts" and isinstance(v, dict):
            v = _shared_facts(v)
        out[k] = v
    return out


def _shared_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """One dict for each distinct facts of a result (a backing's kind and filesystem; a few
    in any run, and past MAX_SHARED each is kept as it came)."""
    try:
        key = tuple(facts.items())
        return _FACTS.setdefault(key, facts) if len(_FACTS) < MAX_SHARED else facts
    except TypeError:  # a value that is not hashable: kept as it came
        return facts


class Spool:
    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="mmapconf-results-")  # noqa: SIM115 - see close
        self._end = 0

    def put(self, result: dict[str, Any]) -> Place:
        data = dumps_result(result)
        os.pwrite(self._file.fileno(), data, self._end)
        place = (self._end, len(data))
        self._end += len(data)
        return place

    def text(self, place: Place) -> bytes:
        offset, length = place
        return os.pread(self._file.fileno(), length, offset)

    def get(self, place: Place) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.text(place))
        return result

    def close(self) -> None:
        self._file.close()
