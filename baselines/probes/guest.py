"""Run one probe binary inside a cached kernel under qemu: python baselines/probes/guest.py
SERIES BINARY [ARG...]. The guest is a fresh machine: a probe may change /sys there (a sysctl,
shmem_enabled) without touching the host. Prints the probe's stdout and stderr."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from runner.vm import initramfs, kernels, qemu


def main(series: str, argv: list[str]) -> int:
    tree = kernels.find(series)
    initrd = initramfs.ensure(tree, "none")
    with tempfile.TemporaryDirectory(prefix="probe-guest.", dir="/var/tmp") as d:
        job = Path(d)
        exe = job / Path(argv[0]).name
        shutil.copy(argv[0], exe)
        qemu.write_cmd_script(job, [str(exe), *argv[1:]], job, {"PATH": "/usr/bin:/bin"})
        spec = qemu.GuestSpec(tree.vmlinux, initrd, job, tsc_khz=qemu.host_tsc_khz())
        result = qemu.boot(spec, timeout=300)
        for name in ("stdout.txt", "stderr.txt"):
            if (job / name).exists():
                sys.stdout.write((job / name).read_text())
        return 1 if result.exit_status is None else result.exit_status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
