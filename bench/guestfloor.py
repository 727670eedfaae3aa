"""What a case costs at the least in a qemu guest (TCG here): bench/guest/floor.c, static, as the
guest's only command, booted as ``mmapconf run --kernel`` boots its guests (same kernel, initramfs,
machine and accelerator). It times a fork + wait, the shape of every case's confinement (an init
in a new PID and mount namespace with /proc mounted, forking the case's process) and one
max_map_count case's loop (one-page mappings until ENOMEM, then the process's exit); the boot's
wall time less the program's is the boot. With the catalogue's item count these give the floor
of the catalogue's wall time in a guest, below any executor.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from runner.lang.loader import load_suite
from runner.lang.powercut import is_power_cut
from runner.session.runner import RunConfig, Runner
from runner.vm import initramfs, qemu
from runner.vm.run import GUEST_PATH, guest_side, resolve_accel, spec_maker
from runner.vm.target import resolve

SOURCE = Path(__file__).with_name("guest") / "floor.c"
BOOT_TIMEOUT_S = 900.0


@dataclass
class GuestFloor:
    wall_s: float  # the whole boot, qemu's start to its end
    figures: dict[str, tuple[float, int]] = field(default_factory=dict)  # name: (s, count)
    problem: str = ""

    @property
    def program_s(self) -> float:
        return sum(
            s * (1 if name == "map_until_full" else n) for name, (s, n) in self.figures.items()
        )


def measure(kernel: str, count: int = 200) -> GuestFloor:
    target = resolve(kernel, None)
    side = guest_side(target.arch)
    initrd = initramfs.ensure(target, "none", "microvm", side.busybox)
    accel = resolve_accel(None, target, initrd)
    with tempfile.TemporaryDirectory(prefix="mmapconf-bench-guestfloor-") as tmp:
        job = Path(tmp)
        exe = job / "floor"
        subprocess.run(["cc", "-O2", "-static", "-o", str(exe), str(SOURCE)], check=True)
        qemu.write_cmd_script(job, [str(exe), str(count)], Path("/"), {"PATH": GUEST_PATH})
        spec = spec_maker(target, initrd, side, "microvm", accel)(job, "none", disk=None)
        r = qemu.boot(spec, BOOT_TIMEOUT_S)
        floor = GuestFloor(r.wall_s)
        out = (job / "stdout.txt").read_text() if (job / "stdout.txt").exists() else ""
        for line in out.splitlines():
            name, seconds, n = line.split()
            floor.figures[name] = (float(seconds), int(n))
        if r.exit_status != 0 or len(floor.figures) != 3:
            err = (job / "stderr.txt").read_text() if (job / "stderr.txt").exists() else ""
            floor.problem = f"exit status {r.exit_status}, timed out {r.timed_out}: {err[:200]}"
    return floor


def section(paths: list[str], kernel: str) -> None:
    """The guest floor's figures, and what they make the catalogue's floor in a guest: one boot
    for the batch and one more for each power-cut case (each runs alone in boots of its own, a
    cut boot and its judge boots), each item's case shape, the max_map_count loops."""
    print(f"\n## floor in a guest: bench/guest/floor.c under --kernel {kernel} (boot included)")
    f = measure(kernel)
    if f.problem:
        print(f"not measured: {f.problem}")
        return
    boot = f.wall_s - f.program_s
    shape, _ = f.figures["case_shape"]
    loop, maps = f.figures["map_until_full"]
    suite = load_suite(paths)
    cuts = sum(is_power_cut(c) for c in suite.cases)
    items = len(Runner(RunConfig()).plan(suite))
    print(
        f"boot {boot:.1f} s; fork + wait {f.figures['fork_wait'][0] * 1e3:.1f} ms; a case's "
        f"namespaces, /proc and fork {shape * 1e3:.1f} ms; one max_map_count loop "
        f"({maps} mappings and their teardown) {loop:.1f} s"
    )
    floor = boot * (1 + cuts) + (items * shape + 2 * loop) / 2
    print(
        f"the catalogue's floor: {1 + cuts} boots (the batch, {cuts} power-cut cases) x "
        f"{boot:.1f} s + ({items} items x {shape * 1e3:.1f} ms + 2 loops x {loop:.1f} s) "
        f"/ 2 lanes = {floor:.1f} s (target 30 s)"
    )
