"""baselines/probes/guest.py, the way the baseline's evidence is gathered in a booted kernel: a
probe of our own reports the page size, the filesystem of its argument and its arguments, and
exits with a status of its own; the script must boot the kernel given, give the probe its
scratch disk, pass the arguments and hand back what it printed and its exit status.

The boots (about 20 s each under TCG) are skipped when qemu, the compiler or a cached kernel
is missing; CI caches 6.1 and arm64-16k:6.12 (scripts/vm-ci-setup.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.vm import arch, kernels, run

SCRIPT = run.PROJECT_ROOT / "baselines/probes/guest.py"
EXT4_MAGIC = 0xEF53
PROBE_C = r"""
#include <stdio.h>
#include <sys/vfs.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct statfs s;
    if (argc < 3 || statfs(argv[1], &s) != 0) return 99;
    printf("page=%ld fs=%#lx arg2=%s\n", sysconf(_SC_PAGESIZE), (long)s.f_type, argv[2]);
    fprintf(stderr, "to stderr\n");
    return 7;
}
"""


def guest_py(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(run.PROJECT_ROOT)},
        timeout=900,
    )


def build_probe(tmp_path: Path, cc: str) -> Path:
    if shutil.which(cc) is None:
        pytest.skip(f"no {cc} (scripts/install-vm-deps.sh)")
    src, exe = tmp_path / "probe.c", tmp_path / f"probe-{cc}"
    src.write_text(PROBE_C)
    subprocess.run([cc, "-static", "-O", "-o", str(exe), str(src)], check=True)
    return exe


def cached_spec(flavour: str, series: str) -> str:
    spec = series if flavour == "amd64" else f"{flavour}:{series}"
    if not any(t.flavour == flavour and t.series == series for t in kernels.cached()):
        pytest.skip(f"{spec} not cached: mmapconf kernels fetch {spec}")
    return spec


@pytest.mark.parametrize(
    ("flavour", "series", "cc"),
    [("amd64", "6.1", "cc"), ("arm64-16k", "6.12", "aarch64-linux-gnu-gcc")],
)
def test_probe_runs_in_the_kernel_with_its_disk(
    tmp_path: Path, flavour: str, series: str, cc: str
) -> None:
    f = arch.FLAVOURS[flavour]
    if run.missing_tools(f.arch):
        pytest.skip(f"no {f.arch.qemu} or busybox (scripts/install-vm-deps.sh)")
    spec = cached_spec(flavour, series)
    probe = build_probe(tmp_path, cc)
    p = guest_py("--fs", "ext4", spec, str(probe), run.GUEST_DISK_DIR, "-x y")
    assert p.returncode == 7, p.stderr
    assert p.stdout.splitlines() == [
        f"page={f.page_size} fs={EXT4_MAGIC:#x} arg2=-x y",
        "to stderr",
    ], p.stdout


def test_probe_of_another_architecture_is_refused_before_a_boot(tmp_path: Path) -> None:
    spec = cached_spec("amd64", "6.1")
    probe = build_probe(tmp_path, "aarch64-linux-gnu-gcc")
    p = guest_py(spec, str(probe))
    assert p.returncode == 2
    assert p.stderr.strip() == f"guest.py: {probe}: not an x86_64 binary (the kernel is amd64)"


def test_unknown_kernel_and_missing_probe_exit_2(tmp_path: Path) -> None:
    p = guest_py("9.9", "/bin/true")
    assert p.returncode == 2 and "--kernel 9.9: no such file" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    spec = cached_spec("amd64", "6.1")
    missing = tmp_path / "absent"
    p = guest_py(spec, str(missing))
    assert (p.returncode, p.stderr.strip()) == (
        2,
        f"guest.py: {missing}: No such file or directory",
    )
