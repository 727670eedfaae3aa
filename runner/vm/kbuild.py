"""Build the kernel flavours no distribution ships (arm64 with 64K pages), from Debian's
``linux-source-SERIES`` package and a config fragment shipped in configs/.

``make allnoconfig``, then the fragment (everything the guest needs built in, so the kernel
has no modules), cross-compiled with the architecture's ``CROSS_COMPILE`` toolchain.  In the
kernel cache:

    build/linux-source-VERSION/   the unpacked source, shared by every build of that version
    build/FLAVOUR-VERSION/        the build tree (make O=), kept so a rebuild is incremental
    trees/ABI/                    Image, boot/config-ABI, build.log, mmapconf.json
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from .apt import PrivateApt
from .arch import Flavour
from .cachedir import replacing

IMAGE_NAME = "Image"  # what a built tree's bootable image is called


class KernelBuildError(RuntimeError):
    """The build could not run (a missing tool) or did not give the configured kernel."""


def fragment_sha256(flavour: Flavour) -> str:
    return hashlib.sha256(flavour.fragment_path.read_bytes()).hexdigest()


def upstream(version: str) -> str:
    """6.1.192 of the Debian version 6.1.192-2."""
    return version.split("-", 1)[0]


def abi(flavour: Flavour, version: str) -> str:
    """The kernel release the build reports (the fragment sets CONFIG_LOCALVERSION)."""
    return f"{upstream(version)}-{flavour.name}"


def missing_tools(flavour: Flavour) -> list[str]:
    tools = [f"{flavour.arch.cross_compile}gcc", "make", "bc", "flex", "bison", "tar", "xz"]
    return [t for t in tools if shutil.which(t) is None]


def unpack_source(deb: Path, series: str, version: str, build_root: Path, log) -> Path:
    """The kernel tree inside linux-source-SERIES's tarball, unpacked once per version."""
    src = build_root / f"linux-source-{version}"
    tree = src / f"linux-source-{series}"
    if (src / ".unpacked").is_file():
        return tree
    log(f"unpacking {deb.name} ...")
    with replacing(src) as tmp:
        # dpkg-deb -x, not a tar member name: packages differ in whether members start "./".
        _run(["dpkg-deb", "-x", str(deb), str(tmp)], f"unpacking {deb.name}")
        tarball = tmp / f"usr/src/linux-source-{series}.tar.xz"
        if not tarball.is_file():
            raise KernelBuildError(f"{deb.name} has no usr/src/{tarball.name}")
        _run(["tar", "-xJf", str(tarball)], f"unpacking {tarball.name}", cwd=tmp)
        shutil.rmtree(tmp / "usr")
        (tmp / ".unpacked").touch()
    return tree


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    """CMD, its failure a KernelBuildError naming WHAT with the command's own message."""
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        raise KernelBuildError(f"{what} failed ({p.returncode}): " + " / ".join(tail))


def configure(flavour: Flavour, source: Path, out: Path) -> None:
    """allnoconfig + the fragment; every option the fragment sets must survive olddefconfig
    (a dependency it lacks would drop it silently)."""
    make = _make(flavour, source, out)
    out.mkdir(parents=True, exist_ok=True)
    _run([*make, "-s", "allnoconfig"], "make allnoconfig")
    _run(
        [
            str(source / "scripts/kconfig/merge_config.sh"),
            *("-m", "-O", str(out), str(out / ".config"), str(flavour.fragment_path)),
        ],
        "merging the fragment",
        cwd=source,
    )
    _run([*make, "-s", "olddefconfig"], "make olddefconfig")
    lost = dropped(flavour, (out / ".config").read_text())
    if lost:
        raise KernelBuildError(
            f"{flavour.fragment_path}: options dropped by the kernel's Kconfig (a dependency "
            f"is missing from the fragment): {', '.join(lost)}"
        )


def dropped(flavour: Flavour, config: str) -> list[str]:
    """The fragment's settings that the resulting .config text CONFIG does not have."""
    have = set(config.splitlines())
    wanted = [s.strip() for s in flavour.fragment_path.read_text().splitlines()]
    return [s for s in wanted if s.startswith("CONFIG_") and s not in have]


def _make(flavour: Flavour, source: Path, out: Path) -> list[str]:
    a = flavour.arch
    return ["make", "-C", str(source), f"O={out}", f"ARCH={a.kernel_arch}"] + (
        [f"CROSS_COMPILE={a.cross_compile}"] if a.cross_compile else []
    )


def build(
    flavour: Flavour, series: str, version: str, deb: Path, tree_dir: Path, build_root: Path, log
) -> None:
    """Build FLAVOUR from the linux-source DEB into TREE_DIR (Image, config, mmapconf.json)."""
    missing = missing_tools(flavour)
    if missing:
        raise KernelBuildError(
            f"cannot build {flavour.name}: missing {', '.join(missing)} "
            "(install with scripts/install-vm-deps.sh)"
        )
    source = unpack_source(deb, series, version, build_root, log)
    out = build_root / f"{flavour.name}-{version}"
    configure(flavour, source, out)
    jobs = str(os.cpu_count() or 1)
    blog = out / "build.log"
    log(f"building {abi(flavour, version)} (make -j{jobs}, about 10 CPU-minutes; log: {blog})")
    t0 = time.monotonic()
    with open(blog, "wb") as f:
        p = subprocess.run(
            [
                "nice",
                "-n",
                "10",
                *_make(flavour, source, out),
                f"-j{jobs}",
                flavour.arch.image_target,
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    if p.returncode != 0:
        raise KernelBuildError(f"kernel build failed ({p.returncode}); see {blog}")
    log(f"built in {time.monotonic() - t0:.0f} s")
    release = abi(flavour, version)
    (tree_dir / "boot").mkdir(parents=True, exist_ok=True)
    image = out / "arch" / flavour.arch.kernel_arch / "boot" / flavour.arch.image_target
    # boot/config-RELEASE, where a Debian tree has it: checked before each boot like theirs.
    for src, name in (
        (image, IMAGE_NAME),
        (out / ".config", f"boot/config-{release}"),
        (blog, "build.log"),
    ):
        shutil.copyfile(src, tree_dir / name)
    meta = {
        "series": series,
        "abi": release,
        "version": version,
        "flavour": flavour.name,
        "fragment_sha256": fragment_sha256(flavour),
    }
    (tree_dir / "mmapconf.json").write_text(json.dumps(meta, indent=2) + "\n")


def source_package(apt: PrivateApt, series: str) -> tuple[str, str, int, str]:
    """(name, version, size, sha256) of the newest linux-source-SERIES in the archive."""
    name = f"linux-source-{series}"
    versions = apt.versions(name)
    if not versions:
        raise LookupError(f"no {name} package in the archive")
    st = apt.show(f"{name}={versions[0]}")
    return name, versions[0], int(st.get("Size", 0)), st.get("SHA256", "")
