#!/bin/sh
# Install the system packages that `mmapconf run --kernel` needs on the host:
# qemu (TCG boots of stock kernels), busybox-static (the guest's /init),
# kmod (depmod/modprobe to resolve module dependencies), cpio (initramfs),
# zstd/xz/lz4 (kernel payload and module decompression), the mkfs tools of
# the filesystems under test, and the keyring for the private apt state.
# Idempotent: does nothing when every package is already installed.
set -eu

PKGS="qemu-system-x86 busybox-static kmod cpio zstd xz-utils lz4 \
e2fsprogs xfsprogs btrfs-progs debian-archive-keyring apt dpkg"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-vm-deps: all present"
    exit 0
fi
# Where nothing can be installed, say so and leave the decision to the
# caller: `mmapconf run --kernel` then skips with a clear message.
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-vm-deps: no apt-get here; install by hand:$missing" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-vm-deps: not root and no sudo; install by hand:$missing" >&2
    exit 0
fi
echo "install-vm-deps: installing$missing"
$SUDO apt-get update -qq
# --no-install-recommends: qemu's recommends pull in a GUI stack we never use.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
