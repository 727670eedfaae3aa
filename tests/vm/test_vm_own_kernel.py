"""A kernel of one's own: given by path in a plain folder (no mmapconf.json), its config checked
before booting, its modules given with --modules, the report naming what was booted.

The boot test uses the Debian 6.1 kernel CI fetches (scripts/vm-ci-setup.sh), copied out of the
cache as /boot lays it out (vmlinuz-RELEASE beside config-RELEASE); skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.vm import image, kconfig, kernels, run

CASE = "cases/article/02-sigbus-past-eof.yaml"
SECRET = "ghp_mmapconfPlantedSecret0123456789"
DEBIAN_61_MODULAR = [
    "CONFIG_VIRTIO",
    "CONFIG_VIRTIO_BLK",
    "CONFIG_NET_9P",
    "CONFIG_NET_9P_VIRTIO",
    "CONFIG_9P_FS",
    "CONFIG_VIRTIO_MMIO",
    "CONFIG_EXT4_FS",
]


def test_fragment_groups_and_missing_options() -> None:
    groups = kconfig.fragment_groups()
    assert groups["init"].builtin and "CONFIG_BINFMT_SCRIPT" in groups["init"].options
    assert not groups["always"].builtin and "CONFIG_9P_FS" in groups["always"].options
    assert not groups["microvm"].builtin and groups["microvm"].options == ("CONFIG_VIRTIO_MMIO",)
    config = {o: "y" for g in groups.values() for o in g.options}
    needed = kconfig.needed_groups("microvm", True, True, ["ext4"])
    assert kconfig.missing(config, needed, None) == []
    config |= {"CONFIG_TMPFS": "m", "CONFIG_EXT4_FS": "m", "CONFIG_PVH": "n"}
    del config["CONFIG_VIRTIO_MMIO"]
    assert kconfig.missing(config, needed, None) == [
        "CONFIG_TMPFS (=m, must be built in)",
        "CONFIG_VIRTIO_MMIO (not set)",
        "CONFIG_PVH (not set)",
        "CONFIG_EXT4_FS (=m and no --modules given)",
    ]
    # An =m option counts when its module is there, never for an option that must be built in.
    ok = kconfig.missing(config, needed, {"CONFIG_EXT4_FS", "CONFIG_TMPFS"})
    assert "CONFIG_TMPFS (=m, must be built in)" in ok and not any("EXT4" in x for x in ok)
    assert kconfig.parse('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x"\n') == {
        "CONFIG_A": "y",
        "CONFIG_B": "n",
        "CONFIG_C": "x",
    }


def test_not_a_kernel_is_refused_with_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "bzImage"
    junk.write_bytes(b"\0" * 4096)
    p = _mmapconf(["run", CASE, "--kernel", str(junk), "--report-dir", str(tmp_path / "r")])
    assert p.returncode == 2 and "not a bzImage, an ELF vmlinux or an arm64 Image" in p.stderr
    p = _mmapconf(["run", CASE, "--kernel", str(tmp_path), "--report-dir", str(tmp_path / "r")])
    assert p.returncode == 2 and "run make first" in p.stderr
    assert "Traceback" not in p.stderr


def _debian_61() -> kernels.KernelTree:
    # amd64 only: the cache may hold other architectures' kernels of the series too.
    trees = [t for t in kernels.cached() if t.series == "6.1" and t.abi.endswith("-amd64")]
    if not trees:
        pytest.skip("the Debian 6.1 kernel is not cached: mmapconf kernels fetch 6.1")
    return trees[-1]


def _plain_copy(tree: kernels.KernelTree, dest: Path, with_modules: bool) -> tuple[Path, Path]:
    """vmlinuz-RELEASE and config-RELEASE in DEST, and a modules root (hard links where the
    filesystem allows, so the copy is cheap) without the modules.dep our cache added."""
    dest.mkdir()
    boot = tree.root / "boot"
    img = Path(shutil.copy2(boot / f"vmlinuz-{tree.abi}", dest))
    shutil.copy2(boot / f"config-{tree.abi}", dest)
    root = dest / "modroot"
    if with_modules:
        src = tree.modules_dir
        target = root / "lib" / "modules" / tree.abi
        target.parent.mkdir(parents=True)
        try:
            shutil.copytree(src, target, copy_function=os.link, symlinks=True)
        except OSError:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(src, target, symlinks=True)
        for dep in target.glob("modules.dep*"):
            dep.unlink()
    return img, root


def _mmapconf(argv: list[str], env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "runner", *argv],
        cwd=run.PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


def test_plain_debian_image_without_modules_is_refused_before_booting(tmp_path: Path) -> None:
    tree = _debian_61()
    img, _ = _plain_copy(tree, tmp_path / "plain", with_modules=False)
    assert not (img.parent / "mmapconf.json").exists()
    report_dir = tmp_path / "reports"
    p = _mmapconf(["run", CASE, "--kernel", str(img), "--report-dir", str(report_dir)])
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    for option in DEBIAN_61_MODULAR:
        assert f"{option} (=m and no --modules given)" in p.stderr, p.stderr
    assert "--modules DIR" in p.stderr and "guest.config" in p.stderr
    assert not report_dir.exists()  # refused before anything booted


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_plain_debian_image_boots_with_copied_modules(tmp_path: Path) -> None:
    tree = _debian_61()
    img, modroot = _plain_copy(tree, tmp_path / "plain", with_modules=True)
    report_dir = tmp_path / "reports"
    env = {**os.environ, "MMAPCONF_TEST_TOKEN": SECRET}
    argv = ["run", CASE, "--kernel", str(img), "--modules", str(modroot), "--accel", "tcg"]
    p = _mmapconf([*argv, "--report-dir", str(report_dir), "--backing", "disk"], env)
    assert p.returncode == 0, p.stdout + p.stderr
    release = image.release(img.read_bytes())
    assert release == tree.abi
    rep = json.loads((report_dir / release / "report.json").read_text())
    assert rep["environment"]["kernel_release"] == release  # what the guest's uname says
    k = rep["environment"]["vm"]["kernel"]
    assert k["path"] == str(img) and k["release"] == release and k["source"] == "path"
    assert k["sha256"] == kernels.sha256(img) and k["config_checked"] is True
    assert k["config"]["CONFIG_VIRTIO_BLK"] == "m" and k["modules"].startswith(str(modroot))
    assert {r["outcome"] for r in rep["results"]} == {"passed"}
    assert not list(modroot.rglob("mmapconf*"))  # nothing of ours written beside their files
    # No report file carries the host's environment (cmd.sh lists what the guest needs).
    for f in report_dir.rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(errors="replace"), f


def test_a_build_and_a_stock_kernel_of_one_release_are_two_matrix_columns() -> None:
    from runner.report.matrix import build_matrix

    def rep(vm: dict) -> dict:
        env = {"kernel_release": "6.1.0-56-amd64", "machine": "x86_64", "vm": vm}
        return {
            "environment": env,
            "results": [{"id": "c", "backing": "anon", "outcome": "passed"}],
        }

    stock = rep({"kernel": {"source": "debian", "series": "6.1"}})
    mine = rep({"kernel": {"source": "path", "sha256": "26f2e57c99338fea" + "0" * 48}})
    cols = build_matrix([("6.1", stock), ("mine", mine), ("mine again", mine)])["columns"]
    assert [c["kernel_release"] for c in cols] == ["6.1.0-56-amd64", "6.1.0-56-amd64@26f2e57c"]
    assert cols[1]["sources"] == ["mine", "mine again"]


@pytest.mark.skipif(bool(run.missing_tools()), reason="no qemu/busybox: scripts/install-vm-deps.sh")
def test_sigterm_during_a_boot_stops_the_guest(tmp_path: Path) -> None:
    tree = _debian_61()
    report_dir = tmp_path / "reports"
    p = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", CASE, "--kernel", tree.abi, "--accel", "tcg"]
        + ["--report-dir", str(report_dir)],
        cwd=run.PROJECT_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not _guests_of(report_dir) and time.monotonic() < deadline:
        assert p.poll() is None, p.communicate()
        time.sleep(0.2)
    assert _guests_of(report_dir), "qemu never started"
    p.terminate()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM, err
    time.sleep(0.5)
    assert _guests_of(report_dir) == []  # qemu runs in its own session: we must kill it


def _guests_of(report_dir: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"qemu-system.*{report_dir}"], capture_output=True)
    return out.stdout.decode().split()


def _elf(note_type: int, banner: bytes = b"Linux version 6.99.0-mine (me@here) #1\0") -> bytes:
    """A minimal ELF64 with one PT_NOTE holding a "Xen" note of NOTE_TYPE, and a banner."""
    import struct

    name = b"Xen\0"
    note = struct.pack("<III", len(name), 4, note_type) + name + b"\0" * 4
    ehdr = bytearray(64)
    ehdr[:5] = b"\x7fELF\x02"
    struct.pack_into("<Q", ehdr, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", ehdr, 0x36, 56, 1)  # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(note), len(note), 4)
    return bytes(ehdr) + phdr + note + banner


def test_pvh_note_and_release_of_an_elf() -> None:
    assert image.has_pvh_note(_elf(18)) and not image.has_pvh_note(_elf(17))
    assert image.release(_elf(18)) == "6.99.0-mine"


def test_a_bzimage_without_pvh_boots_as_itself_and_a_build_folder_uses_its_config(
    tmp_path: Path, monkeypatch
) -> None:
    import gzip
    import struct

    from runner.vm import target

    monkeypatch.setenv("MMAPCONF_KERNEL_CACHE", str(tmp_path / "cache"))
    build = tmp_path / "linux"
    (build / "arch/x86/boot").mkdir(parents=True)
    payload = gzip.compress(_elf(17))  # no PVH note: not bootable as an ELF
    bz = bytearray(5 * 512 + 64)
    bz[0x1F1] = 4
    bz[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", bz, 0x248, 64, len(payload))
    (build / "arch/x86/boot/bzImage").write_bytes(bytes(bz) + payload)
    (build / "vmlinux").write_bytes(_elf(17))
    (build / ".config").write_text("CONFIG_BLK_DEV_INITRD=y\nCONFIG_VIRTIO_BLK=m\n")
    t = target.from_path(build, None)
    assert t.image == build / "arch/x86/boot/bzImage" and not t.elf  # the vmlinux lacks PVH
    assert t.release == "6.99.0-mine" and t.config == {
        "CONFIG_BLK_DEV_INITRD": "y",
        "CONFIG_VIRTIO_BLK": "m",
    }
    with pytest.raises(target.KernelRefused) as refused:
        target.check(t, "microvm", ["xfs"])
    text = str(refused.value)
    assert "CONFIG_VIRTIO_BLK (=m and no --modules given)" in text
    assert "CONFIG_XFS_FS (not set)" in text and "CONFIG_PVH" not in text  # a bzImage needs none
    with pytest.raises(target.KernelRefused, match="no PVH note"):
        target.from_path(build / "vmlinux", None)
    assert _mmapconf(["kernels", "fetch", str(build)]).returncode == 2
