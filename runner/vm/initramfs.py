"""Build the guest's initramfs: busybox, our /init, and the kernel modules
needed to reach the host's root over 9p and to mount the scratch disk.

The archive is a plain (uncompressed) newc cpio written here, so no cpio
tool is needed and the guest spends no TCG time decompressing it.  Modules
are decompressed on the host because busybox's insmod cannot load .ko.xz.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import stat
import subprocess
from pathlib import Path

from runner.report.atomic import write_bytes

from .target import Target

# Groups of modules the guest init loads by name: `boot` always, then the
# group of the filesystem under test (mmapconf.fs=NAME on the command line).
# Names that are built into a given kernel simply resolve to nothing.
MODULE_GROUPS: dict[str, list[str]] = {
    # loop: for the filesystem images a case's provision: asks the harness for.
    "boot": ["9pnet_virtio", "9p", "virtio_blk", "loop"],
    # crc32c by alias: the filesystems ask the crypto API for "crc32c" at
    # mount time, and not every kernel's module declares that soft dependency
    # (6.18's btrfs does not: "error allocating crc32c hash" without it).
    "ext4": ["crc32c", "ext4"],
    "xfs": ["crc32c", "xfs"],
    "btrfs": ["crc32c", "btrfs"],
}

# The transport of the virtio devices, loaded first with the boot group.
MACHINE_MODULES = {"microvm": ["virtio_mmio"], "q35": ["virtio_pci"], "virt": ["virtio_pci"]}

GUEST_INIT = Path(__file__).with_name("guest_init.sh")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
INITRD_NAME = "mmapconf-initrd-{machine}-{fs}.cpio"


def find_busybox() -> Path:
    for p in BUSYBOX_CANDIDATES:
        if Path(p).is_file():
            return Path(p)
    raise FileNotFoundError("busybox not found; run scripts/install-vm-deps.sh (busybox-static)")


def module_order(target: Target, names: list[str]) -> list[Path]:
    """The module files to insmod, dependencies (and soft dependencies such
    as crc32c) first, as `modprobe --show-depends` resolves them."""
    out: list[Path] = []
    if target.modules_root is None:
        return out  # a kernel with everything built in
    for name in names:
        p = subprocess.run(
            ["modprobe", "-d", str(target.modules_root), "-S", target.release]
            + ["--show-depends", name],
            capture_output=True,
            text=True,
        )
        if p.returncode != 0:
            continue  # not a module of this kernel (absent, or built in)
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "insmod":
                path = Path(parts[1])
                if path not in out:
                    out.append(path)
    return out


def decompress_module(path: Path) -> bytes:
    data = path.read_bytes()
    name = path.name
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".zst"):
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout
    return data


def module_basename(path: Path) -> str:
    name = path.name
    for suffix in (".xz", ".gz", ".zst"):
        name = name.removesuffix(suffix)
    return name


class Cpio:
    """A minimal newc ('070701') cpio writer: directories, files, symlinks."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes) -> None:
        namez = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(namez), 0]
        hdr = b"070701" + b"".join(b"%08x" % f for f in fields)
        self.ino += 1
        self.parts.append(_pad(hdr + namez) + _pad(data))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755, b"")

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def bytes(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"")
        return b"".join(self.parts)


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def build(
    target: Target,
    fs: str = "none",
    busybox: Path | None = None,
    init: Path = GUEST_INIT,
    machine: str = "microvm",
) -> bytes:
    """The initramfs for TARGET as bytes: the boot modules and those of FS only
    (all of xfs and btrfs would triple its size, and TCG pays for every MB)."""
    busybox = busybox or find_busybox()
    c = Cpio()
    for d in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        c.dir(d)
    c.file("bin/busybox", busybox.read_bytes(), 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", init.read_bytes(), 0o755)
    seen: set[str] = set()
    for group, names in MODULE_GROUPS.items():
        if group not in ("boot", fs):
            continue
        if group == "boot":
            names = MACHINE_MODULES[machine] + names
        order = []
        for path in module_order(target, names):
            base = module_basename(path)
            order.append(base)
            if base not in seen:
                seen.add(base)
                c.file(f"modules/{base}", decompress_module(path))
        c.file(f"modules/{group}.list", "".join(f"{m}\n" for m in order).encode())
    return c.bytes()


def ensure(
    target: Target, fs: str = "none", machine: str = "microvm", busybox: Path | None = None
) -> Path:
    """The cached initramfs of TARGET for FS, rebuilt when the init script,
    busybox or this builder changed since.  BUSYBOX: the guest root's, for a
    guest of another architecture than the host's."""
    out = target.cache / INITRD_NAME.format(machine=machine, fs=fs)
    busybox = busybox or find_busybox()
    inputs = (GUEST_INIT, busybox, Path(__file__))
    if out.is_file() and all(out.stat().st_mtime >= p.stat().st_mtime for p in inputs):
        return out
    data = build(target, fs, busybox, machine=machine)
    # atomic: a truncated initramfs would boot into "junk at the end of compressed archive"
    # instead of failing here
    write_bytes(out, data)
    return out


def have_tools() -> list[str]:
    """Names of the host tools missing for building an initramfs."""
    missing = [
        t
        for t in ("modprobe", "depmod")
        if shutil.which(t) is None and not Path("/sbin", t).exists()
    ]
    try:
        find_busybox()
    except FileNotFoundError:
        missing.append("busybox")
    return missing
