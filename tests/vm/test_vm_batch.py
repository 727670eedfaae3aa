"""The guest runner without Python (runner/vm/guestrun.py, executor.c's batch mode), tried on
this host with no qemu: the static executor in its batch mode as a plain process here, the
host's part driving it through the same two files a guest shares. Its outcomes must be those of
the in-process native run of the same items; the boot tests (test_vm_boot.py) run it in a guest.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from runner.engine.provision import guest_only
from runner.lang.loader import load_suite
from runner.lang.model import Case
from runner.lang.powercut import is_power_cut
from runner.report.model import load_report
from runner.session.runner import RunConfig, Runner
from runner.vm import batch, guestrun

sys.path.insert(0, str(Path(__file__).parents[1] / "native"))
from native_parity import differences, normalise  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def batch_run(tmp_path: Path, paths: list[str], disk: Path, *extra: str) -> dict:
    """The report of a batch run of PATHS whose executor runs here, not in a guest."""
    job = tmp_path / "job"
    job.mkdir(parents=True)
    argv = ["run", *paths, *extra, "--dir", str(disk), "--report-dir", str(job)]
    with batch.on_this_host(job) as here:
        # walls=False: a batch on this host never mounts over its /sys/fs/cgroup
        path = guestrun.drive(
            argv, job, here.writer, here.reader, here.alive, str(here.provision), walls=False
        )
    assert here.status == 0, (job / "stderr.txt").read_text()
    assert path is not None
    return load_report(path)


def _guest_only(case: Case) -> bool:
    """Set-up a batch on a host refuses by design (machine-wide: sysctls, swap, core_pattern;
    a memory cgroup, which the batch does not make), each side with its own reason."""
    p = case.provision
    return p is not None and (bool(p.sysctls) or p.memory_limit is not None or bool(guest_only(p)))


def test_the_batch_gives_the_in_process_native_run_s_outcomes(tmp_path: Path) -> None:
    """Every catalogue item, provision cases included (their tmpfs and ext4 mounts, inode flags):
    same outcome and normalised reason as the native executor driven from this process."""
    disk = Path(tempfile.mkdtemp(prefix="mmapconf-batch-disk.", dir=tempfile.gettempdir()))
    report = batch_run(tmp_path, [str(ROOT / "cases")], disk)
    got = {r["name"]: [r["outcome"], normalise(r["reason"])] for r in report["results"]}
    runner = Runner(RunConfig(dirs=[str(disk)]))
    try:
        # power-cut cases are left to their own boots (tests/durability), not to the batch;
        # set-up only a guest makes is skipped on both sides, each with its own reason
        items, apart = [], set()
        for i in runner.plan(load_suite([str(ROOT / "cases")])):
            if i.case is not None and (is_power_cut(i.case) or _guest_only(i.case)):
                apart.add(i.name)
            else:
                items.append(i)
        got = {n: v for n, v in got.items() if n not in apart}
        want = {r.name: [r.outcome, normalise(r.reason)] for r in map(runner.run_item, items)}
    finally:
        runner.close()
    assert len(want) > 400
    assert differences(want, got) == []
    for name in ("sig-ext4-enospc[disk:ext4]", "sig-tmpfs-full[disk:tmpfs]", "fd-noexec-mount"):
        assert any(n.startswith(name) and got[n][0] == "passed" for n in got), name
    assert [o for n, o in got.items() if n.startswith("fd-append-inode")] == [["passed", ""]]
    assert not list(disk.iterdir())  # every scratch folder removed
    env = report["environment"]
    assert env["uid"] == 0 and env["page_size"] > 0 and "guest_runner" in env


def test_facts_come_from_the_executor(tmp_path: Path) -> None:
    report = batch_run(tmp_path, [str(ROOT / "cases/article/02-sigbus-past-eof.yaml")], tmp_path)
    env = report["environment"]
    assert env["kernel_release"] == os.uname().release
    assert env["backings"]["tmpfs"]["fs"] == "tmpfs"
    assert {r["outcome"] for r in report["results"]} == {"passed"}


def test_mount_options_split_as_mount_8_does() -> None:
    assert guestrun.mount_options("noexec,size=1m") == (8, "size=1m")
    assert guestrun.mount_options("ro,nosuid,nodev,mode=0755,exec") == (1 | 2 | 4, "mode=0755")
    assert guestrun.mount_options("") == (0, "")


def facts(**over: str) -> guestrun.GuestFacts:
    one = {
        "release": "6.1.0-56-amd64",
        "version": "#1",
        "machine": "x86_64",
        "page_size": "4096",
        "uid": "0",
        "landlock_abi": "2",
        "loop_control": "1",
        "hugetlbfs": "",
        **over,
    }
    pairs = [*one.items(), ("filesystem", "ext4"), ("filesystem", "tmpfs")]
    pairs += [("syscall", "memfd_create=1"), ("syscall", "cachestat=0")]
    pairs += [("sysctl", "vm.max_map_count=65530"), ("fstype", "/dev/shm=tmpfs")]
    pairs += [("fstype", "/run/mmapconf/disk=ext4")]
    return guestrun.GuestFacts(pairs)


def test_the_plan_is_judged_on_the_guest_s_facts() -> None:
    f = facts()
    conditions = f.facts().for_backing("disk", "ext4")
    assert conditions.kernel == "6.1.0-56-amd64" and conditions.root
    assert conditions.has_syscall("memfd_create") and not conditions.has_syscall("cachestat")
    assert not conditions.has_syscall("no_such_call")
    assert conditions.read_sysctl("vm.max_map_count") == "65530"
    assert conditions.read_sysctl("vm.nr_hugepages") is None
    kinds = f.backings("/run/mmapconf/disk")
    assert kinds["disk"][0].fs == "ext4" and kinds["tmpfs"][0].unavailable == ""
    assert kinds["hugetlbfs"][0].unavailable == "no writable hugetlbfs is mounted"
    assert f.why_cannot_mount("tmpfs") == ""
    assert "no xfs" in f.why_cannot_mount("xfs")
    assert "mounting needs root" in facts(uid="1000").why_cannot_mount("tmpfs")
    assert "loop" in facts(loop_control="0").why_cannot_mount("ext4")


def test_another_page_size_is_refused_with_the_reason() -> None:
    assert guestrun.plannable(guestrun.CONSTANTS["PAGE"]) == ""
    assert "page size (65536)" in guestrun.plannable(65536)


def test_a_guest_that_stops_is_said_not_waited_for(tmp_path: Path) -> None:
    out = tmp_path / "batch.out"
    reader = batch.OutputReader(out)
    with pytest.raises(batch.GuestGone, match="ended"):
        reader.next(float("inf"), lambda: False)
    with open(out, "ab") as f:  # half a record, and the guest gone
        f.write(batch._HEAD.pack(batch.RESULT, 4) + b"\0" * 8)
    with pytest.raises(batch.GuestGone):
        reader.next(float("inf"), lambda: False)
    reader.close()


def test_lanes_run_each_case_once_with_its_result(tmp_path: Path) -> None:
    """-n 3: three fork servers in the batch take the cases as they come free; every item comes
    back once, as it does from one lane."""
    paths = [str(ROOT / "cases/article"), str(ROOT / "cases/signal/eof.yaml")]
    one = batch_run(tmp_path / "one", paths, tmp_path)
    three = batch_run(tmp_path / "three", paths, tmp_path, "-n", "3")
    got = {r["name"]: r["outcome"] for r in three["results"]}
    assert len(got) == len(three["results"]) > 40
    assert got == {r["name"]: r["outcome"] for r in one["results"]}
