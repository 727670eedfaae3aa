#!/bin/sh
# CI set-up for the kernel tests (issue 7): the system packages and two pinned kernels, so
# tests/vm/test_vm_boot.py and tests/vm/test_vm_arm64_boot.py boot real guests instead of
# skipping: 6.1 (the smallest amd64 download, about 71 MB) and one short arm64 run's kernel,
# arm64-16k:6.12 (93 MB, with the arm64 guest root: 55 packages, 18 MB). The 64K kernel is not
# built here (about 10 CPU-minutes): its runs are reference runs (reports/reference/arches/).
# Where qemu cannot be installed, the boot tests skip and this exits 0.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-vm-deps.sh
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    python3 -m runner kernels fetch "${MMAPCONF_CI_KERNEL:-6.1}"
else
    echo "vm-ci-setup: no qemu; the kernel boot tests will skip"
fi
if command -v qemu-system-aarch64 >/dev/null 2>&1; then
    python3 -m runner kernels fetch "${MMAPCONF_CI_ARM64_KERNEL:-arm64-16k:6.12}"
else
    echo "vm-ci-setup: no qemu-system-aarch64; the arm64 boot test will skip"
fi
