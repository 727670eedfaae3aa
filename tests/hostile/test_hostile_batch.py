"""In a guest's batch (executor.c's batch mode, runner/vm/guestrun.py), a case that writes a
malformed record to its report socket ends there and then, as it does on the host: the batch
checks each record's framing natively. Tried with the batch executor as a plain process on this
host, driven through the same two files a guest shares (tests/vm/test_vm_batch.py)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "vm"))
from test_vm_batch import batch_run  # noqa: E402

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 machine code")

# mov edi,3; lea rsi,[rip+13]; mov edx,16; mov eax,1 (write); syscall; ret; then a record of a
# kind no executor sends (99), pid 2
GARBAGE = (
    "bf03000000488d350d000000ba10000000b8010000000f05c3"
    + ((99).to_bytes(8, "little") + (2).to_bytes(8, "little")).hex()
)
CASE = f"""
id: malformed
title: a malformed record, then a long sleep
timeout: 30
steps:
  - mmap: {{length: PAGE, prot: PROT_READ|PROT_WRITE|PROT_EXEC, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
    as: code
  - store: {{addr: code, hex: "{GARBAGE}"}}
  - call: code
  - sleep: {{ms: 25000}}
---
id: honest
title: passes, after the malformed one
steps:
  - mmap: {{length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
"""


def test_a_malformed_record_ends_the_case_in_the_guest_at_once(tmp_path: Path) -> None:
    (tmp_path / "case.yaml").write_text(CASE)
    disk = Path(tempfile.mkdtemp(prefix="mmapconf-batch-disk.", dir=tmp_path))
    report = batch_run(tmp_path, [str(tmp_path / "case.yaml")], disk)
    got = {r["name"]: r for r in report["results"]}
    bad = got["malformed[anon]"]
    assert bad["outcome"] == "error" and "malformed report" in bad["reason"], bad
    # ended by the batch on the record, not by its 30 s timeout (nor the 25 s sleep)
    assert bad["duration_s"] < 10, bad["duration_s"]
    assert got["honest[anon]"]["outcome"] == "passed"
