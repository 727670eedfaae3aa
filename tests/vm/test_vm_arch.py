"""Other architectures and page sizes as data: kernel specs, the arm64 qemu command line,
Debian's arm64 flavours, the built 64K flavour's pin and config check, the guest root (no VM,
no network)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.engine.native import build as native_build
from runner.vm import arch, guestroot, kbuild, kernels, qemu, run
from runner.vm.target import stock


@pytest.mark.parametrize(
    ("spec", "flavour", "series", "key"),
    [
        ("6.12", "amd64", "6.12", "6.12"),
        ("amd64:6.1", "amd64", "6.1", "6.1"),
        ("arm64:6.12", "arm64", "6.12", "arm64:6.12"),
        ("arm64-16k:6.12", "arm64-16k", "6.12", "arm64-16k:6.12"),
        ("arm64-64k:6.1", "arm64-64k", "6.1", "arm64-64k:6.1"),
    ],
)
def test_kernel_specs(spec: str, flavour: str, series: str, key: str) -> None:
    parsed = arch.parse_spec(spec)
    assert parsed is not None
    assert (parsed[0].name, parsed[1], arch.spec_key(*parsed)) == (flavour, series, key)


@pytest.mark.parametrize("spec", ["riscv64:6.12", "arm64:", "arm64-16k:6.12.1", "6.1.0-56-amd64"])
def test_not_kernel_specs(spec: str) -> None:
    assert arch.parse_spec(spec) is None
    assert "FLAVOUR:SERIES" in arch.unknown_spec_message(spec)


def test_page_sizes_and_what_is_built() -> None:
    sizes = {n: (f.page_size, f.built) for n, f in arch.FLAVOURS.items()}
    assert sizes == {
        "amd64": (4096, False),
        "arm64": (4096, False),
        "arm64-16k": (16384, False),
        "arm64-64k": (65536, True),
    }
    assert arch.FLAVOURS["arm64-64k"].fragment_path.is_file()


def test_arm64_command_line(tmp_path: Path) -> None:
    spec = qemu.GuestSpec(
        tmp_path / "Image",
        tmp_path / "initrd",
        tmp_path / "job",
        fs="ext4",
        disk=tmp_path / "d.img",
        tsc_khz=2600000,
        arch=arch.ARM64,
        root=tmp_path / "root",
        machine="virt",
        project=tmp_path / "proj",
    )
    cmd = qemu.command(spec)
    s = " ".join(cmd)
    assert cmd[0] == "qemu-system-aarch64"
    assert "-M virt -accel tcg,thread=multi -cpu max,pauth-impdef=on" in s
    assert "-bios" not in cmd and "virtio-9p-device" not in s
    # Both the guest root and the project are read-only; the job dir is not.
    assert f"path={tmp_path / 'root'},security_model=none,readonly=on" in s
    assert f"path={tmp_path / 'proj'},security_model=none,readonly=on" in s
    assert "virtio-9p-pci,fsdev=project,mount_tag=project" in s
    assert f"path={tmp_path / 'job'},security_model=none,multidevs=remap" in s
    assert "virtio-blk-pci,drive=disk0" in s
    append = cmd[cmd.index("-append") + 1].split()
    assert "console=ttyAMA0" in append and f"mmapconf.project={tmp_path / 'proj'}" in append
    assert not [a for a in append if a.startswith("tsc")]  # x86's clock fixes only


def test_foreign_guests_run_under_tcg_only_on_their_board(tmp_path: Path) -> None:
    tree = kernels.KernelTree(tmp_path, "6.12.1+deb13-arm64-16k", "6.12", "1", "arm64-16k")
    target = stock(tree)
    assert run.resolve_accel(None, target, Path()) == "tcg"
    with pytest.raises(ValueError, match="kvm cannot run arm64 guests"):
        run.resolve_accel("kvm", target, Path())
    assert (target.image, target.label, target.elf) == (tmp_path / "Image", "arm64-16k-6.12", False)
    assert target.facts["page_size"] == 16384
    assert arch.machine_of(target.arch, None).name == "virt"
    with pytest.raises(ValueError, match="arm64 guests boot on virt"):
        arch.machine_of(target.arch, "q35")


ARM_ARCHIVE = {
    n: f"Package: {n}\nVersion: {v}\nDepends: kmod\nSize: 100\nSHA256: ab\n"
    for n, v in (
        ("linux-image-6.12.1+deb13-arm64", "6.12.1-1"),
        ("linux-image-6.12.1+deb13-arm64-16k", "6.12.1-1"),
        ("linux-image-6.12.1+deb13-cloud-arm64", "6.12.1-1"),
        ("linux-image-6.12.1+deb13-rt-arm64", "6.12.1-1"),
        ("linux-image-6.12.1+deb13-arm64-unsigned", "6.12.1-1"),
    )
}


class FakeArmApt:
    def pkgnames(self, prefix: str) -> list[str]:
        return [n for n in ARM_ARCHIVE if n.startswith(prefix)]

    def run(self, tool: str, args: list[str]) -> str:
        return "\n".join(ARM_ARCHIVE[n] for n in args[1:] if n in ARM_ARCHIVE)


@pytest.mark.parametrize("flavour", ["arm64", "arm64-16k"])
def test_resolve_arm64_flavours(flavour: str) -> None:
    pin = kernels.resolve(FakeArmApt(), "6.12", arch.FLAVOURS[flavour])  # type: ignore[arg-type]
    assert (pin.abi, pin.flavour) == (f"6.12.1+deb13-{flavour}", flavour)
    assert [p.name for p in pin.packages] == [f"linux-image-6.12.1+deb13-{flavour}"]


def test_lock_keeps_flavours_and_roots(tmp_path: Path) -> None:
    lock = tmp_path / "kernels.lock"
    pins = {
        "arm64-64k:6.1": kernels.Pin("6.1", "6.1.9-arm64-64k", "6.1.9-1", [], "arm64-64k", "ab"),
        "6.1": kernels.Pin("6.1", "6.1.0-1-amd64", "6.1.9-1"),
        "arm64:6.12": kernels.Pin("6.12", "6.12.1+deb13-arm64", "6.12.1-1", [], "arm64"),
    }
    roots = {"arm64": [kernels.Package("python3", "3.11.2-1", 1, "cd")]}
    kernels.write_lock(pins, lock, roots)
    kernels.write_lock(kernels.read_lock(lock), lock)  # a kernel re-pin keeps the roots
    assert list(json.loads(lock.read_text())["kernels"]) == ["6.1", "arm64:6.12", "arm64-64k:6.1"]
    assert kernels.read_lock(lock) == pins
    assert kernels.read_root_pins(lock) == roots


def test_shipped_lock_pins_the_arm64_kernels_and_root() -> None:
    pins = kernels.read_lock()
    for key, flavour in (("arm64:6.12", "arm64"), ("arm64-16k:6.12", "arm64-16k")):
        assert pins[key].flavour == flavour and pins[key].packages[0].sha256
    built = pins["arm64-64k:6.1"]
    assert built.packages[0].name == "linux-source-6.1" and built.packages[0].sha256
    # The fragment shipped is the one pinned: a change to it must re-pin (and rebuild).
    assert built.fragment_sha256 == kbuild.fragment_sha256(arch.FLAVOURS["arm64-64k"])
    root = kernels.read_root_pins()["arm64"]
    # Every package the root is made of is pinned (fetch_root re-pins a root lacking one).
    assert set(guestroot.PACKAGES) <= {p.name for p in root}
    assert all(p.sha256 for p in root)


def test_fragment_options_dropped_by_kconfig_are_named() -> None:
    flavour = arch.FLAVOURS["arm64-64k"]
    config = (flavour.fragment_path.read_text()).replace(
        "CONFIG_9P_FS=y", "# CONFIG_9P_FS is not set"
    )
    assert kbuild.dropped(flavour, config) == ["CONFIG_9P_FS=y"]
    assert kbuild.dropped(flavour, flavour.fragment_path.read_text()) == []


def test_guest_root_is_unpacked_whole_with_a_shell_and_mount_points(
    tmp_path: Path, fake_deb
) -> None:
    debs = [
        fake_deb(tmp_path, "busybox-static", {"bin/busybox": "#!"}),
        fake_deb(
            tmp_path,
            "python3",
            {"usr/bin/python3": Path("python3.0"), "usr/lib/python3.0/m.py": "x = 1\n"},
        ),
    ]
    dest = tmp_path / "roots" / "arm64-x"
    guestroot.unpack(debs, dest, {"arch": "arm64"})
    assert (dest / "bin/sh").readlink() == Path("busybox")
    assert all((dest / d).is_dir() for d in guestroot.MOUNT_POINTS)
    assert guestroot.python_version(dest) == "3.0"
    # Not the host's Python version: nothing is compiled, and the root says so.
    assert json.loads((dest / "mmapconf.json").read_text()) == {
        "arch": "arm64",
        "precompiled": False,
    }
    assert list(dest.parent.iterdir()) == [dest]  # no temporary folder left beside it


def test_a_failed_unpack_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "roots" / "arm64-x"
    with pytest.raises(subprocess.CalledProcessError):
        guestroot.unpack([tmp_path / "missing.deb"], dest, {})
    assert not dest.parent.exists() or not list(dest.parent.iterdir())


def test_root_pin_hash_names_the_package_set() -> None:
    a = [{"name": "python3", "version": "1"}]
    assert guestroot.pin_hash(a) == guestroot.pin_hash(list(a))
    assert guestroot.pin_hash(a) != guestroot.pin_hash([{"name": "python3", "version": "2"}])


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None, reason="no arm64 cross compiler")
def test_native_executor_is_cross_built_for_an_arm64_guest(tmp_path: Path, monkeypatch) -> None:
    path = run.guest_executor(arch.ARM64, tmp_path)
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183  # EM_AARCH64
    monkeypatch.setenv("MMAPCONF_NATIVE_EXECUTOR", str(path))
    assert native_build.executor_path() == path  # what the guest's harness then runs


def test_kernels_cli_refuses_what_it_cannot_fetch_or_build(capsys) -> None:
    from runner.cli.main import main

    assert main(["kernels", "build", "arm64-16k:6.12"]) == 2
    assert "is a Debian kernel: `mmapconf kernels fetch arm64-16k:6.12`" in capsys.readouterr().err
    assert main(["kernels", "fetch", "riscv64:6.12"]) == 2
    assert "FLAVOUR one of amd64, arm64, arm64-16k, arm64-64k" in capsys.readouterr().err
