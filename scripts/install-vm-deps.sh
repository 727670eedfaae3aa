#!/bin/sh
# The system packages that `mmapconf run --kernel` needs on the host: qemu (TCG boots of stock
# kernels; qemu-system-arm brings qemu-system-aarch64 for the arm64 guests), busybox-static (the
# guest's /init), kmod (depmod/modprobe to resolve module dependencies), cpio (initramfs),
# zstd/xz/lz4 (kernel payload and module decompression), the mkfs tools of the filesystems under
# test, the keyring for the private apt state, and for `mmapconf kernels build arm64-64k:6.1`
# the arm64 cross compiler (also the aarch64 UAPI headers the name-table test reads) and the
# kernel build's own tools; qemu-utils for qemu-io, which writes the blklogwrites logs that
# tests/durability/test_writelog.py reads.
exec sh "$(dirname "$0")/apt-install.sh" install-vm-deps qemu-system-x86 qemu-system-arm qemu-utils \
    busybox-static kmod cpio zstd xz-utils lz4 e2fsprogs xfsprogs btrfs-progs \
    debian-archive-keyring apt dpkg gcc-aarch64-linux-gnu make bc flex bison libssl-dev \
    libelf-dev
