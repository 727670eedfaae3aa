"""A validated case held packed: its pickled, compressed bytes, unpacked where it is read.

A loaded case is about 11 KB of Python objects and under 1 KB packed. ``mmapconf run`` plans a
catalogue one file at a time and holds each case packed, so the harness (and each ``-n`` worker
it forks, which sees the harness's memory) grows by the packed size per case, not the loaded one;
a worker unpacks the case of the item it runs. The bytes are made here, in this process, from a
case already validated: they never come from outside, so plain pickle reads them back.
"""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass

from runner.lang.model import Case


@dataclass(frozen=True, eq=False)
class PackedCase:
    id: str
    timeout: float  # what the harness reads of a case while a worker runs it
    data: bytes

    @classmethod
    def of(cls, case: Case) -> PackedCase:
        data = zlib.compress(pickle.dumps(case, protocol=pickle.HIGHEST_PROTOCOL), 1)
        return cls(case.id, case.timeout, data)

    def unpack(self) -> Case:
        """The case; the last one unpacked is kept (the items of a case, one per backing, come
        one after the other), so reading it again costs nothing."""
        if _last and _last[0] is self:
            return _last[1]
        case: Case = pickle.loads(zlib.decompress(self.data))
        _last[:] = [self, case]
        return case


_last: list = []  # [PackedCase, its Case]
