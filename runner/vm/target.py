"""The kernel a guest boots: a cached Debian kernel (by series or ABI), or a kernel of the
user's own given by path (a bzImage, an ELF vmlinux, or a build folder), with its modules.

Everything derived from an image of the user's (the ELF inside a bzImage, a modules root with
a fresh modules.dep, the initramfs files) is kept in the cache under the image's sha256, never
beside the image: a build tree or a copied /boot is not ours to write into.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.report.atomic import write_bytes

from . import image, kconfig, kernels
from .arch import AMD64, ARM64, Arch, parse_spec, spec_key

# Files depmod writes: never linked from the user's modules folder (depmod would write through
# the link) but made afresh in our copy.
_DEPMOD_OUTPUT = (
    "modules.dep",
    "modules.alias",
    "modules.symbols",
    "modules.softdep",
    "modules.devname",
    "modules.weakdep",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
)


class KernelRefused(UsageError):
    """A kernel that cannot run the guest as given (missing options, no release): exit 2."""


@dataclass
class Target:
    label: str  # names the job folder and the matrix column: series, or the release
    release: str  # what `uname -r` says in the guest
    image: Path  # qemu's -kernel
    cache: Path  # where the initramfs files for this kernel are kept
    modules_root: Path | None  # a folder with lib/modules/RELEASE, or None: all built in
    config: dict[str, str] | None  # its .config, when one was found
    elf: bool  # booted through the PVH note (else as a bzImage, or an arm64 Image)
    facts: dict[str, Any] = field(default_factory=dict)  # environment.vm.kernel in the report
    arch: Arch = AMD64


def stock(tree: kernels.KernelTree) -> Target:
    config = tree.root / "boot" / f"config-{tree.abi}"
    return Target(
        label=tree.label,
        release=tree.abi,
        image=tree.image,
        cache=tree.root,
        modules_root=tree.root if tree.has_modules else None,
        config=kconfig.parse(config.read_text()) if config.is_file() else None,
        elf=tree.arch is AMD64,
        facts={
            "source": "built" if tree.built else "debian",
            "series": tree.series,
            "debian_version": tree.version,
            "flavour": tree.flavour,
            "page_size": tree.page_size,
        },
        arch=tree.arch,
    )


def resolve(spec: str, modules: Path | None) -> Target:
    """SPEC as a path when one exists there (a cached tree stays a stock kernel), else a
    series or ABI of the cache (fetched when the lock file pins it). MODULES goes with the
    kernels given by path."""
    p = Path(spec)
    if p.exists() and not _in_cached_tree(p):
        return from_path(p, modules)
    return stock(_find_or_fetch(spec))  # with its own modules: --modules is for paths


def _in_cached_tree(p: Path) -> bool:
    d = p if p.is_dir() else p.parent
    return any((c / "mmapconf.json").is_file() for c in (d, *d.parents))


def _find_or_fetch(spec: str) -> kernels.KernelTree:
    try:
        return kernels.find(spec)
    except LookupError:
        parsed = parse_spec(spec)
        if parsed is None or spec_key(*parsed) not in kernels.read_lock():
            raise UsageError(
                f"--kernel {spec}: no such file, and not a cached or pinned kernel "
                f"(`mmapconf kernels fetch SERIES`, or give the path of a bzImage, a vmlinux "
                f"or a build folder)"
            ) from None
    print(f"kernel {spec} is pinned in the lock file but not cached: fetching it")
    return kernels.fetch([spec])[0]


def from_path(path: Path, modules: Path | None) -> Target:
    path = path.resolve()
    img, config_text = _image_and_config(path)
    data = img.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    cache = kernels.cache_root() / "own" / digest[:16]
    cache.mkdir(parents=True, exist_ok=True)
    release = image.release(data)
    if not release:
        raise KernelRefused(f"{img}: no Linux version string found: not a kernel image?")
    arm64 = image.is_arm64_image(data)
    boot, elf = (img, False) if arm64 else _bootable(img, data, cache)
    if config_text is None:
        unpacked = data if arm64 else boot.read_bytes() if elf else image.elf_of(data)
        config_text = image.embedded_config(unpacked)
    target = Target(
        label=release,
        release=release,
        image=boot,
        cache=cache,
        modules_root=None,
        config=kconfig.parse(config_text) if config_text is not None else None,
        elf=elf,
        facts={"source": "path", "path": str(img), "sha256": digest},
        arch=ARM64 if arm64 else AMD64,
    )
    return target if modules is None else _with_modules(target, modules)


def _image_and_config(path: Path) -> tuple[Path, str | None]:
    """The image to boot and the .config that describes it, for a file or a build folder."""
    if path.is_dir():
        vmlinux, bz = path / "vmlinux", path / "arch/x86/boot/bzImage"
        arm64 = path / "arch/arm64/boot/Image"
        if vmlinux.is_file() and image.has_pvh_note(vmlinux.read_bytes()):
            img = vmlinux
        elif bz.is_file():
            img = bz
        elif arm64.is_file():
            img = arm64
        else:
            raise KernelRefused(
                f"{path}: a build folder has vmlinux (with CONFIG_PVH), arch/x86/boot/bzImage "
                "or arch/arm64/boot/Image; none is here (run make first)"
            )
        config = path / ".config"
        return img, config.read_text() if config.is_file() else None
    data_head = path.read_bytes()[:0x300]
    if not (
        data_head.startswith(image.ELF_MAGIC)
        or image.is_bzimage(data_head)
        or image.is_arm64_image(data_head)
    ):
        raise KernelRefused(f"{path}: not a bzImage, an ELF vmlinux or an arm64 Image")
    return path, _config_beside(path)


def _config_beside(img: Path) -> str | None:
    """The config /boot keeps beside an image (config-RELEASE), or a build tree's .config
    above arch/x86/boot/bzImage."""
    name = img.name
    for prefix in ("vmlinuz-", "vmlinux-", "bzImage-"):
        if name.startswith(prefix):
            cand = img.with_name("config-" + name[len(prefix) :])
            if cand.is_file():
                return cand.read_text()
    for d in (img.parent, *list(img.parents)[:3]):
        if (d / ".config").is_file():
            return (d / ".config").read_text()
    return None


def _bootable(img: Path, data: bytes, cache: Path) -> tuple[Path, bool]:
    """What qemu gets: the ELF (ours, extracted, when IMG is a bzImage) when it has the PVH
    note, else the bzImage itself."""
    if data.startswith(image.ELF_MAGIC):
        if not image.has_pvh_note(data):
            raise KernelRefused(
                f"{img}: this vmlinux has no PVH note (CONFIG_PVH=y); give the bzImage instead"
            )
        return img, True
    out = cache / "vmlinux"
    if out.is_file():
        return out, True
    elf = image.elf_of(data)
    if not image.has_pvh_note(elf):
        return img, False
    write_bytes(out, elf)
    return out, True


def _with_modules(target: Target, modules: Path) -> Target:
    source = _release_dir(modules.resolve(), target.release)
    key = hashlib.sha256(str(source).encode()).hexdigest()[:16]
    root = target.cache / f"modules-{key}"
    _link_farm(source, root / "lib" / "modules" / target.release)
    target.modules_root = root
    target.cache = root
    target.facts["modules"] = str(source)
    return target


def _release_dir(modules: Path, release: str) -> Path:
    """The lib/modules/RELEASE folder of MODULES: that folder itself, a lib/modules folder,
    or a `make modules_install INSTALL_MOD_PATH=` root."""
    for cand in (
        modules / "lib/modules" / release,
        modules / "usr/lib/modules" / release,
        modules / release,
        modules,
    ):
        if cand.is_dir() and cand.name == release:
            return cand
    raise KernelRefused(
        f"--modules {modules}: no lib/modules/{release} there (the kernel is {release})"
    )


def _link_farm(source: Path, dest: Path) -> None:
    """DEST: links to SOURCE's entries, and a modules.dep of our own (depmod -b)."""
    stamp = dest / "mmapconf-source.json"
    order = source / "modules.order"
    key = json.dumps({"source": str(source), "mtime": _mtime(order)})
    if stamp.is_file() and stamp.read_text() == key:
        return
    dest.mkdir(parents=True, exist_ok=True)
    for entry in dest.iterdir():
        entry.unlink()
    for entry in source.iterdir():
        if not entry.name.startswith(_DEPMOD_OUTPUT):
            (dest / entry.name).symlink_to(entry)
    root = dest.parents[2]
    subprocess.run(["depmod", "-b", str(root), dest.name], check=True, capture_output=True)
    stamp.write_text(key)


def _mtime(p: Path) -> float:
    return p.stat().st_mtime if p.exists() else 0.0


def module_options(target: Target) -> set[str] | None:
    """The options of guest.config whose module this target's modules folder has (None: no
    modules folder)."""
    if target.modules_root is None:
        return None
    dep = target.modules_root / "lib/modules" / target.release / "modules.dep"
    have = {
        Path(line.split(":")[0]).name.split(".ko")[0].replace("-", "_")
        for line in dep.read_text().splitlines()
    }
    return {opt for opt, mod in kconfig.MODULE_OF.items() if mod in have}


def check(target: Target, machine: str, fs: list[str]) -> None:
    """Refuse before booting a kernel whose config lacks what the guest needs (every option
    named); a kernel without a findable config is booted unchecked."""
    if target.config is None:
        target.facts["config_checked"] = False
        return
    acpi = target.config.get("CONFIG_ACPI") == "y"
    groups = kconfig.needed_groups(machine, acpi, target.elf, fs)
    lacking = kconfig.missing(target.config, groups, module_options(target))
    if lacking:
        where = target.facts.get("path") or target.label
        modular = target.modules_root is None and any("no --modules" in x for x in lacking)
        raise KernelRefused(
            f"kernel {where} ({target.release}) cannot run the guest on {machine}: it lacks "
            + ", ".join(lacking)
            + ("; give its modules with --modules DIR, or" if modular else ";")
            + f" merge {kconfig.FRAGMENT} into its config (docs/kernel-developers.md)"
        )
    target.facts["config_checked"] = True
    target.facts["acpi"] = acpi
