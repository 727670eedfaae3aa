"""What a case process sends the harness is hostile input: a native report that does not decode,
or one too many, ends that case as an error naming it, and never raises in the harness."""

from __future__ import annotations

import random
import struct

from runner.engine.native import execute
from runner.engine.native.program import Compiler
from runner.lang.conditions import Facts
from runner.lang.model import Case, Step


def _reader() -> execute._Reader:
    case = Case(
        "c",
        "c",
        "c.yaml",
        1,
        processes={"main": [Step("munmap", {"addr": 0, "length": 1}, "1", 2)]},
    )
    return execute._Reader(Compiler(case, Facts(), False).compile())


def test_random_bytes_end_the_case_with_an_error_and_never_raise():
    rng = random.Random(13)
    for n in range(300):
        reader = _reader()
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        if n % 3 == 0:  # a plausible record type and pid in front of the garbage
            data = struct.pack("<qq", rng.randrange(1, 9), 1) + data
        stop = reader.on_record(data)  # never raises
        harness = [m for m in reader.messages if m.get("proc") == "harness"]
        assert stop == bool(harness) or reader.messages[-1].get("limit")
        assert all("malformed report" in m["message"] for m in harness)


def test_a_step_id_the_program_does_not_have_is_malformed():
    reader = _reader()
    assert reader.on_record(struct.pack("<qqq", execute.REC_END, 1, 999))
    assert "malformed report" in reader.messages[-1]["message"]


def test_too_many_reports_end_the_case():
    reader = _reader()
    done = struct.pack("<qq", execute.REC_DONE, 1)
    assert not any(reader.on_record(done) for _ in range(execute.MAX_RECORDS))
    assert reader.on_record(done)
    assert reader.messages[-1]["message"] == f"more than {execute.MAX_RECORDS} reports"
