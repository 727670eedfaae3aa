#!/bin/sh
# The system packages that `mmapconf run --kernel` needs on the host: qemu (TCG boots of stock
# kernels), busybox-static (the guest's /init), kmod (depmod/modprobe to resolve module
# dependencies), cpio (initramfs), zstd/xz/lz4 (kernel payload and module decompression), the
# mkfs tools of the filesystems under test, and the keyring for the private apt state.
exec sh "$(dirname "$0")/apt-install.sh" install-vm-deps qemu-system-x86 busybox-static kmod \
    cpio zstd xz-utils lz4 e2fsprogs xfsprogs btrfs-progs debian-archive-keyring apt dpkg
