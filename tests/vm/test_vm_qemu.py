"""qemu command-line assembly and the guest's command script (no VM needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runner.vm import qemu, run


def spec(tmp_path: Path, **kw) -> qemu.GuestSpec:
    return qemu.GuestSpec(tmp_path / "vmlinux", tmp_path / "initrd", tmp_path / "job", **kw)


def test_tcg_command_line(tmp_path: Path) -> None:
    cmd = qemu.command(spec(tmp_path, fs="ext4", disk=tmp_path / "d.img", tsc_khz=2600000))
    s = " ".join(cmd)
    assert cmd[0] == "qemu-system-x86_64"
    assert "-M microvm,pit=on,pic=on,rtc=on" in s
    assert "-accel tcg,thread=multi -cpu max" in s
    # The host root must be read-only (qemu enforces it), the job dir not.
    assert "path=/,security_model=none,readonly=on" in s
    assert f"path={tmp_path / 'job'},security_model=none,multidevs=remap" in s
    assert f"file={tmp_path / 'd.img'},if=none,id=disk0,format=raw" in s
    assert "virtio-blk-device,drive=disk0" in s
    assert cmd[cmd.index("-kernel") + 1] == str(tmp_path / "vmlinux")
    append = cmd[cmd.index("-append") + 1]
    for arg in ("tsc=reliable", "tsc_early_khz=2600000", "panic=-1", "mmapconf.fs=ext4"):
        assert arg in append.split()
    assert f"mmapconf.job={tmp_path / 'job'}" in append.split()
    assert "-no-reboot" in cmd and "-nodefaults" in cmd


def test_kvm_and_no_disk(tmp_path: Path) -> None:
    cmd = qemu.command(spec(tmp_path, accel="kvm", tsc_khz=2600000, tmp_tmpfs=False))
    s = " ".join(cmd)
    assert "-accel kvm -cpu host" in s
    assert "virtio-blk-device" not in s
    append = cmd[cmd.index("-append") + 1].split()
    assert "tsc=reliable" not in append and "mmapconf.fs=none" in append
    assert "mmapconf.tmp=0" in append


def test_command_line_length_is_checked(tmp_path: Path) -> None:
    s = qemu.GuestSpec(Path("k"), Path("i"), Path("/" + "j" * 2100))
    with pytest.raises(ValueError, match="too long"):
        qemu.kernel_append(s)


def test_cmd_script_runs_with_quoting_and_env(tmp_path: Path) -> None:
    job = tmp_path / "job dir"
    job.mkdir()
    argv = ["sh", "-c", 'echo "$1|$FOO|$(pwd)"; echo err >&2; exit 3', "x", "it's $HOME"]
    path = qemu.write_cmd_script(job, argv, tmp_path, {"FOO": "a b'c", "PATH": "/usr/bin:/bin"})
    rc = subprocess.run(["sh", str(path)]).returncode
    assert rc == 3
    assert (job / "stdout.txt").read_text() == f"it's $HOME|a b'c|{tmp_path}\n"
    assert (job / "stderr.txt").read_text() == "err\n"


def test_guest_command_sets_dir_and_report_dir(tmp_path: Path) -> None:
    argv = run.guest_command(
        ["run", "cases/article", "--dir", "/x", "--report-dir=/y", "--backing", "disk"]
        + ["--kernel", "6.1", "--fs=xfs", "--vm-timeout", "99"],
        tmp_path,
        "xfs",
    )
    assert argv[1:4] == ["-m", "runner", "run"]
    assert "/x" not in argv and "--report-dir=/y" not in argv
    assert not {"--kernel", "6.1", "--fs=xfs", "--vm-timeout", "99"} & set(argv)
    assert argv[-4:] == ["--dir", run.GUEST_DISK_DIR, "--report-dir", str(tmp_path)]
    assert "--backing" in argv
    assert run.guest_command(["run"], tmp_path, "none")[-2:] == ["--report-dir", str(tmp_path)]


def test_guest_env_is_safe_for_a_read_only_root(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/extra")
    monkeypatch.setenv("PYTHONHOME", "/bad")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_planted")
    env = run.guest_env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONPATH"].split(":") == [str(run.PROJECT_ROOT), "/extra"]
    assert "PYTHONHOME" not in env and "GITHUB_TOKEN" not in env
    assert env["HOME"].startswith("/run/") and env["TMPDIR"].startswith("/run/")
    # Only what the guest's command needs; the host's environment is not copied.
    assert set(env) <= {"PATH", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "TMPDIR"} | {
        "HOME",
        "XDG_CACHE_HOME",
        "MMAPCONF_GUEST",
    }


def test_q35_and_microvm_without_acpi(tmp_path: Path) -> None:
    s = " ".join(qemu.command(spec(tmp_path, machine="q35", fs="ext4", disk=tmp_path / "d")))
    assert "-M q35" in s and "virtio-9p-pci" in s and "virtio-blk-pci" in s
    assert "qboot" not in s  # q35 boots through its own firmware
    s = " ".join(qemu.command(spec(tmp_path, acpi=False)))
    assert "microvm,pit=on,pic=on,rtc=on,acpi=off" in s and "virtio-9p-device" in s


def test_guest_init_is_valid_shell() -> None:
    from runner.vm import initramfs

    assert subprocess.run(["sh", "-n", str(initramfs.GUEST_INIT)]).returncode == 0
