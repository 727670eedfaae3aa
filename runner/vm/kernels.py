"""Kernel cache: resolve a kernel spec (6.1, arm64:6.12, arm64-64k:6.1; see arch.py) to a
Debian kernel, or to the linux-source package a flavour is built from, pin it in a lock file,
download and extract (or build) it, and find cached kernels again.

Layout of the cache ($MMAPCONF_KERNEL_CACHE, else
$XDG_CACHE_HOME/mmapconf/kernels, else ~/.cache/mmapconf/kernels):

    apt/            private apt state for amd64 (see apt.py); apt-ARCH/ for the others
    debs/           downloaded .deb files (kept so a re-extract is offline)
    trees/ABI/      dpkg -x of the packages (or a build, see kbuild.py), plus our files:
        vmlinux         ELF kernel for qemu's PVH entry (amd64, see image.py)
        Image           the arm64 kernel image qemu boots
        mmapconf.json   what this tree is: series, abi, version, flavour
    build/          kernel sources and build trees (kbuild.py)
    roots/          guest roots of other architectures (guestroot.py)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import guestroot, kbuild
from .apt import PrivateApt, compare_versions, parse_stanzas
from .arch import FLAVOURS, Arch, Flavour, native, parse_spec, spec_key, unknown_spec_message
from .cachedir import replacing

# Generic flavours only: cloud kernels have no 9p (CONFIG_NET_9P unset), rt
# kernels are a different scheduler and not what users run.
_EXCLUDE = ("-cloud-", "-rt-", "-dbg", "-unsigned")


def _generic(flavour: Flavour) -> re.Pattern[str]:
    return re.compile(rf"linux-image-(\d+\.\d+[^ ]*?)-{re.escape(flavour.name)}")


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
    """One kernel spec pinned to an exact Debian package set: the kernel's own packages, or
    for a built flavour the linux-source package and the config fragment's sha256."""

    series: str
    abi: str  # e.g. 6.1.0-56-amd64, 7.3.4+deb13-amd64, 6.1.192-arm64-64k (= uname -r)
    version: str  # Debian version of linux-image-ABI (or of linux-source-SERIES)
    packages: list[Package] = field(default_factory=list)
    flavour: str = "amd64"
    fragment_sha256: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> Pin:
        return cls(
            d["series"],
            d["abi"],
            d["version"],
            [Package(**p) for p in d.get("packages", [])],
            d.get("flavour", "amd64"),
            d.get("fragment_sha256", ""),
        )


def read_lock(path: Path = DEFAULT_LOCK) -> dict[str, Pin]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {s: Pin.from_dict(p) for s, p in data.get("kernels", {}).items()}


def read_root_pins(path: Path = DEFAULT_LOCK) -> dict[str, list[Package]]:
    """The guest roots' packages by Debian architecture."""
    if not path.is_file():
        return {}
    roots = json.loads(path.read_text()).get("roots", {})
    return {a: [Package(**p) for p in r["packages"]] for a, r in roots.items()}


def write_lock(
    pins: dict[str, Pin], path: Path = DEFAULT_LOCK, roots: dict[str, list[Package]] | None = None
) -> None:
    roots = read_root_pins(path) if roots is None else roots
    data = {
        "comment": "Exact Debian packages behind each kernel spec and guest root; "
        "`mmapconf kernels fetch --update-lock SPEC` re-resolves.",
        "kernels": {
            s: asdict(p) for s, p in sorted(pins.items(), key=lambda kv: _spec_order(kv[0]))
        },
        "roots": {
            a: {"suite": guestroot.SUITE, "packages": [asdict(p) for p in pkgs]}
            for a, pkgs in sorted(roots.items())
        },
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def _series_key(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", s.rpartition(":")[2]))


def _spec_order(spec: str) -> tuple[str, tuple[int, ...]]:
    """amd64 specs (bare series) first, then by flavour; by series within a flavour."""
    flavour = spec.rpartition(":")[0]
    return (flavour, _series_key(spec))


def _depends_names(depends: str) -> list[str]:
    return [alt.split()[0] for alt in re.split(r"[,|]", depends) if alt.strip()]


def resolve(apt: PrivateApt, series: str, flavour: Flavour = FLAVOURS["amd64"]) -> Pin:
    """The newest generic kernel of FLAVOUR and SERIES that comes with its modules."""
    generic = _generic(flavour)
    names = [
        n
        for n in apt.pkgnames(f"linux-image-{series}")
        if generic.fullmatch(n) and not any(x in n + "-" for x in _EXCLUDE)
    ]
    if not names:
        raise LookupError(f"no Debian {flavour.name} kernel package for series {series}")
    stanzas = parse_stanzas(apt.run("apt-cache", ["show", *names]))
    best: Pin | None = None
    for st in stanzas:
        ver = st.get("Version", "")
        if not ver.startswith(series + "."):
            continue
        abi = f"{generic.fullmatch(st['Package']).group(1)}-{flavour.name}"  # type: ignore[union-attr]
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
                for s in parse_stanzas(apt.run("apt-cache", ["show", *split]))
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
            best = Pin(series, abi, ver, pkgs, flavour.name)
    if best is None:
        raise LookupError(f"no generic {flavour.name} kernel with modules for series {series}")
    return best


def resolve_build(apt: PrivateApt, series: str, flavour: Flavour) -> Pin:
    """A built flavour: the newest linux-source-SERIES and the shipped fragment."""
    name, version, size, sha = kbuild.source_package(apt, series)
    return Pin(
        series,
        kbuild.abi(flavour, version),
        version,
        [Package(name, version, size, sha)],
        flavour.name,
        kbuild.fragment_sha256(flavour),
    )


@dataclass
class KernelTree:
    """A prepared kernel: where its files are and what it is."""

    root: Path
    abi: str
    series: str = ""
    version: str = ""
    flavour: str = "amd64"

    @property
    def arch(self) -> Arch:
        return FLAVOURS[self.flavour].arch

    @property
    def built(self) -> bool:
        return FLAVOURS[self.flavour].built

    @property
    def page_size(self) -> int:
        return FLAVOURS[self.flavour].page_size

    @property
    def label(self) -> str:
        """A name for its report folder: the series, prefixed by the flavour unless amd64."""
        name = self.series or self.abi
        return name if self.flavour == "amd64" else f"{self.flavour}-{name}"

    @property
    def has_modules(self) -> bool:
        return any((self.root / b / self.abi).is_dir() for b in ("lib/modules", "usr/lib/modules"))

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

    @property
    def image(self) -> Path:
        """What qemu boots: the ELF vmlinux (PVH entry) on amd64, the Image on arm64."""
        return self.vmlinux if self.arch.debian == "amd64" else self.root / kbuild.IMAGE_NAME


def extract(debs: list[Path], dest: Path) -> None:
    """dpkg -x every deb into DEST atomically (a half-extracted tree would be
    mistaken for a good one later)."""
    with replacing(dest) as tmp:
        for deb in debs:
            subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True)


def prepare(tree: KernelTree) -> None:
    """Make the tree bootable by us: an ELF vmlinux (amd64) or the Image under the name we
    boot (Debian's arm64 vmlinuz is an uncompressed Image), and a modules.dep."""
    from .image import extract_vmlinux

    if not tree.image.is_file():
        if tree.arch.debian == "amd64":
            extract_vmlinux(tree.vmlinuz, tree.vmlinux)
        else:
            tree.image.symlink_to(tree.vmlinuz.relative_to(tree.root))
    if not tree.has_modules:
        return  # a built kernel: everything it needs is built in
    mods = tree.modules_dir
    if not (mods / "modules.dep").is_file():
        # depmod -b BASE looks in BASE/lib/modules; 6.19+ packages use
        # usr/lib/modules (merged /usr), so give depmod the path it wants.
        if not (tree.root / "lib/modules").exists():
            (tree.root / "lib").mkdir(exist_ok=True)
            (tree.root / "lib/modules").symlink_to("../usr/lib/modules")
        subprocess.run(["depmod", "-b", str(tree.root), tree.abi], check=True)


class _Apts:
    """The private apt states of one fetch, one per Debian architecture; each updates its
    lists at most once (when a spec must be resolved, or when it has none yet)."""

    def __init__(self, root: Path, log) -> None:
        self.root, self.log = root, log
        self.states: dict[str, PrivateApt] = {}
        self.refreshed: set[str] = set()

    def get(self, arch: str, fresh: bool = False) -> PrivateApt:
        apt = self.states.setdefault(
            arch, PrivateApt(self.root / ("apt" if arch == "amd64" else f"apt-{arch}"), arch)
        )
        return self.update(apt, fresh)

    def update(self, apt: PrivateApt, fresh: bool) -> PrivateApt:
        key = str(apt.root)
        if key not in self.refreshed and (fresh or not apt.has_lists()):
            self.log(f"updating private package lists ({apt.arch}) ...")
            apt.update()
            self.refreshed.add(key)
        return apt


def fetch(
    specs: list[str],
    lock_path: Path = DEFAULT_LOCK,
    update_lock: bool = False,
    log=print,
) -> list[KernelTree]:
    """Download, extract (or build) and prepare the kernels of SPECS, pinned by the lock file
    when it names them, else resolved to the newest and added to it; and the guest root of
    each architecture that is not the host's."""
    root = cache_root()
    apts = _Apts(root, log)
    pins = read_lock(lock_path)
    trees: list[KernelTree] = []
    lock_changed = False
    for spec in specs:
        parsed = parse_spec(spec)
        if parsed is None:
            raise LookupError(unknown_spec_message(spec))
        flavour, series = parsed
        key = spec_key(flavour, series)
        pin = pins.get(key)
        stale = (
            pin is not None
            and flavour.built
            and pin.fragment_sha256 != kbuild.fragment_sha256(flavour)
        )
        if pin is None or update_lock or stale:
            apt = apts.get(flavour.arch.debian, fresh=True)
            pin = (
                resolve_build(apt, series, flavour)
                if flavour.built
                else resolve(apt, series, flavour)
            )
            pins[key] = pin
            write_lock(pins, lock_path)
            lock_changed = True
        tree = _tree(pin, flavour, apts, log)
        prepare(tree)
        if not native(flavour.arch):
            lock_changed |= fetch_root(flavour.arch, lock_path, update_lock, apts, log)[1]
        trees.append(tree)
    if lock_changed:
        log(f"lock file updated: {lock_path}")
    return trees


def _tree(pin: Pin, flavour: Flavour, apts: _Apts, log) -> KernelTree:
    """The cached tree of PIN, downloaded and extracted or built first when missing."""
    root = cache_root()
    tree_dir = root / "trees" / pin.abi
    meta = tree_dir / "mmapconf.json"
    tree = KernelTree(tree_dir, pin.abi, pin.series, pin.version, flavour.name)
    have = json.loads(meta.read_text()) if meta.is_file() else {}
    if (
        have.get("version") == pin.version
        and have.get("fragment_sha256", "") == pin.fragment_sha256
    ):
        log(f"{spec_key(flavour, pin.series)}: {pin.abi} ({pin.version}) already cached")
        return tree
    apt = apts.get(flavour.arch.debian)
    t0 = time.monotonic()
    debs = [_download(apt, root / "debs", p, log) for p in pin.packages]
    size = sum(d.stat().st_size for d in debs)
    t1 = time.monotonic()
    if flavour.built:
        kbuild.build(flavour, pin.series, pin.version, debs[0], tree_dir, root / "build", log)
        return tree
    extract(debs, tree_dir)
    log(
        f"{spec_key(flavour, pin.series)}: {pin.abi}: {size / 1e6:.0f} MB downloaded in "
        f"{t1 - t0:.1f} s, extracted in {time.monotonic() - t1:.1f} s"
    )
    facts = {"series": pin.series, "abi": pin.abi, "version": pin.version, "flavour": flavour.name}
    meta.write_text(json.dumps(facts, indent=2) + "\n")
    return tree


def fetch_root(
    arch: Arch, lock_path: Path = DEFAULT_LOCK, update_lock: bool = False, apts=None, log=print
) -> tuple[Path, bool]:
    """The unpacked guest root of ARCH (pinned in the lock file's roots; fetched and unpacked
    when not cached), and whether the lock file changed."""
    root = cache_root()
    apts = apts or _Apts(root, log)
    pins = read_root_pins(lock_path)
    # A root pinned before a package joined guestroot.PACKAGES is re-pinned.
    have = {p.name for p in pins.get(arch.debian, [])}
    changed = update_lock or not set(guestroot.PACKAGES) <= have
    if changed:
        apt = apts.update(guestroot.apt_for(root, arch), fresh=True)
        pins[arch.debian] = [Package(**p) for p in guestroot.resolve(apt)]  # type: ignore[arg-type]
        write_lock(read_lock(lock_path), lock_path, pins)
    packages = pins[arch.debian]
    dest = root / "roots" / f"{arch.debian}-{guestroot.pin_hash([asdict(p) for p in packages])}"
    if not (dest / "mmapconf.json").is_file():
        apt = apts.update(guestroot.apt_for(root, arch), fresh=False)
        log(f"guest root for {arch.debian}: {len(packages)} packages")
        debs = [_download(apt, root / "debs", p, log) for p in packages]
        meta = {"arch": arch.debian, "suite": guestroot.SUITE, "packages": len(packages)}
        guestroot.unpack(debs, dest, meta)
    return dest, changed


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
    trees = cache_root() / "trees"
    out = [_from_meta(m) for m in sorted(trees.glob("*/mmapconf.json"))] if trees.is_dir() else []
    return sorted(out, key=lambda t: (_series_key(t.series or t.abi), t.flavour, t.abi))


def _from_meta(meta: Path) -> KernelTree:
    d = json.loads(meta.read_text())
    return KernelTree(
        meta.parent, d["abi"], d.get("series", ""), d.get("version", ""), d.get("flavour", "amd64")
    )


def find(spec: str) -> KernelTree:
    """A kernel given as a spec (6.1, arm64-16k:6.12), an ABI (6.1.0-56-amd64) or a path to
    a tree or to a kernel image inside one."""
    p = Path(spec)
    if p.exists():
        d = p if p.is_dir() else p.parent
        for cand in (d, *d.parents):
            if (cand / "mmapconf.json").is_file():
                return _from_meta(cand / "mmapconf.json")
        raise FileNotFoundError(
            f"{spec}: not a prepared kernel tree (run `mmapconf kernels fetch`)"
        )
    trees = cached()
    exact = [t for t in trees if t.abi == spec]
    if exact:
        return exact[0]
    parsed = parse_spec(spec)
    if parsed is None:
        raise LookupError(unknown_spec_message(spec))
    flavour, series = parsed
    pin = read_lock().get(spec_key(flavour, series))
    match = [t for t in trees if t.abi == pin.abi] if pin else []
    match = match or [t for t in trees if t.series == series and t.flavour == flavour.name]
    if match:
        return match[-1]
    raise LookupError(f"kernel {spec!r} is not cached; run `mmapconf kernels fetch {spec}`")
