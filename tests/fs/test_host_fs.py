"""``mmapconf run --fs ext4,xfs,btrfs`` on the host: a loop-mounted image per filesystem, the
results named ``ID[disk:FS]`` and gated by ``ID[disk]`` baseline entries, and nothing left
behind: not after a normal end, not after SIGINT or SIGTERM, and after SIGKILL not once the
next run has started (it undoes what the killed run left)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.engine import mounts
from runner.engine.backings import DiskPlace, name_disks
from runner.errors import UsageError
from runner.report.baseline import apply_baseline
from runner.session.filesystems import FsSpec, parse_fs_list

ROOT = Path(__file__).resolve().parents[2]
FS = ["ext4", "xfs", "btrfs"]
needs_mounts = pytest.mark.skipif(
    any(mounts.why_cannot_mount(f) for f in FS),
    reason="needs root, loop devices and mkfs.ext4/xfs/btrfs",
)
SLOW_CASE = """\
id: slow-disk-case
title: holds the run inside a case long enough to be interrupted
steps:
  - file: f
    size: 4096
  - sleep: 20000
timeout: 60
"""


def test_fs_list_with_mount_options() -> None:
    assert parse_fs_list("ext4,xfs:-o,dax=never,noatime,btrfs:compress=zstd") == [
        FsSpec("ext4"),
        FsSpec("xfs", "dax=never,noatime"),
        FsSpec("btrfs", "compress=zstd"),
    ]
    assert parse_fs_list("xfs:-o,dax=never") == [FsSpec("xfs", "dax=never")]
    with pytest.raises(UsageError, match="unknown filesystem 'zfs'"):
        parse_fs_list("ext4,zfs")


def test_disk_backings_are_named_by_filesystem(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = name_disks([DiskPlace(str(tmp_path / "a"))])
    assert [b.name for b in one] == ["disk"]
    two = name_disks([DiskPlace(str(tmp_path / "a"), "xfs"), DiskPlace(str(tmp_path / "b"), "xfs")])
    assert [b.name for b in two] == ["disk:xfs", "disk:xfs-2"]
    gone = name_disks([DiskPlace(None, "ext4", "no loop devices"), DiskPlace(str(tmp_path / "a"))])
    assert gone[0].name == "disk:ext4" and gone[0].unavailable == "no loop devices"


def _report(results: list[tuple[str, str, str]]) -> dict:
    return {
        "environment": {"kernel_release": "6.18.0", "machine": "x86_64", "backings": {}},
        "results": [
            {"name": f"c[{b}]", "id": "c", "backing": b, "outcome": o, "facts": {"fs": fs}}
            for b, fs, o in results
        ],
    }


def test_baseline_disk_entry_covers_every_disk_filesystem_narrowed_by_when(tmp_path: Path) -> None:
    base = tmp_path / "b.yaml"
    base.write_text(
        textwrap.dedent(
            """\
            version: 1
            entries:
              - name: "c[disk]"
                when: {fs: [ext4, xfs]}
                reason: r
                evidence: e
            """
        )
    )
    rep = _report(
        [
            ("disk:ext4", "ext4", "failed"),
            ("disk:xfs", "xfs", "failed"),
            ("disk:btrfs", "btrfs", "failed"),
        ]
    )
    out = {r["backing"]: r["outcome"] for r in apply_baseline(rep, base, False)["results"]}
    assert out == {"disk:ext4": "known", "disk:xfs": "known", "disk:btrfs": "failed"}
    # The result's own fact comes before the environment's entry for its backing.
    rep = _report([("disk", "btrfs", "failed")])
    rep["environment"]["backings"] = {"disk": {"kind": "disk", "fs": "ext4"}}
    assert apply_baseline(rep, base, False)["results"][0]["outcome"] == "failed"


def _leftovers(root: Path) -> list[str]:
    return mounts.mounts_under(root) + mounts.loops_backed_under(root)


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "MMAPCONF_SCRATCH_ROOT": str(root)}


def _mmapconf(argv: list[str], root: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *argv],
        cwd=ROOT,
        env=_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@needs_mounts
def test_catalogue_flags_case_on_three_filesystems_gated_by_the_baseline(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    argv = ["run", "cases/mmap/flags.yaml", "--fs", "ext4,xfs,btrfs", "--backing", "disk"]
    argv += ["--baseline", "baselines/linux.yaml", "--report-dir", str(tmp_path / "r")]
    p = _mmapconf(argv, root)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, out + err
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert set(rep["environment"]["backings"]) >= {"disk:ext4", "disk:xfs", "disk:btrfs"}
    got = {r["name"]: r["outcome"] for r in rep["results"]}
    for fs, want in (("ext4", "known"), ("xfs", "known"), ("btrfs", "passed")):
        assert got[f"mmap-sync-shared-nondax[disk:{fs}]"] == want, got
        assert got[f"mmap-sync-private[disk:{fs}]"] == want, got
    disk = [r for r in rep["results"] if r["backing"].startswith("disk")]
    assert {r["facts"]["fs"] for r in disk} == set(FS)
    assert _leftovers(root) == [] and not list(root.glob("run-*"))


@needs_mounts
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_mount_or_loop_device(tmp_path: Path, sig: int) -> None:
    root = tmp_path / "scratch"
    case = tmp_path / "slow.yaml"
    case.write_text(SLOW_CASE)
    p = _mmapconf(["run", str(case), "--fs", "ext4,xfs", "--report-dir", str(tmp_path / "r")], root)
    _wait_for_mounts(root, 2, p)
    time.sleep(1.0)  # inside the case's sleep
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, out + err
    assert json.loads((tmp_path / "r" / "report.json").read_text())["interrupted"] is True
    assert _leftovers(root) == [] and not list(root.glob("run-*"))


@needs_mounts
def test_the_run_after_a_sigkilled_one_undoes_what_it_left(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    case = tmp_path / "slow.yaml"
    case.write_text(SLOW_CASE)
    p = _mmapconf(
        ["run", str(case), "--fs", "ext4,xfs,btrfs", "--report-dir", str(tmp_path / "r")], root
    )
    _wait_for_mounts(root, 3, p)
    p.kill()
    p.communicate(timeout=60)
    time.sleep(0.5)  # the case's process group dies with the harness's (PR_SET_PDEATHSIG)
    assert len(mounts.mounts_under(root)) == 3 and len(mounts.loops_backed_under(root)) == 3
    quick = tmp_path / "quick.yaml"
    quick.write_text(SLOW_CASE.replace("sleep: 20000", "sleep: 1"))
    nxt = _mmapconf(["run", str(quick), "--report-dir", str(tmp_path / "r2")], root)
    out, err = nxt.communicate(timeout=120)
    assert nxt.returncode == 0, out + err
    assert "undid what an earlier run left" in err
    assert _leftovers(root) == [] and not list(root.glob("run-*"))


def _wait_for_mounts(root: Path, n: int, p: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if root.is_dir() and len(mounts.mounts_under(root)) >= n:
            return
        assert p.poll() is None, p.communicate()
        time.sleep(0.2)
    raise AssertionError("the --fs mounts never appeared")


def test_a_filesystem_this_host_cannot_mount_is_skipped_with_its_reason(monkeypatch) -> None:
    from runner.session import filesystems

    monkeypatch.setattr(mounts, "why_cannot_mount", lambda fs: f"mkfs.{fs} is not installed")
    with filesystems.host_disks(parse_fs_list("xfs,btrfs"), log=lambda m: None) as disks:
        assert [(b.name, b.dir, b.unavailable) for b in disks] == [
            ("disk:xfs", None, "--fs xfs: mkfs.xfs is not installed"),
            ("disk:btrfs", None, "--fs btrfs: mkfs.btrfs is not installed"),
        ]


def test_fs_and_dir_together_and_vm_options_without_kernel_are_refused(tmp_path: Path) -> None:
    for extra, message in (
        (["--fs", "ext4", "--dir", str(tmp_path)], "give one of them"),
        (["--modules", str(tmp_path)], "go with --kernel"),
        (["--fs", "zfs"], "unknown filesystem 'zfs'"),
    ):
        p = _mmapconf(["run", "cases/article", *extra], tmp_path / "scratch")
        out, err = p.communicate(timeout=60)
        assert p.returncode == 2 and message in err and "Traceback" not in err, err


@needs_mounts
def test_provisioned_cases_in_parallel_workers_leave_nothing(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    argv = ["run", "cases/mmap/fd.yaml", "cases/signal/eof.yaml", "-n", "2"]
    p = _mmapconf([*argv, "--report-dir", str(tmp_path / "r")], root)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, out + err
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    got = {r["name"]: r["outcome"] for r in rep["results"]}
    for name in ("fd-noexec-mount[disk:tmpfs]", "sig-tmpfs-full[disk:tmpfs]"):
        assert got[name] == "passed", got
    assert (
        got["sig-ext4-enospc[disk:ext4]"] == "passed" and got["fd-append-inode[disk]"] == "passed"
    )
    assert _leftovers(root) == [] and list(root.iterdir()) == []  # the workers' folder is the run's


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_several_dirs_are_named_by_filesystem_and_gated_by_disk_entries(tmp_path: Path) -> None:
    from runner.engine.backings import mount_fstype

    fs = mount_fstype(str(tmp_path))
    if fs == "tmpfs":
        pytest.skip("the temp folder is a tmpfs as well")
    argv = ["run", "cases/mmap/flags.yaml", "--backing", "disk", "-k", "sync-shared-nondax"]
    argv += ["--dir", "/dev/shm", "--dir", str(tmp_path), "--baseline", "baselines/linux.yaml"]
    p = _mmapconf([*argv, "--report-dir", str(tmp_path / "r")], tmp_path / "scratch")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, out + err
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    got = {r["name"]: r["outcome"] for r in rep["results"]}
    assert got["mmap-sync-shared-nondax[disk:tmpfs]"] == "passed"
    # Known where the baseline's when says so (ext4, xfs), a plain result elsewhere.
    want = "known" if fs in ("ext4", "xfs") else "passed"
    assert got[f"mmap-sync-shared-nondax[disk:{fs}]"] == want, got
