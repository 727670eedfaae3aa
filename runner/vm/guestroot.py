"""The root filesystem of a guest whose architecture is not the host's.

A guest of the host's own architecture runs the host's root (shared read-only).  Another
architecture needs its own interpreter: a small Debian userland (python3, python3-yaml,
python3-jsonschema, busybox-static and what they depend on) fetched with a private apt state
of that architecture, pinned in the lock file (name, version, sha256 of each package) and
unpacked with ``dpkg -x`` into the kernel cache:

    roots/ARCH-HASH/    the unpacked packages (HASH: of the pinned package list), plus
        bin/sh              busybox (cmd.sh needs a shell; dash is not among the packages)
        proc sys dev run tmp   mount points for the guest init
        mmapconf.json       what the root is

The project is not copied in: the guest init shares it as a second 9p share at its host path.
The Python files are compiled on the host when the host's Python has the guest's version
(without them ``import runner.cli`` takes about 20 s under TCG).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

from .apt import PrivateApt, parse_stanzas
from .arch import Arch
from .cachedir import replacing

# mount (mount, umount, losetup) and e2fsprogs (mkfs.ext4): a case's `provision:` mounts its
# own tmpfs or ext4 image, with the host's tools in an x86-64 guest and these in an arm64 one.
PACKAGES = (
    "python3",
    "python3-yaml",
    "python3-jsonschema",
    "busybox-static",
    "mount",
    "e2fsprogs",
)
SUITE = "bookworm"
MOUNT_POINTS = ("proc", "sys", "dev", "run", "tmp")
PYTHON = "/usr/bin/python3"


def apt_for(cache: Path, arch: Arch) -> PrivateApt:
    """A private apt state that sees SUITE only (its own release and security updates), so the
    package closure is one consistent release."""
    return PrivateApt(
        cache / f"apt-root-{arch.debian}",
        arch=arch.debian,
        suites=(SUITE, f"{SUITE}-updates"),
        security_suites=(f"{SUITE}-security",),
    )


def resolve(apt: PrivateApt) -> list[dict[str, object]]:
    """The packages (name, version, size, sha256) that installing PACKAGES into an empty
    system takes, without recommends."""
    apt.update()
    out = apt.run(
        "apt-get",
        ["-s", "-q", "--no-install-recommends", "install", *PACKAGES],
    )
    wanted = re.findall(r"^Inst (\S+) \((\S+) ", out, re.M)
    shown = apt.run("apt-cache", ["show", "--no-all-versions", *(f"{n}={v}" for n, v in wanted)])
    pins = [
        {
            "name": st["Package"],
            "version": st["Version"],
            "size": int(st.get("Size", 0)),
            "sha256": st.get("SHA256", ""),
        }
        for st in parse_stanzas(shown)
    ]
    return sorted(pins, key=lambda p: str(p["name"]))


def pin_hash(packages: list[dict[str, object]]) -> str:
    text = "\n".join(f"{p['name']}={p['version']}" for p in packages)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def unpack(debs: list[Path], dest: Path, meta: dict[str, object]) -> None:
    """dpkg -x every deb into DEST (atomically: a half-unpacked root is never taken for a
    good one), then what the guest init and cmd.sh need."""
    with replacing(dest) as tmp:
        for deb in debs:
            subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True)
        (tmp / "bin" / "sh").unlink(missing_ok=True)
        (tmp / "bin" / "sh").symlink_to("busybox")
        for d in MOUNT_POINTS:
            (tmp / d).mkdir(exist_ok=True)
        meta["precompiled"] = precompile(tmp)
        (tmp / "mmapconf.json").write_text(json.dumps(meta, indent=2) + "\n")


def python_version(root: Path) -> str:
    """The guest interpreter's X.Y, from the name /usr/bin/python3 links to."""
    target = (root / PYTHON.lstrip("/")).readlink().name  # python3.11
    return target.removeprefix("python")


def host_can_compile_for(root: Path) -> bool:
    return python_version(root) == "{}.{}".format(*sys.version_info[:2])


def precompile(root: Path) -> bool:
    """Compile the root's Python files with the host's interpreter when it is the guest's
    version (bytecode is the same on every architecture); the paths recorded are the guest's."""
    if not host_can_compile_for(root):
        return False
    lib = [str(p) for p in sorted((root / "usr/lib").glob("python3*")) if p.is_dir()]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "-s", str(root), "-p", "/", *lib],
        check=True,
        capture_output=True,
    )
    return True


def precompile_project(project: Path, root: Path) -> None:
    """The project's own bytecode (__pycache__ beside the sources, where the guest's read-only
    import looks); skipped when the host cannot compile for the guest's Python."""
    if host_can_compile_for(root):
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "runner", "conformance"],
            cwd=project,
            check=True,
            capture_output=True,
        )
