"""One real boot: a cached kernel runs two cases with a real ext4 disk.

Skipped when qemu or a cached kernel is missing (fetch one with
`python -m runner.vm kernels fetch 6.12`); CI fetches one, so it runs there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.vm import kernels, run

CASES = ["cases/article/02-sigbus-past-eof.yaml", "cases/article/04-page-size-granularity.yaml"]


def pick_kernel() -> kernels.KernelTree | None:
    trees = kernels.cached()
    return trees[-1] if trees else None


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_boot_and_run_two_cases(tmp_path: Path) -> None:
    tree = pick_kernel()
    if tree is None:
        pytest.skip("no kernel cached: python -m runner.vm kernels fetch 6.12")
    root = run.PROJECT_ROOT
    guest = ["run", *(str(root / c) for c in CASES), "--backing", "disk,tmpfs"]
    paths = run.run_under_kernels([tree.abi], guest, tmp_path, ["ext4"], "tcg", 300)
    assert len(paths) == 1
    rep = json.loads(paths[0].read_text())
    env = rep["environment"]
    assert env["kernel_release"] == tree.abi
    assert env["backings"]["disk"]["fs"] == "ext4"  # a real block device, not tmpfs
    assert env["backings"]["disk"]["dir"] == run.GUEST_DISK_DIR
    assert env["vm"]["accel"] == "tcg" and env["vm"]["kernel_issues"] == []
    outcomes = {r["name"]: r["outcome"] for r in rep["results"]}
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes
    assert (paths[0].parent / "dmesg.txt").stat().st_size > 0
    assert (paths[0].parent / "console.log").is_file()
