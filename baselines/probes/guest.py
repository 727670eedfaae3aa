"""Run one probe binary inside a kernel under qemu:

    python baselines/probes/guest.py [--fs ext4] KERNEL PROBE [ARG...]

KERNEL is what `mmapconf run --kernel` takes (6.12, arm64-16k:6.12, an ABI or a path). The
guest is a fresh machine: a probe may change /sys there (a sysctl, shmem_enabled) without
touching the host. A guest of another architecture runs the probe in its guest root, so build
it statically with that architecture's compiler (aarch64-linux-gnu-gcc -static). With --fs the
guest has a scratch disk of that filesystem at /run/mmapconf/disk. Prints the probe's stdout and
stderr, and exits with its status (exit 2: unusable arguments or host, 1: no status came back).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from runner.errors import EXIT_FAILED, EXIT_USAGE, UsageError
from runner.vm import initramfs, qemu
from runner.vm.arch import Arch, machine_of
from runner.vm.run import (
    GUEST_DISK_DIR,
    GUEST_PATH,
    MKFS,
    guest_side,
    make_disk,
    missing_tools,
    spec_maker,
)
from runner.vm.target import Target, check, resolve

# ELF e_machine of each guest architecture (uname -m), so a probe built for another one is
# refused before a boot rather than failing in the guest with "Exec format error".
_ELF_MACHINE = {"x86_64": 62, "aarch64": 183}
TIMEOUT_S = 300


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="guest.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--fs", choices=sorted(MKFS), help=f"a scratch disk of this filesystem at {GUEST_DISK_DIR}"
    )
    p.add_argument("kernel", help="6.12, arm64-16k:6.12, an ABI or a path")
    p.add_argument("probe", type=Path, help="the probe binary")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the probe's arguments")
    return p.parse_args(argv)


def probe_problem(probe: Path, arch: Arch) -> str:
    """Why PROBE cannot run in a guest of ARCH ('' when it can, as far as its header tells)."""
    try:
        head = probe.read_bytes()[:20]
    except OSError as e:
        return f"{probe}: {e.strerror}"
    if head[:4] != b"\x7fELF":
        return f"{probe}: not an ELF binary"
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    if machine != _ELF_MACHINE.get(arch.machine):
        return f"{probe}: not an {arch.machine} binary (the kernel is {arch.debian})"
    return ""


def run_probe(target: Target, probe: Path, args: list[str], fs: str | None) -> int:
    """Boot TARGET once with PROBE ARGS as the guest's command; print what it wrote."""
    fs_name = fs or "none"
    machine = machine_of(target.arch, None).name
    check(target, machine, [fs] if fs else [])
    side = guest_side(target.arch)
    initrd = initramfs.ensure(target, fs_name, machine, side.busybox)
    # Under /tmp: the guest mounts a fresh tmpfs there, where /init can make the job folder's
    # mount point whatever the root (an arm64 guest root has no /var/tmp).
    with tempfile.TemporaryDirectory(prefix="probe-guest.", dir="/tmp") as d:
        job, scratch = Path(d, "job"), Path(d, "scratch")
        job.mkdir()
        scratch.mkdir()
        exe = job / probe.name
        shutil.copy(probe, exe)
        qemu.write_cmd_script(job, [str(exe), *args], job, {"PATH": GUEST_PATH})
        disk = make_disk(fs, scratch) if fs else None
        spec = spec_maker(target, initrd, side, machine, "tcg")(job, fs_name, disk=disk)
        result = qemu.boot(spec, timeout=TIMEOUT_S)
        for name in ("stdout.txt", "stderr.txt"):
            if (job / name).exists():
                sys.stdout.write((job / name).read_text())
        if result.exit_status is None:
            why = "timed out" if result.timed_out else f"qemu exit {result.qemu_rc}"
            print(f"guest.py: no exit status from the guest ({why})", file=sys.stderr)
            return EXIT_FAILED
        return result.exit_status


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    try:
        target = resolve(a.kernel, None)
        missing = missing_tools(target.arch)
        if missing:
            raise UsageError(f"missing {', '.join(missing)} (scripts/install-vm-deps.sh)")
        problem = probe_problem(a.probe, target.arch)
        if problem:
            raise UsageError(problem)
        return run_probe(target, a.probe, a.args, a.fs)
    except UsageError as e:
        print(f"guest.py: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
