#!/bin/sh
# CI set-up for the kernel tests (issue 7): the system packages and one
# pinned kernel, so tests/vm/test_vm_boot.py boots a real guest instead of
# skipping. 6.1 is the smallest download of the four (about 71 MB).
# Where qemu cannot be installed, the boot tests skip and this exits 0.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-vm-deps.sh
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    python3 -m runner kernels fetch "${MMAPCONF_CI_KERNEL:-6.1}"
else
    echo "vm-ci-setup: no qemu; the kernel boot tests will skip"
fi
