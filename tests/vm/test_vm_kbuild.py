"""runner/vm/kbuild.py end to end: Debian's linux-source package unpacked, allnoconfig plus a
fragment, the cross build, the tree it installs, and the Image booted under qemu to a
user-space init of our own that prints the page size and release the kernel runs with.

The fragment is tests/vm/data/kbuild-tiny.config, not the shipped arm64-64k.config: the
smallest kernel with 64K pages that reaches user space. The build path is the one the shipped
flavours take, but this test does not compile their options (9p, virtio, ext4, namespaces):
the reference runs in reports/reference/arches/ are what show those kernels work.

The build runs only when asked for (MMAPCONF_KBUILD_TEST=1: it costs several CPU-minutes, too
much for every test run and for CI's budget, which therefore does not run it), with the pinned
linux-source deb of arm64-64k:6.1 in the kernel cache (`mmapconf kernels build arm64-64k:6.1`
downloads it), the cross compiler and qemu-system-aarch64. The unpacked source and the build
tree stay in the cache, so a second run rebuilds nothing. The unpacking tests run always.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.vm import arch, image, initramfs, kbuild, kernels, qemu, run

TINY = Path(__file__).with_name("data") / "kbuild-tiny.config"
# CONFIGS / an absolute path is that path: the test flavour's fragment lies beside the test.
FLAVOUR = arch.Flavour("arm64-64k-tiny", arch.ARM64, 65536, fragment=str(TINY))
SOURCE_SPEC = "arm64-64k:6.1"
INIT_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(void) {
    struct utsname u;
    mkdir("/dev", 0755);
    mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    int fd = open("/dev/console", O_WRONLY);
    uname(&u);
    dprintf(fd, "kbuild-test: page=%ld release=%s machine=%s\n", sysconf(_SC_PAGESIZE),
            u.release, u.machine);
    reboot(RB_AUTOBOOT);
    return 0;
}
"""


def test_unpack_takes_the_tarball_whatever_its_member_names(
    tmp_path: Path, fake_deb: Callable[..., Path]
) -> None:
    src = tmp_path / "src"
    (src / "linux-source-9.9").mkdir(parents=True)
    (src / "linux-source-9.9/Makefile").write_text("# top\n")
    tarball = subprocess.run(
        ["tar", "-cJ", "-C", str(src), "linux-source-9.9"], capture_output=True, check=True
    ).stdout
    # dpkg-deb -b names the members ./usr/src/..., as Debian's linux-source-6.12 does.
    deb = fake_deb(tmp_path, "linux-source-9.9", {"usr/src/linux-source-9.9.tar.xz": tarball})
    got = kbuild.unpack_source(deb, "9.9", "9.9.1-1", tmp_path / "build", print)
    assert got == tmp_path / "build/linux-source-9.9.1-1/linux-source-9.9"
    assert (got / "Makefile").read_text() == "# top\n"
    assert sorted(p.name for p in got.parent.iterdir()) == [".unpacked", "linux-source-9.9"]


def test_a_deb_without_the_source_tarball_is_a_clear_error(
    tmp_path: Path, fake_deb: Callable[..., Path]
) -> None:
    deb = fake_deb(tmp_path, "linux-source-9.9", {"usr/share/doc/x": "x"})
    with pytest.raises(kbuild.KernelBuildError, match=r"has no usr/src/linux-source-9.9.tar.xz"):
        kbuild.unpack_source(deb, "9.9", "9.9.1-1", tmp_path / "build", print)
    assert list((tmp_path / "build").iterdir()) == []  # nothing half-unpacked left behind


def source_deb() -> tuple[str, Path]:
    """(Debian version, path) of the pinned linux-source deb in the cache, or a skip."""
    pin = kernels.read_lock()[SOURCE_SPEC]
    pkg = pin.packages[0]
    deb = kernels.cache_root() / "debs" / f"{pkg.name}_{pkg.version}_all.deb"
    if not deb.is_file():
        pytest.skip(f"{deb.name} not cached: mmapconf kernels build {SOURCE_SPEC}")
    return pin.version, deb


def initrd_with(init: Path, dest: Path) -> Path:
    c = initramfs.Cpio()
    c.file("init", init.read_bytes(), 0o755)
    dest.write_bytes(c.bytes())
    return dest


@pytest.mark.skipif(
    os.environ.get("MMAPCONF_KBUILD_TEST") != "1",
    reason="a real kernel build: MMAPCONF_KBUILD_TEST=1 runs it",
)
def test_built_kernel_boots_to_user_space_with_its_page_size(tmp_path: Path) -> None:
    missing = kbuild.missing_tools(FLAVOUR) + run.missing_tools(arch.ARM64)
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/install-vm-deps.sh)")
    version, deb = source_deb()
    tree = tmp_path / "tree"
    kbuild.build(FLAVOUR, "6.1", version, deb, tree, kernels.cache_root() / "build", print)
    release = kbuild.abi(FLAVOUR, version)
    assert release == f"{kbuild.upstream(version)}-arm64-64k-tiny"
    data = (tree / kbuild.IMAGE_NAME).read_bytes()
    assert image.is_arm64_image(data) and image.release(data) == release
    config = (tree / "boot" / f"config-{release}").read_text()
    assert kbuild.dropped(FLAVOUR, config) == []
    meta = json.loads((tree / "mmapconf.json").read_text())
    assert meta == {
        "series": "6.1",
        "abi": release,
        "version": version,
        "flavour": FLAVOUR.name,
        "fragment_sha256": kbuild.fragment_sha256(FLAVOUR),
    }
    cc = f"{arch.ARM64.cross_compile}gcc"
    (tmp_path / "init.c").write_text(INIT_C)
    init = tmp_path / "init"
    subprocess.run([cc, "-static", "-O", "-o", str(init), str(tmp_path / "init.c")], check=True)
    job = tmp_path / "job"
    job.mkdir()
    spec = qemu.GuestSpec(
        tree / kbuild.IMAGE_NAME,
        initrd_with(init, tmp_path / "initrd.cpio"),
        job,
        arch=arch.ARM64,
        root=job,
        smp=1,
        memory="256M",
    )
    result = qemu.boot(spec, timeout=300)
    console = result.console.read_text(errors="replace")
    assert not result.timed_out, console[-2000:]
    assert f"kbuild-test: page=65536 release={release} machine=aarch64" in console, console
    shutil.rmtree(job)
