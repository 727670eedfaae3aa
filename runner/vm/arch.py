"""Guest architectures and kernel flavours as data: what differs between an amd64 and an arm64
guest is here, and the code that boots them is one path.

A kernel spec is ``[FLAVOUR:]SERIES`` (``6.12``, ``arm64:6.12``, ``arm64-16k:6.12``,
``arm64-64k:6.1``); a bare series is the amd64 flavour, which is what the lock file's plain
keys have always meant.  A flavour is an architecture with a page size: Debian ships the 4K
and 16K arm64 kernels; no distribution ships a 64K one, so that one is built from Debian's
``linux-source-SERIES`` with a config fragment shipped here (see kbuild.py).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CONFIGS = Path(__file__).with_name("configs")


@dataclass(frozen=True)
class Machine:
    """A qemu board a guest can boot on."""

    name: str  # as --machine takes it
    board: str  # -M
    virtio: str  # transport suffix of the virtio devices: "device" (MMIO) or "pci"
    firmware: str = ""  # -bios, when the board needs one
    noacpi: str = ""  # what -M gets when the kernel has no ACPI


@dataclass(frozen=True)
class Arch:
    """One guest architecture, as Debian, the kernel and qemu name it."""

    debian: str  # Debian architecture: amd64, arm64
    machine: str  # uname -m in the guest
    qemu: str
    machines: tuple[Machine, ...]  # the first is the default
    cpu: str  # -cpu under TCG
    console: str
    cross_compile: str  # CROSS_COMPILE= for a build on an x86-64 host
    kernel_arch: str  # ARCH= of the kernel build
    image_target: str  # make target of the bootable image, and its path under arch/ARCH/boot
    # Under TCG the PIT calibration sometimes fails and 6.1 then hangs at boot; without
    # tsc=reliable the clocksource falls back to jiffies (4 ms resolution).
    x86_tsc: bool = False


AMD64 = Arch(
    debian="amd64",
    machine="x86_64",
    qemu="qemu-system-x86_64",
    machines=(
        # microvm + qboot: no BIOS, no PCI probing; the ELF vmlinux boots through its PVH entry.
        Machine(
            "microvm",
            "microvm,pit=on,pic=on,rtc=on",
            "device",
            "/usr/share/qemu/qboot.rom",
            ",acpi=off",
        ),
        Machine("q35", "q35", "pci"),
    ),
    cpu="max",
    console="ttyS0",
    cross_compile="x86_64-linux-gnu-",
    kernel_arch="x86",
    image_target="bzImage",
    x86_tsc=True,
)

ARM64 = Arch(
    debian="arm64",
    machine="aarch64",
    qemu="qemu-system-aarch64",
    # virt's virtio-mmio slots exist too, but Debian's kernels have VIRTIO_PCI built in and
    # VIRTIO_MMIO as a module.
    machines=(Machine("virt", "virt", "pci"),),
    # pauth-impdef: qemu's own pointer-authentication hash, much cheaper under TCG than QARMA.
    cpu="max,pauth-impdef=on",
    console="ttyAMA0",
    cross_compile="aarch64-linux-gnu-",
    kernel_arch="arm64",
    image_target="Image",
)

ARCHES = {a.debian: a for a in (AMD64, ARM64)}
MACHINES = tuple(m.name for a in ARCHES.values() for m in a.machines)


def machine_of(arch: Arch, name: str | None) -> Machine:
    """ARCH's machine NAME (None: its default)."""
    for m in arch.machines:
        if name in (None, m.name):
            return m
    names = ", ".join(m.name for m in arch.machines)
    raise ValueError(f"--machine {name}: {arch.debian} guests boot on {names}")


@dataclass(frozen=True)
class Flavour:
    """A kernel flavour: an architecture and a page size."""

    name: str  # as in a kernel spec, and Debian's package suffix where Debian has one
    arch: Arch
    page_size: int
    fragment: str = ""  # config fragment under configs/ when no distribution ships it

    @property
    def built(self) -> bool:
        return bool(self.fragment)

    @property
    def fragment_path(self) -> Path:
        return CONFIGS / self.fragment


FLAVOURS = {
    f.name: f
    for f in (
        Flavour("amd64", AMD64, 4096),
        Flavour("arm64", ARM64, 4096),
        Flavour("arm64-16k", ARM64, 16384),
        Flavour("arm64-64k", ARM64, 65536, fragment="arm64-64k.config"),
    )
}
DEFAULT_FLAVOUR = "amd64"


def parse_spec(spec: str) -> tuple[Flavour, str] | None:
    """(flavour, series) of a kernel spec such as ``arm64-16k:6.12`` or ``6.1``; None when
    SPEC is not of that form (it may be an ABI or a path)."""
    name, sep, series = spec.rpartition(":")
    if not sep:
        name, series = DEFAULT_FLAVOUR, spec
    if name not in FLAVOURS or not _is_series(series):
        return None
    return FLAVOURS[name], series


def _is_series(s: str) -> bool:
    parts = s.split(".")
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def spec_key(flavour: Flavour, series: str) -> str:
    """The lock file's key: the series alone for amd64 (as it always was), else FLAVOUR:SERIES."""
    return series if flavour.name == DEFAULT_FLAVOUR else f"{flavour.name}:{series}"


def unknown_spec_message(spec: str) -> str:
    return (
        f"{spec!r} is not a kernel spec: use SERIES (amd64, e.g. 6.12) or FLAVOUR:SERIES with "
        f"FLAVOUR one of {', '.join(FLAVOURS)} (e.g. arm64-16k:6.12)"
    )


def native(arch: Arch) -> bool:
    """Whether guests of ARCH run this host's own binaries (the host root is shared then)."""
    return platform.machine() == arch.machine
