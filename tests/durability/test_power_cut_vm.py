"""A handful of power-cut scenarios in a real guest (CI runs them: a cut boot each, one judge
boot), its side run by the native executor's batch: a case the documents settle passes on both
disk models, one whose expectation after the reboot is wrong fails naming the process, the step
and both sides, one whose step before the cut fails ends before it (failed, naming them too),
and an immediate cut without msync loses the stores; "stored" is placed in the write log at the
guest's marker.

Skipped without qemu or a cached kernel, like tests/vm/test_vm_boot.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.lang.loader import load_suite
from runner.report.model import load_report
from runner.vm import run
from runner.vm.durability import cut
from tests.vm.test_vm_boot import pick_kernel

ROOT = Path(__file__).resolve().parents[2]
RIGHT = ROOT / "cases/durability/durability-ms-sync-cut-now.yaml"
NONE = ROOT / "cases/durability/durability-none-cut-now.yaml"


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_power_cut_cases_in_a_guest(tmp_path: Path) -> None:
    tree = pick_kernel()
    if tree is None:
        pytest.skip("no kernel cached: mmapconf kernels fetch 6.1")
    wrong = tmp_path / "wrong.yaml"
    text = RIGHT.read_text().replace("id: durability-ms-sync-cut-now", "id: durability-wrong")
    wrong.write_text(text.replace('value: {data: "stored!"}', 'value: {data: "stored?"}'))
    early = tmp_path / "early.yaml"  # msync succeeds: its step fails, before the power cut
    text = text.replace("id: durability-wrong", "id: durability-early")
    early.write_text(
        text.replace("flags: MS_SYNC}", "flags: MS_SYNC}\n    expect: {errno: EINVAL}")
    )
    files = [str(RIGHT), str(NONE), str(wrong), str(early)]
    cases = load_suite(files).cases
    paths = run.run_under_kernels(
        [tree.abi], ["run", *files], tmp_path / "r", ["ext4"], "tcg", 600, power_cuts=cases,
        ordinary=False,
    )  # fmt: skip
    assert len(paths) == 1
    by = {r["name"]: r for r in load_report(paths[0])["results"]}
    for model in ("submitted", "flushed"):
        right = by[f"durability-ms-sync-cut-now[disk/{model}]"]
        assert right["outcome"] == "passed", right["reason"]
        assert right["facts"] == {"backing": "disk", "fs": "ext4", "disk": model}
        d = right["durability"]
        assert d["data"] == "survived"
        assert d["qemu_cache"] == "writeback"
        assert d["flushes_before_stored"] > 0  # the msync flushed the disk
        assert d["cut_after_ms"] == 0 and "CLOCK_MONOTONIC" in d["timeline_clock"]
        # "stored" placed at the guest's marker, found by the host in the log (no marker, or a
        # write of the filesystem's past its end, would make both results errors)
        assert d["stored_at"]["by"] == "marker" and d["stored_at"]["entry"] > 0
        assert d["stored_at"]["disk_offset"] == cut.FS_BYTES
        none = by[f"durability-none-cut-now[disk/{model}]"]
        assert none["outcome"] == "passed", none["reason"]
        assert none["durability"]["data"] == "lost"
        bad = by[f"durability-wrong[disk/{model}]"]
        assert bad["outcome"] == "failed"
        assert "after_reboot step 3.1 (read): expected" in bad["reason"]
        # both sides: what was expected, and what the disk held ("stored!" in hex)
        assert "expected value {data: 'stored?'}" in bad["reason"]
        assert "got success, value {hex 73746f72656421}" in bad["reason"]
        before = by[f"durability-early[disk/{model}]"]
        assert before["outcome"] == "failed"  # its step's expectation, not a disk's
        assert before["reason"].startswith("before the power cut: ")
        assert "main step 3 (msync): expected errno EINVAL, got success" in before["reason"]
    table = (tmp_path / "r" / "durability.md").read_text()
    assert "| `durability-ms-sync-cut-now` | S/S |" in table
    assert "| `durability-none-cut-now` | L/L |" in table
