"""Run `mmapconf run ...` inside guests: one boot per kernel x filesystem.

Each guest gets a fresh scratch image formatted with the filesystem under
test, attached as /dev/vda and mounted at GUEST_DISK_DIR, which is passed to
the guest's run as `--dir`, so the `disk` backing is a real block-device
filesystem.  The guest writes report.json into the job dir (shared over 9p),
next to console.log, dmesg.txt and the command's stdout/stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import guestroot, initramfs, kernels, qemu, vmreport
from .arch import AMD64, Arch, native, parse_spec, spec_key

GUEST_DISK_DIR = "/run/mmapconf/disk"
DISK_SIZE = 1 << 30  # sparse; mkfs.xfs wants >= 300 MB
MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}
# Our own per-guest options: a --dir or --report-dir from the caller would
# point the guest at host paths we do not mount writable.
_OWN_OPTIONS = ("--dir", "--report-dir", "--kernel", "--fs", "--accel", "--vm-timeout")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class VMUnavailable(RuntimeError):
    """The host cannot boot guests (no qemu, busybox, ...): a clean skip."""


def missing_tools(arch: Arch = AMD64) -> list[str]:
    missing = [] if qemu.qemu_binary(arch) else [arch.qemu]
    if arch.firmware and not Path(arch.firmware).is_file():
        missing.append(arch.firmware)
    return missing + initramfs.have_tools()


def strip_own_options(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in _OWN_OPTIONS:
            skip = True
        elif not a.startswith(tuple(o + "=" for o in _OWN_OPTIONS)):
            out.append(a)
    return out


def guest_command(
    guest_argv: list[str], job: Path, fs: str, python: str = sys.executable
) -> list[str]:
    """The argv run inside the guest.  sys.executable is used as it is: it is
    the interpreter running now (a pyenv shim would cost +3 s under TCG, and
    resolving a venv's symlink would lose the venv's site-packages); a guest
    of another architecture runs its root's python3."""
    argv = [python, "-m", "runner", *strip_own_options(guest_argv)]
    if fs != "none":
        argv += ["--dir", GUEST_DISK_DIR]
    return argv + ["--report-dir", str(job)]


def guest_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for k in ("PYTHONHOME", "VIRTUAL_ENV_PROMPT", "PS1", "PROMPT_COMMAND", "TMP", "TEMP"):
        env.pop(k, None)
    pp = env.get("PYTHONPATH", "")
    env.update(
        {
            # The root is read-only in the guest: no bytecode, caches or $HOME writes.
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(PROJECT_ROOT) + (os.pathsep + pp if pp else ""),
            "TMPDIR": "/run/tmp",
            "HOME": "/run/tmp",
            "XDG_CACHE_HOME": "/run/tmp/.cache",
            "MMAPCONF_GUEST": "1",
        }
    )
    return env


def _under_tmp(p: Path | str) -> bool:
    return Path(p).resolve().is_relative_to("/tmp")


def make_disk(fs: str, directory: Path) -> Path:
    if fs not in MKFS:
        raise ValueError(f"unknown filesystem {fs!r} (known: {', '.join(MKFS)})")
    if shutil.which(MKFS[fs][0]) is None and not Path("/sbin", MKFS[fs][0]).exists():
        raise VMUnavailable(f"{MKFS[fs][0]} not installed (scripts/install-vm-deps.sh)")
    img = directory / f"disk-{fs}.img"
    with open(img, "wb") as f:
        f.truncate(DISK_SIZE)
    subprocess.run([*MKFS[fs], str(img)], check=True, capture_output=True)
    return img


def job_dir(report_dir: Path, tree: kernels.KernelTree, fs: str, several_fs: bool) -> Path:
    return report_dir / (f"{tree.label}-{fs}" if several_fs else tree.label)


def resolve_accel(accel: str | None, tree: kernels.KernelTree) -> str:
    if accel not in (None, "", "auto", "tcg", "kvm"):
        raise ValueError(f"--accel must be tcg, kvm or auto, not {accel!r}")
    if not native(tree.arch):
        if accel == "kvm":
            raise ValueError(f"--accel kvm cannot run {tree.arch.debian} guests on this host")
        return "tcg"
    if accel in ("tcg", "kvm"):
        return accel
    ok = qemu.kvm_works(tree.image, initramfs.ensure(tree), kernels.cache_root())
    return "kvm" if ok else "tcg"


@dataclass
class GuestSide:
    """What the guest runs from: the host's own root and interpreter, or for another
    architecture a guest root (with its busybox and python3) and the project shared in."""

    root: Path = Path("/")
    project: Path | None = None
    python: str = sys.executable
    busybox: Path | None = None


def guest_side(tree: kernels.KernelTree) -> GuestSide:
    if native(tree.arch):
        return GuestSide()
    root, _ = kernels.fetch_root(tree.arch)
    guestroot.precompile_project(PROJECT_ROOT, root)
    return GuestSide(root, PROJECT_ROOT, guestroot.PYTHON, root / "bin" / "busybox")


def run_one(
    tree: kernels.KernelTree,
    guest_argv: list[str],
    job: Path,
    fs: str,
    accel: str,
    timeout: float,
    log=print,
) -> Path | None:
    """Boot TREE once (twice if the first boot brings no report back);
    returns the annotated report.json, or None."""
    side = guest_side(tree)
    initrd = initramfs.ensure(tree, fs, side.busybox)
    job = job.resolve()
    if job.exists():
        shutil.rmtree(job)
    job.mkdir(parents=True)
    argv = guest_command(guest_argv, job, fs, side.python)
    qemu.write_cmd_script(job, argv, Path.cwd(), guest_env())
    # The host's /tmp stays visible when the host root is shared and the project lives there.
    keep_tmp = side.project is None and any(
        _under_tmp(p) for p in (PROJECT_ROOT, sys.prefix, sys.base_prefix, Path.cwd())
    )
    report = job / "report.json"
    attempts: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mmapconf-disk.") as d:
        for attempt in (1, 2):
            disk = make_disk(fs, Path(d)) if fs != "none" else None
            spec = qemu.GuestSpec(
                tree.image,
                initrd,
                job,
                fs=fs,
                disk=disk,
                accel=accel,
                tmp_tmpfs=not keep_tmp,
                tsc_khz=qemu.host_tsc_khz() if accel == "tcg" else None,
                arch=tree.arch,
                root=side.root,
                project=side.project,
            )
            r = qemu.boot(spec, timeout)
            attempts.append(
                {
                    "wall_s": round(r.wall_s, 2),
                    "exit_status": r.exit_status,
                    "timed_out": r.timed_out,
                    "qemu_rc": r.qemu_rc,
                }
            )
            if report.is_file():
                break
            # Infrastructure error: keep this attempt's console log and retry once.
            why = "timed out" if r.timed_out else f"exit status {r.exit_status}"
            kept = job / f"console.attempt{attempt}.log"
            r.console.rename(kept)
            log(f"  {tree.abi} {fs}: no report.json ({why}); console log kept in {kept}")
    if not report.is_file():
        vmreport.write_json_atomic(job / "vm-error.json", {"attempts": attempts})
        return None
    facts = vmreport.guest_facts(job)
    vm = {
        "series": tree.series,
        "kernel_abi": tree.abi,
        "flavour": tree.flavour,
        "debian_version": tree.version,
        "accel": accel,
        "fs": fs,
        "disk": f"/dev/vda ({fs}) at {GUEST_DISK_DIR}" if fs != "none" else None,
        "wall_s": attempts[-1]["wall_s"],
        "attempts": attempts,
        **facts,
        "console_log": "console.log",
        "dmesg": "dmesg.txt",
    }
    vmreport.annotate(report, vm)
    return report


def run_under_kernels(
    kernels_: list[str],
    guest_argv: list[str],
    report_dir: Path,
    fs: list[str],
    accel: str | None,
    timeout: float,
) -> list[Path]:
    """Boot each kernel once per filesystem and run `mmapconf GUEST_ARGV` in it.

    Returns the report.json paths that came back (one per kernel x fs that
    worked); a failure is printed and left out, so fewer paths than
    len(kernels_) * len(fs) means an infrastructure error.  Raises
    VMUnavailable when this host cannot boot guests at all.
    """
    missing = sorted({t for a in _arches(kernels_) for t in missing_tools(a)})
    if missing:
        # Worded to follow "cannot boot kernels here: " (how callers print it).
        raise VMUnavailable(
            "missing " + ", ".join(missing) + " (install with scripts/install-vm-deps.sh)"
        )
    fs = fs or ["ext4"]
    # Absolute: the guest mounts the job dir at this very path.
    report_dir = Path(report_dir).resolve()
    trees = [_find_or_fetch(k) for k in kernels_]
    out: list[Path] = []
    for tree in trees:
        acc = resolve_accel(accel, tree)
        for f in fs:
            job = job_dir(report_dir, tree, f, len(fs) > 1)
            t0 = time.monotonic()
            path = run_one(tree, guest_argv, job, f, acc, timeout)
            took = time.monotonic() - t0
            if path is None:
                print(f"{tree.abi} [{f}, {acc}]: INFRASTRUCTURE ERROR after 2 boots ({job})")
                continue
            rep = json.loads(path.read_text())
            issues = rep["environment"]["vm"]["kernel_issues"]
            print(
                f"{tree.abi} [{f}, {acc}]: {_summary_text(rep.get('summary'))} "
                f"in {took:.1f} s -> {path}"
                + (f"\n  KERNEL ISSUES ({len(issues)}): " + "; ".join(issues[:5]) if issues else "")
            )
            out.append(path)
    return out


def _summary_text(summary: Any) -> str:
    if not isinstance(summary, dict):
        return "no summary"
    counts = summary.get("counts", summary)
    parts = [f"{v} {k}" for k, v in counts.items() if isinstance(v, int) and v]
    return ", ".join(parts) or "nothing ran"


def _arches(specs: list[str]) -> list[Arch]:
    """The architectures of SPECS, as far as their names tell (an ABI or a path: amd64)."""
    return [p[0].arch if (p := parse_spec(s)) else AMD64 for s in specs]


def _find_or_fetch(spec: str) -> kernels.KernelTree:
    try:
        return kernels.find(spec)
    except LookupError:
        parsed = parse_spec(spec)
        if parsed is None or spec_key(*parsed) not in kernels.read_lock():
            raise
    print(f"kernel {spec} is pinned in the lock file but not cached: fetching it")
    return kernels.fetch([spec])[0]
