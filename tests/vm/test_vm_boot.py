"""One real boot: a cached kernel runs two cases with a real ext4 disk.

Skipped when qemu or a cached kernel is missing (fetch one with
`mmapconf kernels fetch 6.12`); CI fetches one, so it runs there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from runner.vm import initramfs, kernels, qemu, run, vmreport
from runner.vm.target import stock

sys.path.insert(0, str(Path(__file__).parents[1] / "native"))
from native_parity import differences, normalise  # noqa: E402

CASES = ["cases/article/02-sigbus-past-eof.yaml", "cases/article/04-page-size-granularity.yaml"]


# The series CI fetches (scripts/vm-ci-setup.sh); other cached kernels are used only without it.
CI_SERIES = os.environ.get("MMAPCONF_CI_KERNEL", "6.1")


def pick_kernel() -> kernels.KernelTree | None:
    # This host's architecture only: the cache may hold other architectures' kernels too.
    trees = [t for t in kernels.cached() if t.abi.endswith("-amd64")]
    preferred = [t for t in trees if t.series == CI_SERIES]
    return (preferred or trees or [None])[-1]


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_boot_and_run_two_cases(tmp_path: Path) -> None:
    tree = pick_kernel()
    if tree is None:
        pytest.skip("no kernel cached: mmapconf kernels fetch 6.12")
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


def boot_shell(tmp_path: Path, script: str, timeout: float) -> tuple[qemu.BootResult, Path]:
    tree = pick_kernel()
    if tree is None:
        pytest.skip("no kernel cached: mmapconf kernels fetch 6.12")
    job = tmp_path / "job"
    job.mkdir()
    qemu.write_cmd_script(job, ["/bin/sh", "-c", script], Path("/"), {"PATH": "/usr/bin:/bin"})
    target = stock(tree)
    spec = qemu.GuestSpec(target.image, initramfs.ensure(target), job, tsc_khz=qemu.host_tsc_khz())
    result = qemu.boot(spec, timeout)
    if _panicked_at_boot(job):
        # A stock kernel under TCG now and then panics before init runs (seen: an int3 oops in
        # sched_clock_cpu on 7.3). run_under_kernels retries such an infrastructure failure
        # once; so does this direct boot, so the test judges the guest, not the emulator.
        result = qemu.boot(spec, timeout)
    return result, job


def _panicked_at_boot(job: Path) -> bool:
    console = job / "console.log"
    text = console.read_text(errors="replace") if console.is_file() else ""
    return "Kernel panic" in text and "MMAPCONF-EXIT" not in text


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_guest_kernel_warning_and_taint_are_reported(tmp_path: Path) -> None:
    # Root in the guest can write the kernel log and add a taint flag (W):
    # the same path a real WARN_ON during a case takes.
    script = "echo 'WARNING: CPU: 0 PID: 1 injected by the test' >/dev/kmsg; "
    script += "echo 512 >/proc/sys/kernel/tainted; exit 7"
    r, job = boot_shell(tmp_path, script, 120)
    assert r.exit_status == 7 and not r.timed_out
    issues = vmreport.guest_facts(job)["kernel_issues"]
    assert any("injected by the test" in i for i in issues), issues
    assert any("taint gained during the run: W" in i for i in issues), issues


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_hung_guest_is_killed_at_its_timeout(tmp_path: Path) -> None:
    r, job = boot_shell(tmp_path, "sleep 1000", 20)
    assert r.timed_out and r.exit_status is None
    assert 20 <= r.wall_s < 30
    assert (job / "console.log").is_file()


# The article cases and the provision cases: a tmpfs mount with options, an ext4 image on a loop
# device, a file with an inode flag, all made in the guest by the batch mode.
COMPARED = ["cases/article", "cases/signal/eof.yaml", "cases/mmap/fd.yaml"]


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_the_guest_without_python_gives_the_guest_harness_s_outcomes(tmp_path: Path) -> None:
    """The same kernel booted twice: once running the whole harness in the guest (with the
    native executor), once the batch mode alone. Every item: same outcome, same reason."""
    tree = pick_kernel()
    if tree is None:
        pytest.skip("no kernel cached: mmapconf kernels fetch 6.12")
    guest = ["run", *(str(run.PROJECT_ROOT / c) for c in COMPARED)]
    reports = {}
    for runner in ("python", "native"):
        paths = run.run_under_kernels(
            [tree.abi], guest, tmp_path / runner, ["ext4"], "tcg", 900, runner=runner
        )
        assert len(paths) == 1
        reports[runner] = json.loads(paths[0].read_text())
    seen = {
        runner: {r["name"]: [r["outcome"], normalise(r["reason"])] for r in rep["results"]}
        for runner, rep in reports.items()
    }
    assert len(seen["python"]) > 60
    assert differences(seen["python"], seen["native"]) == []
    assert "guest_runner" in reports["native"]["environment"]
    assert "guest_runner" not in reports["python"]["environment"]
    for key in ("kernel_release", "kernel_version", "machine", "page_size", "uid", "backings"):
        assert reports["native"]["environment"][key] == reports["python"]["environment"][key], key
