"""A kernel's configuration, checked before booting it: every option the guest needs, by name.

What the guest needs is runner/vm/guest.config (the fragment a kernel developer merges into a
build, so the check and the documented fragment cannot disagree).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FRAGMENT = Path(__file__).with_name("guest.config")
_SET = re.compile(r"(CONFIG_\w+)=(.*)")
_UNSET = re.compile(r"# (CONFIG_\w+) is not set")


def parse(text: str) -> dict[str, str]:
    """OPTION -> value (y, m, a string or number; n for '# CONFIG_X is not set')."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if m := _SET.fullmatch(line.strip()):
            out[m.group(1)] = m.group(2).strip('"')
        elif m := _UNSET.fullmatch(line.strip()):
            out[m.group(1)] = "n"
    return out


@dataclass(frozen=True)
class Group:
    name: str
    builtin: bool  # must be =y even when modules are given
    options: tuple[str, ...]


def fragment_groups(text: str | None = None) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    current: Group | None = None
    for line in (FRAGMENT.read_text() if text is None else text).splitlines():
        if line.startswith("## group "):
            words = line.split()[2:]
            current = Group(words[0], "builtin" in words[1:], ())
            groups[current.name] = current
        elif (m := _SET.fullmatch(line.strip())) and current is not None:
            current = Group(current.name, current.builtin, (*current.options, m.group(1)))
            groups[current.name] = current
    return groups


def needed_groups(machine: str, acpi: bool, elf: bool, fs: list[str]) -> list[str]:
    names = ["init", "always", machine, "virt-console" if machine == "virt" else "serial-8250"]
    if elf:
        names.append("elf")
    if machine == "microvm" and not acpi:
        names.append("microvm-noacpi")
    return names + [f for f in fs if f != "none"]


def missing(config: dict[str, str], groups: list[str], module_ok: set[str] | None) -> list[str]:
    """The options of GROUPS this config lacks, each as 'CONFIG_X (is m, no --modules)' etc.

    MODULE_OK: the options whose module is available (None: no modules folder was given), so
    an =m option counts only when its module can be loaded."""
    table = fragment_groups()
    out: list[str] = []
    for name in groups:
        group = table[name]
        for opt in group.options:
            value = config.get(opt, "n")
            if value == "y":
                continue
            if value == "m" and not group.builtin and module_ok is not None and opt in module_ok:
                continue
            out.append(f"{opt} ({_why(value, group.builtin, module_ok)})")
    return out


def _why(value: str, builtin: bool, module_ok: set[str] | None) -> str:
    if value != "m":
        return "not set"
    if builtin:
        return "=m, must be built in"
    return "=m and no --modules given" if module_ok is None else "=m, module not in --modules"


def relevant(config: dict[str, str]) -> dict[str, str]:
    """The options of the fragment, plus the ones that change what cases see, as the config has
    them: what a report records about a kernel."""
    names = [o for g in fragment_groups().values() for o in g.options]
    names += ["CONFIG_ACPI", "CONFIG_FS_DAX", "CONFIG_TRANSPARENT_HUGEPAGE", "CONFIG_HUGETLBFS"]
    names += ["CONFIG_USERFAULTFD", "CONFIG_SHMEM", "CONFIG_MEMFD_CREATE", "CONFIG_KASAN"]
    return {o: config.get(o, "n") for o in dict.fromkeys(names)}


# The module that provides each tristate option of the fragment (what `--modules` must hold
# for an =m option to count).
MODULE_OF = {
    "CONFIG_VIRTIO": "virtio",
    "CONFIG_VIRTIO_BLK": "virtio_blk",
    "CONFIG_NET_9P": "9pnet",
    "CONFIG_NET_9P_VIRTIO": "9pnet_virtio",
    "CONFIG_9P_FS": "9p",
    "CONFIG_VIRTIO_MMIO": "virtio_mmio",
    "CONFIG_VIRTIO_PCI": "virtio_pci",
    "CONFIG_EXT4_FS": "ext4",
    "CONFIG_XFS_FS": "xfs",
    "CONFIG_BTRFS_FS": "btrfs",
}
