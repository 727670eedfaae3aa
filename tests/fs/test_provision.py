"""``provision:``: mounts and inode flags the harness makes before a case and undoes after it,
whatever the outcome; what the validator refuses; and a right expectation on a provisioned
mount passing where a wrong one fails naming the step and both sides."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from runner.engine import mounts
from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner

root_only = pytest.mark.skipif(
    mounts.why_cannot_mount("ext4") is not None, reason="needs root, loop devices, mkfs.ext4"
)

NOEXEC = """\
id: prov-noexec
title: t
provision:
  mount: {fstype: tmpfs, options: "OPTIONS"}
steps:
  - file: x
    size: PAGE
  - mmap: {length: PAGE, prot: PROT_READ|PROT_EXEC, flags: MAP_PRIVATE, fd: x}
    expect: {errno: EPERM}
"""


def _provision_mounts() -> tuple[list[str], list[str]]:
    """The mounts and loop devices in this run's folder but this process's own disk instance,
    which stays for the process's next disk case (mounts.own_instance)."""
    own = [p for p in mounts.run_dir().glob(f"{mounts.INSTANCE_PREFIX}*")]
    mine = [m for m in mounts.mounts_under(mounts.run_dir()) if not any(str(p) in m for p in own)]
    loops = set(mounts.loops_backed_under(mounts.run_dir()))
    loops -= {dev for p in own for dev in mounts.loops_backed_under(p)}
    return mine, sorted(loops)


def _run(tmp_path: Path, text: str, dirs: list[str] | None = None):
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text))
    suite = load_suite([str(path)])
    assert not suite.problems, suite.problems
    runner = Runner(RunConfig(dirs=dirs or []))
    return [runner.run_item(item) for item in runner.plan(suite)]


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text))
    return [str(p) for p in load_suite([str(path)]).problems]


@pytest.mark.parametrize(
    ("provision", "message"),
    [
        ("mount: {fstype: zfs}", "'zfs': one of tmpfs, ext4, xfs, btrfs"),
        ('mount: {fstype: ext4, options: "journal_path=/dev/sda"}', "not one a case may ask for"),
        ('mount: {fstype: xfs, options: "logdev=/dev/sda1"}', "not one a case may ask for"),
        ("mount: {fstype: tmpfs, size: 4096}", "sized by its options"),
        ("mount: {fstype: ext4, size: 1024}", "outside 1048576"),
        ("files: {f: {inode_flags: FS_SECRET_FL}}", "unknown inode flag 'FS_SECRET_FL'"),
        ("files: {../f: {data: x}}", "a file name is letters"),
        ("zram: 1", "unknown provision key"),
    ],
)
def test_validator_refuses(tmp_path: Path, provision: str, message: str) -> None:
    text = f"id: p\ntitle: t\nprovision:\n  {provision}\nsteps:\n  - sleep: 1\n"
    problems = _problems(tmp_path, text)
    assert any(message in p and "case.yaml:" in p for p in problems), problems


def test_validator_refuses_other_backings_and_a_second_maker(tmp_path: Path) -> None:
    text = """\
    id: p
    title: t
    backings: [tmpfs]
    provision:
      mount: {fstype: tmpfs}
      files: {f: {data: "x"}}
    steps:
      - file: f
    """
    problems = _problems(tmp_path, text)
    assert any("backings: [disk]" in p for p in problems), problems
    assert any("made by provision.files already" in p for p in problems), problems


@root_only
def test_right_mount_option_passes_and_wrong_one_fails(tmp_path: Path) -> None:
    (right,) = _run(tmp_path, NOEXEC.replace("OPTIONS", "noexec,size=1m"))
    assert (right.name, right.outcome, right.facts) == (
        "prov-noexec[disk:tmpfs]",
        "passed",
        {"backing": "disk", "fs": "tmpfs"},
    ), right.reason
    (wrong,) = _run(tmp_path, NOEXEC.replace("OPTIONS", "size=1m"))
    assert wrong.outcome == "failed"
    assert "main step 2 (mmap)" in wrong.reason and "EPERM" in wrong.reason, wrong.reason
    assert "success" in wrong.reason, wrong.reason
    assert _provision_mounts()[0] == []


@root_only
def test_provisioned_ext4_is_sized_and_undone_after_a_failure(tmp_path: Path) -> None:
    text = """\
    id: prov-full
    title: t
    provision:
      mount: {fstype: ext4, size: 2 * 1024 * 1024}
    steps:
      - file: f
      - write: {fd: f, offset: 0, length: 4 * 1024 * 1024}
    """
    (r,) = _run(tmp_path, text)
    assert r.outcome == "failed" and "ENOSPC" in r.reason, r.reason  # only 2 MiB there
    assert _provision_mounts() == ([], [])


@root_only
def test_inode_flags_are_set_before_and_cleared_after_whatever_the_outcome(tmp_path: Path) -> None:
    text = """\
    id: prov-immutable
    title: t
    backings: [disk]
    timeout: 2
    provision:
      files: {f: {data: "abcd", inode_flags: FS_IMMUTABLE_FL}}
    steps:
      - open: {file: f, flags: O_RDWR}
        expect: {errno: EPERM}
      - open: {file: f, flags: O_RDONLY}
        as: ro
      - read: {fd: ro, length: 4}
        expect: {value: {data: "abcd"}}
      - sleep: STEP
    """
    disk = tmp_path / "disk"
    disk.mkdir()
    (ok,) = _run(tmp_path, text.replace("STEP", "1"), [str(disk)])
    assert ok.outcome == "passed", ok.reason
    (late,) = _run(tmp_path, text.replace("STEP", "5000"), [str(disk)])
    assert late.outcome == "timeout"
    assert list(disk.iterdir()) == []  # an immutable file could not have been removed


@root_only
def test_a_killed_runs_inode_flags_are_cleared_by_the_next(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MMAPCONF_SCRATCH_ROOT", str(tmp_path / "root"))
    monkeypatch.setattr(mounts, "_run_dir", None)
    victim = tmp_path / "f"
    victim.write_text("x")
    mounts.set_inode_flags(str(victim), 0x10)  # FS_IMMUTABLE_FL
    with pytest.raises(PermissionError):
        victim.unlink()
    own = mounts.run_dir()
    own.rename(own.with_name("run-999999999-1"))  # as a SIGKILLed harness leaves it
    monkeypatch.setattr(mounts, "_run_dir", None)
    assert [p.name for p in mounts.clean_stale()] == ["run-999999999-1"]
    victim.unlink()
    assert not os.listdir(tmp_path / "root")
