"""The cpio writer, initramfs contents and vmlinux extraction (no VM needed)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from runner.vm import image, initramfs
from runner.vm.kernels import KernelTree
from runner.vm.target import stock


def read_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data) of a newc archive, checking its alignment."""
    out, off = {}, 0
    while True:
        assert data[off : off + 6] == b"070701", f"bad magic at {off}"
        f = [int(data[off + 6 + 8 * i : off + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[off + 110 : off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += -off % 4
        body = data[off : off + size]
        off += size
        off += -off % 4
        if name == "TRAILER!!!":
            assert off == len(data)
            return out
        out[name] = (mode, body)


def test_cpio_roundtrip() -> None:
    c = initramfs.Cpio()
    c.dir("bin")
    c.file("bin/x", b"abc", 0o755)
    c.symlink("bin/sh", "x")
    c.file("odd", b"12345")
    entries = read_newc(c.bytes())
    assert entries["bin/x"] == (0o100755, b"abc")
    assert entries["bin/sh"] == (0o120777, b"x")
    assert entries["odd"][1] == b"12345"
    assert entries["bin"][0] == 0o040755


@pytest.mark.skipif(shutil.which("cpio") is None, reason="no cpio tool to cross-check")
def test_cpio_tool_reads_it(tmp_path: Path) -> None:
    c = initramfs.Cpio()
    c.dir("d")
    c.file("d/f", b"hello")
    p = subprocess.run(["cpio", "-it"], input=c.bytes(), capture_output=True, check=True)
    assert p.stdout.decode().split() == ["d", "d/f"]


def test_build_loads_boot_and_fs_modules_in_order(tmp_path: Path, monkeypatch) -> None:
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "a.ko.xz").write_bytes(lzma.compress(b"module-a"))
    (mods / "b.ko").write_bytes(b"module-b")
    (mods / "e.ko.gz").write_bytes(gzip.compress(b"module-e"))
    deps = {
        "virtio_mmio": ["a.ko.xz"],
        "9pnet_virtio": ["a.ko.xz", "b.ko"],
        "crc32c": [],
        "ext4": ["b.ko", "e.ko.gz"],
    }
    monkeypatch.setattr(
        initramfs,
        "module_order",
        lambda tree, names: list(dict.fromkeys(mods / f for n in names for f in deps.get(n, []))),
    )
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF-busybox")
    tree = stock(KernelTree(tmp_path, "1.0-test"))
    entries = read_newc(initramfs.build(tree, "ext4", busybox))
    assert entries["bin/busybox"] == (0o100755, b"\x7fELF-busybox")
    assert entries["init"][0] == 0o100755
    assert entries["init"][1].startswith(b"#!/bin/busybox sh")
    assert entries["modules/a.ko"][1] == b"module-a"  # decompressed on the host
    assert entries["modules/e.ko"][1] == b"module-e"
    assert entries["modules/boot.list"][1] == b"a.ko\nb.ko\n"
    assert entries["modules/ext4.list"][1] == b"b.ko\ne.ko\n"
    assert "modules/xfs.list" not in entries  # only the fs under test


def fake_bzimage(payload: bytes, setup_sects: int = 3, size_appended: bool = True) -> bytes:
    """A bzImage as arch/x86/boot/compressed/Makefile and scripts/Makefile.lib lay it out: the
    decompressed size appended to every payload but gzip's (its trailer holds it)."""
    bz = bytearray((setup_sects + 1) * 512 + 64)
    bz[0x1F1] = setup_sects
    bz[0x202:0x206] = b"HdrS"
    tail = struct.pack("<I", 12345) if size_appended else b""
    struct.pack_into("<II", bz, 0x248, 64, len(payload) + len(tail))
    return bytes(bz) + payload + tail + b"\0" * 16  # the setup code's padding follows


@pytest.mark.parametrize("kind", ["gzip", "xz", "bzip2", "lzma"])
def test_extract_vmlinux(tmp_path: Path, kind: str) -> None:
    elf = b"\x7fELF" + bytes(range(256)) * 10
    comp = {
        "gzip": gzip.compress,
        "xz": lzma.compress,
        "bzip2": bz2.compress,
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    }[kind](elf)
    bz = tmp_path / "vmlinuz"
    bz.write_bytes(fake_bzimage(comp, size_appended=kind != "gzip"))
    assert image.payload(bz.read_bytes())[0] == kind
    out = tmp_path / "vmlinux"
    image.extract_vmlinux(bz, out)
    assert out.read_bytes() == elf


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd not installed")
def test_extract_zstd(tmp_path: Path) -> None:
    elf = b"\x7fELF" + b"z" * 5000
    comp = subprocess.run(["zstd", "-q", "-c"], input=elf, capture_output=True).stdout
    bz = tmp_path / "vmlinuz"
    bz.write_bytes(fake_bzimage(comp))
    image.extract_vmlinux(bz, tmp_path / "vmlinux")
    assert (tmp_path / "vmlinux").read_bytes() == elf


def test_not_a_bzimage() -> None:
    with pytest.raises(ValueError, match="HdrS"):
        image.payload(b"\0" * 4096)
