"""``provision.sysctls: {vm.nr_hugepages: N}`` in a guest: a huge-page pool the harness reserves
before the case and puts back after it. One boot: a right expectation over the pool passes, a
wrong one fails naming process, step and both sides, a case that overruns its timeout times out;
after each, a case without the provision finds the pool empty again (mmap of a huge page of an
MFD_HUGETLB memfd is ENOMEM), so the pool was put back whatever the outcome.

Skipped when qemu or a cached kernel is missing (as tests/vm/test_vm_boot.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from runner.vm import run
from tests.vm.test_vm_boot import pick_kernel

POOL = """\
id: ID
title: t
requires: {arch: x86_64}
provision:
  sysctls: {vm.nr_hugepages: 2}
steps:
  - memfd_create: {name: "huge", flags: MFD_HUGETLB}
    as: fd
  - mmap: {length: 4 * 1024 * 1024, prot: PROT_WRITE, flags: MAP_PRIVATE, fd: fd}
  - memfd_create: {name: "more", flags: MFD_HUGETLB}
    as: more
  - mmap: {length: 2 * 1024 * 1024, prot: PROT_NONE, flags: MAP_PRIVATE, fd: more}
    expect: EXPECT
  - sleep: SLEEP
"""
EMPTY = """\
id: ID
title: t
requires: {arch: x86_64}
steps:
  - memfd_create: {name: "huge", flags: MFD_HUGETLB}
    as: fd
  - mmap: {length: 2 * 1024 * 1024, prot: PROT_NONE, flags: MAP_PRIVATE, fd: fd}
    expect: {errno: ENOMEM}
"""


def _pool(case_id: str, expect: str, sleep_ms: int = 0, timeout: str = "") -> str:
    text = POOL.replace("ID", case_id).replace("EXPECT", expect).replace("SLEEP", str(sleep_ms))
    return text.replace("title: t\n", f"title: t\n{timeout}")


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_pool_is_reserved_for_the_case_and_put_back_after_pass_fail_and_timeout(
    tmp_path: Path,
) -> None:
    tree = pick_kernel()
    if tree is None:
        pytest.skip("no kernel cached: mmapconf kernels fetch 6.12")
    docs = [
        EMPTY.replace("ID", "pool-0-empty-before"),
        _pool("pool-1-right", "{errno: ENOMEM}"),
        EMPTY.replace("ID", "pool-1-empty-after"),
        _pool("pool-2-wrong", "{errno: EINVAL}"),
        EMPTY.replace("ID", "pool-2-empty-after"),
        _pool("pool-3-timeout", "{errno: ENOMEM}", 30_000, "timeout: 2\n"),
        EMPTY.replace("ID", "pool-3-empty-after"),
    ]
    # The guest sees this host's tree but has a /tmp of its own: the cases go under build/.
    build = run.PROJECT_ROOT / "build"
    build.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build) as folder:
        cases = Path(folder) / "pool.yaml"
        cases.write_text("---\n".join(docs))
        paths = run.run_under_kernels(
            [tree.abi], ["run", str(cases)], tmp_path, ["ext4"], "tcg", 600, runner="python"
        )
    results = {r["id"]: r for r in json.loads(paths[0].read_text())["results"]}
    outcomes = {i: r["outcome"] for i, r in results.items()}
    assert outcomes == {
        "pool-0-empty-before": "passed",
        "pool-1-right": "passed",
        "pool-1-empty-after": "passed",
        "pool-2-wrong": "failed",
        "pool-2-empty-after": "passed",
        "pool-3-timeout": "timeout",
        "pool-3-empty-after": "passed",
    }, {i: (r["outcome"], r["reason"]) for i, r in results.items()}
    wrong = results["pool-2-wrong"]["reason"]
    assert "main step 4 (mmap): expected errno EINVAL" in wrong and "ENOMEM" in wrong, wrong
