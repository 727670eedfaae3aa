"""Run `mmapconf run ...` inside guests: one boot per kernel x filesystem.

Each guest gets a fresh scratch image formatted with the filesystem under
test, attached as /dev/vda and mounted at GUEST_DISK_DIR, which is passed to
the guest's run as `--dir`, so the `disk` backing is a real block-device
filesystem.  The guest writes report.json into the job dir (shared over 9p),
next to console.log, dmesg.txt and the command's stdout/stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.engine.native import build as native_build
from runner.errors import HostUnfit
from runner.lang.model import Case
from runner.report.model import build_report, counts_text, load_report, summarize, write_report
from runner.session.options import host_only_flags

from . import batch, guestroot, guestrun, initramfs, kconfig, kernels, qemu, vmreport
from .arch import AMD64, Arch, machine_of, native, parse_spec
from .durability import cut as durability_cut
from .durability import table as durability_table
from .target import KernelRefused, Target, check, resolve

GUEST_DISK_DIR = "/run/mmapconf/disk"
DISK_SIZE = 1 << 30  # sparse; mkfs.xfs wants >= 300 MB
MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}
# Our own per-guest options: a --dir or --report-dir from the caller would
# point the guest at host paths we do not mount writable.
_OWN_OPTIONS = host_only_flags()
# What the guest's command needs, and nothing else of the host's environment: cmd.sh sits in
# the report folder, which CI jobs upload.
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class VMUnavailable(HostUnfit):
    """The host cannot boot guests (no qemu, busybox, ...): exit status 2, with the reason."""

    def __init__(self, reason: str):
        super().__init__(f"cannot boot kernels here: {reason}")


def missing_tools(arch: Arch = AMD64) -> list[str]:
    missing = [] if qemu.qemu_binary(arch) else [arch.qemu]
    firmware = arch.machines[0].firmware
    if firmware and not Path(firmware).is_file():
        missing.append(firmware)
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


def guest_env() -> dict[str, str]:
    """The guest command's whole environment: built here, never copied from the host's."""
    pp = os.environ.get("PYTHONPATH", "")  # where the host's interpreter finds the packages
    return {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + GUEST_PATH,
        "LANG": "C.UTF-8",
        # The root is read-only in the guest: no bytecode, caches or $HOME writes.
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(PROJECT_ROOT) + (os.pathsep + pp if pp else ""),
        "TMPDIR": "/run/tmp",
        "HOME": "/run/tmp",
        "XDG_CACHE_HOME": "/run/tmp/.cache",
        "MMAPCONF_GUEST": "1",
    }


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


def job_dir(report_dir: Path, target: Target, fs: str, several_fs: bool) -> Path:
    label = target.label
    return report_dir / (f"{label}-{fs}" if several_fs else label)


def resolve_accel(accel: str | None, target: Target, initrd: Path) -> str:
    if accel not in (None, "", "auto", "tcg", "kvm"):
        raise ValueError(f"--accel must be tcg, kvm or auto, not {accel!r}")
    if not native(target.arch):
        if accel == "kvm":
            raise ValueError(f"--accel kvm cannot run {target.arch.debian} guests on this host")
        return "tcg"
    if accel in ("tcg", "kvm"):
        return accel
    ok = qemu.kvm_works(target.image, initrd, kernels.cache_root())
    return "kvm" if ok else "tcg"


@dataclass
class GuestSide:
    """What the guest runs from: the host's own root and interpreter, or for another
    architecture a guest root (with its busybox and python3) and the project shared in."""

    root: Path = Path("/")
    project: Path | None = None
    python: str = sys.executable
    busybox: Path | None = None


def guest_side(arch: Arch) -> GuestSide:
    if native(arch):
        return GuestSide()
    root, _ = kernels.fetch_root(arch)
    guestroot.precompile_project(PROJECT_ROOT, root)
    return GuestSide(root, PROJECT_ROOT, guestroot.PYTHON, root / "bin" / "busybox")


def run_one(
    target: Target,
    guest_argv: list[str],
    job: Path,
    fs: str,
    accel: str,
    timeout: float,
    log=print,
    machine: str = "microvm",
    runner: str = "native",
) -> Path | None:
    """Boot TARGET once (twice if the first boot brings no report back);
    returns the annotated report.json, or None. RUNNER: ``native`` runs the cases by the
    native executor's batch mode in a guest of this host's architecture (runner/vm/guestrun.py),
    ``python`` the whole harness in the guest."""
    side = guest_side(target.arch)
    initrd = initramfs.ensure(target, fs, machine, side.busybox)
    job = job.resolve()
    if job.exists():
        shutil.rmtree(job)
    job.mkdir(parents=True)
    argv = guest_command(guest_argv, job, fs, side.python)
    env = guest_env()
    in_batch = runs_batch(target.arch, runner)
    exe = guest_executor(target.arch, job)
    env["MMAPCONF_NATIVE_EXECUTOR"] = str(exe)
    if in_batch:  # the executor alone; the guest's part of run ARGV is the batch's
        qemu.write_cmd_script(job, batch.command(exe, job), Path("/"), {"PATH": GUEST_PATH})
    else:
        qemu.write_cmd_script(job, argv, Path.cwd(), env)
    report = job / "report.json"
    attempts: list[dict[str, Any]] = []
    specs = spec_maker(target, initrd, side, machine, accel)
    with tempfile.TemporaryDirectory(prefix="mmapconf-disk.") as d:
        for attempt in (1, 2):
            disk = make_disk(fs, Path(d)) if fs != "none" else None
            spec = specs(job, fs, disk=disk)
            if in_batch:
                r, _ = guestrun.run_batch(spec, argv[3:], timeout)  # argv[:3]: python -m runner
            else:
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
            log(f"  {target.label} {fs}: no report.json ({why}); console log kept in {kept}")
    if not report.is_file():
        vmreport.write_json(job / "vm-error.json", {"attempts": attempts})
        return None
    facts = vmreport.guest_facts(job)
    vm = {
        "series": target.facts.get("series", ""),
        "kernel_abi": target.release,
        "debian_version": target.facts.get("debian_version", ""),
        "kernel": _kernel_facts(target),
        "machine": machine,
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


def spec_maker(
    target: Target, initrd: Path, side: GuestSide, machine: str, accel: str
) -> Callable[..., qemu.GuestSpec]:
    """The GuestSpec of one boot of TARGET, given its job folder, filesystem and disks."""
    # The host's /tmp stays visible when the host root is shared and the project lives there.
    keep_tmp = side.project is None and any(
        _under_tmp(p) for p in (PROJECT_ROOT, sys.prefix, sys.base_prefix, Path.cwd())
    )
    tsc = qemu.host_tsc_khz() if accel == "tcg" else None

    def spec(job: Path, fs: str, **disks: Any) -> qemu.GuestSpec:
        return qemu.GuestSpec(
            target.image,
            initrd,
            job,
            fs=fs,
            machine=machine,
            acpi=target.facts.get("acpi", True),
            accel=accel,
            tmp_tmpfs=not keep_tmp,
            tsc_khz=tsc,
            arch=target.arch,
            root=side.root,
            project=side.project,
            **disks,
        )

    return spec


def run_power_cuts(
    target: Target,
    cases: list[Case],
    fs: str,
    accel: str,
    timeout: float,
    machine: str,
    keep: Path,
    options: durability_cut.Options,
) -> list[dict[str, Any]]:
    """Each power-cut case alone in its boots (runner/vm/durability): its results. The guest
    runs the native executor's batch, whatever ``--guest-runner`` says (the programs are
    compiled here: a guest of another architecture cannot run them)."""
    side = guest_side(target.arch)
    initrd = initramfs.ensure(target, fs, machine, side.busybox)

    def command(job: Path) -> None:
        exe = guest_executor(target.arch, job)
        qemu.write_cmd_script(job, batch.command(exe, job), Path("/"), {"PATH": GUEST_PATH})

    boots = durability_cut.Boots(
        spec_maker(target, initrd, side, machine, accel), command, keep, timeout, options
    )
    t0 = time.monotonic()
    results = durability_cut.run_cases(boots, cases, fs)
    took = time.monotonic() - t0
    for r in results:
        print(f"  {target.release} [{fs}] {r['name']}: {r['outcome']}")
        # the mean, judge boots being shared, so that the results add up to the run's time
        r["duration_s"] = round(took / len(results), 3)
    return results


def _add_results(job: Path, path: Path | None, results: list[dict[str, Any]], release: str) -> Path:
    """RESULTS added to the guest's report at PATH, or a report of their own in JOB."""
    if path is None:
        job.mkdir(parents=True, exist_ok=True)
        env: dict[str, Any] = {"kernel_release": release, "vm": {"kernel_issues": []}}
        report = build_report(env, results, sum(r.get("duration_s", 0) for r in results))
        return write_report(report, job / "report.json")
    report = load_report(path)
    report["results"] += results
    report["summary"] = summarize(report["results"], report["summary"].get("duration_s", 0))
    return write_report(report, path)


def _kernel_facts(target: Target) -> dict[str, Any]:
    """What the report says about the kernel: where it came from, what it is, and the options
    that matter to the guest and to the cases."""
    facts = {"label": target.label, "release": target.release, **target.facts}
    kind = "ELF, PVH entry" if target.elf else target.arch.image_target
    facts["booted"] = f"{target.image} ({kind})"
    if target.config is not None:
        facts["config"] = kconfig.relevant(target.config)
    return facts


def run_under_kernels(
    kernels_: list[str],
    guest_argv: list[str],
    report_dir: Path,
    fs: list[str],
    accel: str | None,
    timeout: float,
    modules: Path | None = None,
    machine: str | None = None,
    runner: str = "native",
    power_cuts: list[Case] | None = None,
    ordinary: bool = True,
    cut_options: durability_cut.Options | None = None,
) -> list[Path]:
    """Boot each kernel once per filesystem and run `mmapconf GUEST_ARGV` in it.

    Returns the report.json paths that came back (one per kernel x fs that
    worked); a failure is printed and left out, so fewer paths than
    len(kernels_) * len(fs) means an infrastructure error.  Raises
    VMUnavailable when this host cannot boot guests at all, KernelRefused (before any boot)
    when a kernel's config lacks what the guest needs.  MACHINE: None for each kernel's
    architecture's default (microvm on amd64, virt on arm64).  POWER_CUTS run after the
    ordinary cases (none of them when not ORDINARY), with CUT_OPTIONS (default: both disk
    models, cache=writeback).
    """
    missing = sorted({t for a in _arches(kernels_) for t in missing_tools(a)})
    if missing:
        raise VMUnavailable(
            "missing " + ", ".join(missing) + " (install with scripts/install-vm-deps.sh)"
        )
    fs = fs or ["ext4"]
    # Absolute: the guest mounts the job dir at this very path.
    report_dir = Path(report_dir).resolve()
    targets = [resolve(k, modules) for k in kernels_]
    missing = sorted({t for target in targets for t in missing_tools(target.arch)})
    if missing:  # a kernel given by path may be of another architecture
        raise VMUnavailable("missing " + ", ".join(missing) + " (scripts/install-vm-deps.sh)")
    boards = {t.label: _board(t, machine) for t in targets}
    for t in targets:  # every kernel is checked before the first boot
        check(t, boards[t.label], fs)
        if power_cuts and not native(t.arch):
            raise KernelRefused(
                f"kernel {t.label}: power-cut cases run in guests of this host's architecture "
                f"only (the guest runs programs compiled here), not {t.arch.debian}"
            )
    out: list[Path] = []
    for target in targets:
        board = boards[target.label]
        acc = resolve_accel(accel, target, _probe_initrd(target, board))
        for f in fs:
            job = job_dir(report_dir, target, f, len(fs) > 1)
            t0 = time.monotonic()
            path = None
            if ordinary:
                path = run_one(
                    target, guest_argv, job, f, acc, timeout, machine=board, runner=runner
                )
            if power_cuts and (path is not None or not ordinary):
                results = run_power_cuts(
                    target, power_cuts, f, acc, timeout, board, job,
                    cut_options or durability_cut.Options(),
                )  # fmt: skip
                path = _add_results(job, path, results, target.release)
            took = time.monotonic() - t0
            name = target.release
            if path is None:
                print(f"{name} [{f}, {acc}]: INFRASTRUCTURE ERROR after 2 boots ({job})")
                continue
            rep = load_report(path)
            issues = rep["environment"]["vm"]["kernel_issues"]
            print(
                f"{name} [{f}, {acc}]: {counts_text(rep)} "
                f"in {took:.1f} s -> {path}"
                + (f"\n  KERNEL ISSUES ({len(issues)}): " + "; ".join(issues[:5]) if issues else "")
            )
            out.append(path)
    if power_cuts:
        print(durability_table.write(out, report_dir), end="")
    return out


def runs_batch(arch: Arch, runner: str) -> bool:
    """Whether the guest runs the native executor's batch mode rather than the harness: on a
    guest of this host's architecture (the programs are compiled here, for this one), unless
    the whole harness was asked for (``--guest-runner python``)."""
    return runner == "native" and native(arch)


def guest_executor(arch: Arch, job: Path) -> Path:
    """The native executor for the guest, built here, statically (cached by source and
    compiler), copied into the job folder the guest sees: cross-built for another architecture
    (whose guest root has no compiler), and not compiled again under TCG for this one."""
    cc = None if native(arch) else [f"{arch.cross_compile}gcc"]
    if cc and shutil.which(cc[0]) is None:
        raise VMUnavailable(
            f"the native executor for {arch.debian} needs {cc[0]} (install-vm-deps.sh)"
        )
    built = native_build.executor_path(static=True, cc=cc)
    return Path(shutil.copy2(built, job / "mmapconf-exec"))


def _board(target: Target, machine: str | None) -> str:
    try:
        return machine_of(target.arch, machine).name
    except ValueError as e:
        raise KernelRefused(f"kernel {target.label}: {e}") from None


def _probe_initrd(target: Target, machine: str) -> Path:
    """The initramfs a KVM probe boots (none is needed for a guest of another architecture,
    which never runs under KVM here)."""
    return initramfs.ensure(target, "none", machine) if native(target.arch) else Path()


def _arches(specs: list[str]) -> list[Arch]:
    """The architectures of SPECS as far as their names tell (an ABI or a path: amd64; a path
    to another architecture's image is checked when it is resolved)."""
    return [p[0].arch if (p := parse_spec(s)) else AMD64 for s in specs]


def _summary_text(summary: Any) -> str:
    if not isinstance(summary, dict):
        return "no summary"
    counts = summary.get("counts", summary)
    parts = [f"{v} {k}" for k, v in counts.items() if isinstance(v, int) and v]
    return ", ".join(parts) or "nothing ran"
