"""The native executor agrees with the recorded run of the Python step executor
(parity-record.json) on every item of the catalogue and of the expectation-by-context matrix it
holds: the independent check of the native executor's observations and judging."""

from __future__ import annotations

import json
import os

import pytest
from native_parity import RECORD, differences, normalise, outcomes


def test_normalise_keeps_what_names_a_step_and_drops_what_changes_per_run():
    reason = "main step 3 (mmap): expected value 0x7f00aa000000, got success; pid 4242 at 1796116939165282254"
    assert normalise(reason) == "main step 3 (mmap): expected value 0xADDR, got success; pid N at N"


def test_native_matches_the_recorded_python_run():
    record = json.loads(RECORD.read_text())
    if record["kernel"] != os.uname().release:
        pytest.skip(f"recorded on {record['kernel']}: outcomes are per kernel")
    native = outcomes()
    shared = {name: native.get(name) for name in record["python"]}
    # A case whose expectation changed since the record is a difference to look at by hand:
    # the record is the Python executor's, which is gone, so it is not written again.
    assert differences(record["python"], shared) == []
