"""The qemu command line, one guest boot with a timeout, and the KVM probe.

Why these choices (measured, see shared/research/kernels.md):
- microvm + qboot + PVH boot of the ELF vmlinux: ~2.5 s per boot under TCG,
  no BIOS, no PCI probing, no in-guest decompressor;
- TCG by default: /dev/kvm may be a PVM "nested" KVM that aborts on
  `-cpu host` (MSR 0x10a) or cannot emulate stock kernels, so KVM is used
  only after a probe boot worked;
- tsc=reliable tsc_early_khz=: under TCG the PIT calibration sometimes fails
  and 6.1 then hangs at boot; without tsc=reliable the clocksource falls back
  to jiffies (4 ms resolution);
- arm64 (arch.py): qemu's virt board, virtio over PCI, the uncompressed Image
  booted as it is, a guest root of that architecture with the project as a
  second read-only 9p share.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from runner.lang.ops import DISK_CACHES

from .arch import AMD64, Arch, machine_of


def qemu_binary(arch: Arch = AMD64) -> str | None:
    return shutil.which(arch.qemu)


def host_tsc_khz() -> int | None:
    """The host TSC frequency in kHz (the guest's TSC runs at the host's)."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5).stdout
        m = re.search(r"tsc: Refined TSC clocksource calibration: ([\d.]+) MHz", out) or re.search(
            r"tsc: Detected ([\d.]+) MHz", out
        )
        if m:
            return int(float(m.group(1)) * 1000)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text(), re.M)
        return int(float(m.group(1)) * 1000) if m else None
    except OSError:
        return None


@dataclass
class GuestSpec:
    """Everything one boot needs."""

    kernel: Path  # what qemu boots: an ELF vmlinux or a bzImage (amd64), an Image (arm64)
    initrd: Path
    job: Path
    fs: str = "none"  # filesystem of `disk`, or "none" for no scratch disk
    machine: str | None = None  # None: the architecture's default (amd64: microvm, or q35)
    acpi: bool = True  # False: microvm without ACPI lists its virtio-mmio devices on the cmdline
    disk: Path | None = None
    accel: str = "tcg"
    memory: str = "1G"
    smp: int = 2
    tmp_tmpfs: bool = True
    tsc_khz: int | None = None
    extra_append: list[str] = field(default_factory=list)
    arch: Arch = AMD64
    root: Path = Path("/")  # shared read-only as the guest's root
    project: Path | None = None  # shared read-only at its path, when ROOT does not hold it
    # Power cuts (runner/vm/durability): DISK through qemu's blklogwrites filter into this log,
    # with this cache mode; more disks attached read-only (snapshot=on) after it.
    disk_log: Path | None = None
    disk_cache: str = "writeback"
    more_disks: list[Path] = field(default_factory=list)


def kernel_append(spec: GuestSpec) -> str:
    args = [
        f"console={spec.arch.console}",
        # Console shows warnings and worse; dmesg.txt has everything.
        "loglevel=4",
        "panic=-1",  # a panic reboots, and -no-reboot turns that into an exit
        "rdinit=/init",
        f"mmapconf.job={spec.job}",
        f"mmapconf.fs={spec.fs}",
        f"mmapconf.tmp={1 if spec.tmp_tmpfs else 0}",
    ]
    if spec.project is not None:
        args.append(f"mmapconf.project={spec.project}")
    if spec.disk is None and spec.more_disks:  # a judge boot: the batch mounts each disk
        args.append("mmapconf.mount=0")
    if spec.accel == "tcg" and spec.arch.x86_tsc:
        args.append("tsc=reliable")
        if spec.tsc_khz:
            args.append(f"tsc_early_khz={spec.tsc_khz}")
    args += spec.extra_append
    line = " ".join(args)
    if len(line) > 2000:
        # The x86 command line is 2048 bytes; the command itself goes in a file.
        raise ValueError(f"kernel command line too long ({len(line)} bytes): job path too long?")
    return line


def _machine(spec: GuestSpec) -> tuple[list[str], str]:
    """The -M (and firmware) arguments, and the suffix of the virtio device names."""
    m = machine_of(spec.arch, spec.machine)
    board = m.board + ("" if spec.acpi else m.noacpi)
    return ["-M", board, *(["-bios", m.firmware] if m.firmware else [])], m.virtio


def _share(tag: str, path: Path, bus: str, readonly: bool) -> list[str]:
    ro = ",readonly=on" if readonly else ""
    return [
        "-fsdev", f"local,id={tag},path={path},security_model=none{ro},multidevs=remap",
        "-device", f"virtio-9p-{bus},fsdev={tag},mount_tag={tag}",
    ]  # fmt: skip


def command(spec: GuestSpec, qemu: str | None = None) -> list[str]:
    """The qemu argv for SPEC; what differs between architectures comes from spec.arch."""
    if spec.accel == "kvm":
        accel = ["-accel", "kvm", "-cpu", "host"]
    else:
        accel = ["-accel", "tcg,thread=multi", "-cpu", spec.arch.cpu]
    machine, bus = _machine(spec)
    cmd = [
        qemu or spec.arch.qemu,
        *machine,
        *accel,
        "-m", spec.memory,
        "-smp", str(spec.smp),
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-vga", "none", "-net", "none", "-serial", "stdio", "-monitor", "none",
        # The root, read-only (qemu enforces it): the host's own (the guest runs the host's
        # interpreter and project checkout at the same paths), or a guest root of another
        # architecture with the project as a second share.
        *_share("hostroot", spec.root, bus, readonly=True),
        *(_share("project", spec.project, bus, True) if spec.project is not None else []),
        *_share("job", spec.job, bus, readonly=False),
    ]  # fmt: skip
    if spec.disk is not None and spec.disk_log is not None:
        cmd += _logged_disk(spec, bus)
    elif spec.disk is not None:
        cmd += [
            "-drive", f"file={spec.disk},if=none,id=disk0,format=raw",
            "-device", f"virtio-blk-{bus},drive=disk0",
        ]  # fmt: skip
    for i, extra in enumerate(spec.more_disks, start=1):
        cmd += [
            "-drive", f"file={extra},if=none,id=disk{i},format=raw,snapshot=on",
            "-device", f"virtio-blk-{bus},drive=disk{i}",
        ]  # fmt: skip
    cmd += [
        "-kernel",
        str(spec.kernel),
        "-initrd",
        str(spec.initrd),
        "-append",
        kernel_append(spec),
    ]
    return cmd


def _logged_disk(spec: GuestSpec, bus: str) -> list[str]:
    """The scratch disk through blklogwrites, which logs every write and flush it completes.
    cache=unsafe would drop the guest's flushes before the filter sees them: refused."""
    if spec.disk_cache not in DISK_CACHES:
        raise ValueError(f"disk cache {spec.disk_cache!r}: {', '.join(DISK_CACHES)}")
    return [
        "-drive",
        f"if=none,id=disk0,driver=blklogwrites,cache={spec.disk_cache},"
        f"file.driver=file,file.filename={spec.disk},log.driver=file,log.filename={spec.disk_log}",
        "-device",
        f"virtio-blk-{bus},drive=disk0",
    ]


def write_cmd_script(job: Path, argv: list[str], cwd: Path, env: dict[str, str]) -> Path:
    """JOB/cmd.sh: run ARGV in CWD with ENV, output into the job dir.  The
    command travels in a file because the kernel command line is limited."""
    lines = ["#!/bin/sh", "# written by mmapconf; run chrooted in the guest by /init"]
    for k, v in sorted(env.items()):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            lines.append(f"export {k}={shlex.quote(v)}")
    lines.append(f"cd {shlex.quote(str(cwd))} || exit 125")
    out, err = (shlex.quote(str(job / n)) for n in ("stdout.txt", "stderr.txt"))
    lines.append(f"exec {shlex.join(argv)} >{out} 2>{err}")
    path = job / "cmd.sh"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class BootResult:
    exit_status: int | None  # None: the guest never reported one
    wall_s: float
    timed_out: bool
    console: Path
    qemu_rc: int | None


def boot(spec: GuestSpec, timeout: float, qemu: str | None = None) -> BootResult:
    """Boot once; kill qemu (its whole process group) at TIMEOUT seconds."""
    with Guest(spec, qemu) as guest:
        return guest.wait(timeout)


class Guest:
    """One running guest (qemu in a session of its own), for a caller that works with the
    guest while it runs (runner/vm/guestrun.py); leaving the block kills what still runs."""

    def __init__(self, spec: GuestSpec, qemu: str | None = None):
        qemu = qemu or qemu_binary(spec.arch) or spec.arch.qemu
        self.job = spec.job
        self.console = spec.job / "console.log"
        (spec.job / "exit-status").unlink(missing_ok=True)
        self.t0 = time.monotonic()
        with open(self.console, "wb") as out:
            self.proc = subprocess.Popen(
                command(spec, qemu),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def __enter__(self) -> Guest:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def wait(self, timeout: float) -> BootResult:
        """Until qemu exits, at most TIMEOUT seconds after it started (then it is killed)."""
        timed_out = False
        try:
            rc: int | None = self.proc.wait(timeout=max(0.0, self.t0 + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            rc = None
        except BaseException:
            self.kill()
            raise
        wall = time.monotonic() - self.t0
        try:
            exit_status: int | None = int((self.job / "exit-status").read_text().strip())
        except (OSError, ValueError):
            exit_status = None
        return BootResult(exit_status, wall, timed_out, self.console, rc)


def _probe_key() -> str:
    qemu = qemu_binary() or ""
    return f"{platform.release()}|{qemu}|{os.path.getmtime(qemu) if qemu else 0}"


def kvm_works(vmlinux: Path, initrd: Path, cache: Path, timeout: float = 10.0) -> bool:
    """Whether a stock kernel boots under KVM here; cached per host kernel and
    qemu binary since a failing probe can cost its whole timeout."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cache_file = cache / "kvm-probe.json"
    key = _probe_key()
    try:
        data = json.loads(cache_file.read_text())
        if data.get("key") == key:
            return bool(data["works"])
    except (OSError, ValueError, KeyError):
        pass
    with tempfile.TemporaryDirectory(prefix="mmapconf-kvm-probe.") as d:
        job = Path(d)
        write_cmd_script(job, ["/bin/true"], Path("/"), {"PATH": "/usr/bin:/bin"})
        r = boot(GuestSpec(vmlinux, initrd, job, accel="kvm", smp=1), timeout)
        works = r.exit_status == 0
    cache.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(
        json.dumps({"key": key, "works": works, "wall_s": round(r.wall_s, 2)}) + "\n"
    )
    return works
