"""Kernel cache: resolve a series (6.1, 6.12, ...) to a Debian kernel, pin it
in a lock file, download and extract it, and find cached kernels again.

Layout of the cache ($MMAPCONF_KERNEL_CACHE, else
$XDG_CACHE_HOME/mmapconf/kernels, else ~/.cache/mmapconf/kernels):

    apt/            private apt state (see apt.py)
    debs/           downloaded .deb files (kept so a re-extract is offline)
    trees/ABI/      dpkg -x of the packages, plus our prepared files:
        vmlinux         ELF kernel for qemu's PVH entry (see image.py)
        mmapconf.json   what this tree is: series, abi, version, packages
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .apt import PrivateApt, compare_versions, parse_stanza

# Generic flavour only: cloud kernels have no 9p (CONFIG_NET_9P unset), rt
# kernels are a different scheduler and not what users run.
_GENERIC = re.compile(r"linux-image-(\d+\.\d+[^ ]*?)-amd64")
_EXCLUDE = ("-cloud-", "-rt-", "-dbg", "-unsigned")

DEFAULT_LOCK = Path(__file__).with_name("kernels.lock")  # JSON


def cache_root() -> Path:
    env = os.environ.get("MMAPCONF_KERNEL_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "mmapconf" / "kernels"


@dataclass
class Package:
    name: str
    version: str
    size: int = 0
    sha256: str = ""


@dataclass
class Pin:
    """One kernel series pinned to an exact Debian package set."""

    series: str
    abi: str  # e.g. 6.1.0-56-amd64, 7.3.4+deb13-amd64 (= uname -r)
    version: str  # Debian version of linux-image-ABI
    packages: list[Package] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> Pin:
        return cls(
            d["series"], d["abi"], d["version"], [Package(**p) for p in d.get("packages", [])]
        )


def read_lock(path: Path = DEFAULT_LOCK) -> dict[str, Pin]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {s: Pin.from_dict(p) for s, p in data.get("kernels", {}).items()}


def write_lock(pins: dict[str, Pin], path: Path = DEFAULT_LOCK) -> None:
    data = {
        "comment": "Exact Debian kernel packages behind each series; "
        "`mmapconf kernels fetch --update-lock SERIES` re-resolves.",
        "kernels": {
            s: asdict(p) for s, p in sorted(pins.items(), key=lambda kv: _series_key(kv[0]))
        },
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def _series_key(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", s))


def _stanzas(text: str) -> list[dict[str, str]]:
    return [parse_stanza(chunk) for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]


def _depends_names(depends: str) -> list[str]:
    return [alt.split()[0] for alt in re.split(r"[,|]", depends) if alt.strip()]


def resolve(apt: PrivateApt, series: str) -> Pin:
    """The newest generic amd64 kernel of SERIES that comes with its modules."""
    names = [
        n
        for n in apt.pkgnames(f"linux-image-{series}")
        if _GENERIC.fullmatch(n) and not any(x in n + "-" for x in _EXCLUDE)
    ]
    if not names:
        raise LookupError(f"no Debian kernel package for series {series}")
    stanzas = _stanzas(apt.run("apt-cache", ["show", *names]))
    best: Pin | None = None
    for st in stanzas:
        ver = st.get("Version", "")
        if not ver.startswith(series + "."):
            continue
        abi = _GENERIC.fullmatch(st["Package"]).group(1) + "-amd64"  # type: ignore[union-attr]
        pkgs = [Package(st["Package"], ver, int(st.get("Size", 0)), st.get("SHA256", ""))]
        # From 6.19 on, linux-image-ABI is a stub; the kernel and modules are
        # in linux-binary-ABI / linux-modules-ABI, which must still be there.
        # linux-base-ABI (config, System.map) is taken when present: 6.18
        # depends on it but the archive no longer has it, and we can do without.
        split = [
            d
            for d in _depends_names(st.get("Depends", ""))
            if d.endswith(abi) and d != st["Package"]
        ]
        if split:
            found = {
                s["Package"]: s
                for s in _stanzas(apt.run("apt-cache", ["show", *split]))
                if s.get("Version") == ver
            }
            needed = [d for d in split if d.startswith(("linux-binary-", "linux-modules-"))]
            if any(d not in found for d in needed):
                continue  # superseded: the archive kept the kernel but not its modules
            pkgs += [
                Package(n, ver, int(s.get("Size", 0)), s.get("SHA256", ""))
                for n, s in sorted(found.items())
            ]
        if best is None or compare_versions(ver, best.version) > 0:
            best = Pin(series, abi, ver, pkgs)
    if best is None:
        raise LookupError(f"no generic amd64 kernel with modules for series {series}")
    return best


@dataclass
class KernelTree:
    """A prepared kernel: where its files are and what it is."""

    root: Path
    abi: str
    series: str = ""
    version: str = ""

    @property
    def modules_dir(self) -> Path:
        for base in ("lib/modules", "usr/lib/modules"):
            d = self.root / base / self.abi
            if d.is_dir():
                return d
        raise FileNotFoundError(f"no modules for {self.abi} under {self.root}")

    @property
    def vmlinuz(self) -> Path:
        for p in (self.root / "boot" / f"vmlinuz-{self.abi}", self.modules_dir / "vmlinuz"):
            if p.is_file():
                return p
        raise FileNotFoundError(f"no vmlinuz for {self.abi} under {self.root}")

    @property
    def vmlinux(self) -> Path:
        return self.root / "vmlinux"


def extract(debs: list[Path], dest: Path) -> None:
    """dpkg -x every deb into DEST atomically (a half-extracted tree would be
    mistaken for a good one later)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would hide the tree from a non-root qemu
    try:
        for deb in debs:
            subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def prepare(tree: KernelTree) -> None:
    """Make the tree bootable by us: an ELF vmlinux and a modules.dep."""
    from .image import extract_vmlinux

    if not tree.vmlinux.is_file():
        extract_vmlinux(tree.vmlinuz, tree.vmlinux)
    mods = tree.modules_dir
    if not (mods / "modules.dep").is_file():
        # depmod -b BASE looks in BASE/lib/modules; 6.19+ packages use
        # usr/lib/modules (merged /usr), so give depmod the path it wants.
        if not (tree.root / "lib/modules").exists():
            (tree.root / "lib").mkdir(exist_ok=True)
            (tree.root / "lib/modules").symlink_to("../usr/lib/modules")
        subprocess.run(["depmod", "-b", str(tree.root), tree.abi], check=True)


def fetch(
    series: list[str],
    lock_path: Path = DEFAULT_LOCK,
    update_lock: bool = False,
    log=print,
) -> list[KernelTree]:
    """Download, extract and prepare the kernels of SERIES (pinned by the lock
    file when it names them; else resolved to the newest and added to it)."""
    root = cache_root()
    apt = PrivateApt(root / "apt")
    pins = read_lock(lock_path)
    trees: list[KernelTree] = []
    refreshed = False
    lock_changed = False
    for s in series:
        pin = pins.get(s)
        if pin is None or update_lock:
            if not refreshed:
                log("updating private package lists ...")
                apt.update()
                refreshed = True
            pin = resolve(apt, s)
            pins[s] = pin
            write_lock(pins, lock_path)
            lock_changed = True
        tree_dir = root / "trees" / pin.abi
        meta = tree_dir / "mmapconf.json"
        if meta.is_file() and json.loads(meta.read_text()).get("version") == pin.version:
            log(f"{s}: {pin.abi} ({pin.version}) already cached")
        else:
            if not refreshed and not apt.has_lists():
                log("fetching private package lists ...")
                apt.update()
                refreshed = True
            t0 = time.monotonic()
            debs = [_download(apt, root / "debs", p, log) for p in pin.packages]
            size = sum(d.stat().st_size for d in debs)
            t1 = time.monotonic()
            extract(debs, tree_dir)
            t2 = time.monotonic()
            log(
                f"{s}: {pin.abi}: {size / 1e6:.0f} MB downloaded in {t1 - t0:.1f} s, "
                f"extracted in {t2 - t1:.1f} s"
            )
            meta.write_text(
                json.dumps({"series": s, "abi": pin.abi, "version": pin.version}, indent=2) + "\n"
            )
        tree = KernelTree(tree_dir, pin.abi, s, pin.version)
        prepare(tree)
        trees.append(tree)
    if lock_changed:
        log(f"lock file updated: {lock_path}")
    return trees


def _download(apt: PrivateApt, dest: Path, pkg: Package, log) -> Path:
    v = pkg.version.replace(":", "%3a")
    have = sorted(dest.glob(f"{pkg.name}_{v}_*.deb"))
    if have and (not pkg.size or have[0].stat().st_size == pkg.size):
        return have[0]
    log(f"downloading {pkg.name} {pkg.version} ({pkg.size / 1e6:.0f} MB)")
    try:
        deb = apt.download(pkg.name, pkg.version, dest)
    except Exception as e:
        raise RuntimeError(
            f"{e}\nThe pinned {pkg.name}={pkg.version} may have left the archive; "
            "`mmapconf kernels fetch --update-lock` re-pins to what is there now."
        ) from e
    # apt checked it against the signed index; this checks it is what the
    # lock file pinned, so a matrix names exactly the kernel it ran.
    if pkg.sha256 and sha256(deb) != pkg.sha256:
        deb.unlink()
        raise RuntimeError(f"{deb.name}: sha256 differs from the lock file's")
    return deb


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached() -> list[KernelTree]:
    """Every prepared kernel in the cache, oldest series first."""
    out = []
    trees = cache_root() / "trees"
    for meta in sorted(trees.glob("*/mmapconf.json")) if trees.is_dir() else []:
        d = json.loads(meta.read_text())
        out.append(KernelTree(meta.parent, d["abi"], d.get("series", ""), d.get("version", "")))
    return sorted(out, key=lambda t: (_series_key(t.series or t.abi), t.abi))


def find(spec: str) -> KernelTree:
    """A kernel given as a series (6.1), an ABI (6.1.0-56-amd64) or a path to a
    tree or to a kernel image inside one."""
    p = Path(spec)
    if p.exists():
        d = p if p.is_dir() else p.parent
        for cand in (d, *d.parents):
            if (cand / "mmapconf.json").is_file():
                m = json.loads((cand / "mmapconf.json").read_text())
                return KernelTree(cand, m["abi"], m.get("series", ""), m.get("version", ""))
        raise FileNotFoundError(
            f"{spec}: not a prepared kernel tree (run `mmapconf kernels fetch`)"
        )
    trees = cached()
    exact = [t for t in trees if t.abi == spec]
    if exact:
        return exact[0]
    pins = read_lock()
    if spec in pins:
        match = [t for t in trees if t.abi == pins[spec].abi]
        if match:
            return match[0]
    match = [t for t in trees if t.series == spec]
    if match:
        return match[-1]
    raise LookupError(f"kernel {spec!r} is not cached; run `mmapconf kernels fetch {spec}`")
