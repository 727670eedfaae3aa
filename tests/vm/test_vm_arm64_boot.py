"""One real arm64 boot (the one short arm64 run CI makes): the guest root of another
architecture, the project as a second share, the page size the kernel was built with, and a
case whose flag only x86-64 defines skipped for its `requires`.

Skipped when qemu-system-aarch64 or a cached arm64 kernel is missing (CI fetches
arm64-16k:6.12: scripts/vm-ci-setup.sh).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runner.vm import arch, kernels, run

CI_SPEC = os.environ.get("MMAPCONF_CI_ARM64_KERNEL", "arm64-16k:6.12")
CASES = ["cases/article/02-sigbus-past-eof.yaml", "cases/article/04-page-size-granularity.yaml"]


def pick_kernel() -> kernels.KernelTree | None:
    trees = [t for t in kernels.cached() if t.arch is arch.ARM64]
    parsed = arch.parse_spec(CI_SPEC)
    preferred = [
        t for t in trees if parsed and (t.flavour, t.series) == (parsed[0].name, parsed[1])
    ]
    return (preferred or trees or [None])[-1]


@pytest.mark.skipif(bool(run.missing_tools(arch.ARM64)), reason="no qemu-system-aarch64")
def test_arm64_guest_runs_the_cases_with_its_page_size(tmp_path: Path) -> None:
    tree = pick_kernel()
    if tree is None:
        pytest.skip(f"no arm64 kernel cached: mmapconf kernels fetch {CI_SPEC}")
    root = run.PROJECT_ROOT
    flags = root / "cases/mmap/flags.yaml"
    guest = [
        "run",
        *(str(root / c) for c in CASES),
        str(flags),
        "-k",
        "sigbus or granularity or 32bit",
    ]
    spec = f"{tree.flavour}:{tree.series}"
    paths = run.run_under_kernels(
        [spec], guest + ["--backing", "disk,anon"], tmp_path, ["ext4"], None, 600
    )
    assert len(paths) == 1
    rep = json.loads(paths[0].read_text())
    env = rep["environment"]
    assert (env["machine"], env["page_size"]) == ("aarch64", tree.page_size)
    assert env["kernel_release"] == tree.abi and env["backings"]["disk"]["fs"] == "ext4"
    assert env["vm"]["accel"] == "tcg" and env["vm"]["machine"] == "virt"
    outcomes = {r["name"]: (r["outcome"], r.get("reason")) for r in rep["results"]}
    assert outcomes.pop("mmap-32bit[anon]") == ("skipped", "arch x86_64 required, have aarch64")
    assert outcomes and {o for o, _ in outcomes.values()} == {"passed"}, outcomes
