"""Turn a bzImage (vmlinuz) into the ELF vmlinux inside it.

qemu boots an ELF vmlinux through its PVH entry point (CONFIG_PVH=y in every
Debian kernel); that skips the in-guest decompressor, which costs 0.3-0.6 s
under TCG and cannot run at all under the PVM flavour of KVM.
"""

from __future__ import annotations

import gzip
import lzma
import os
import struct
import subprocess
import tempfile
from pathlib import Path

# Magic bytes of the compressors the kernel build supports.
_MAGIC = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
    b"\x02\x21\x4c\x18": "lz4",  # lz4 legacy frame, as the kernel writes it
    b"\x1f\x8b\x08": "gzip",
}


def payload(bz: bytes) -> tuple[str, bytes]:
    """(compressor, compressed payload) of a bzImage, from its boot header."""
    if bz[0x202:0x206] != b"HdrS":
        raise ValueError("not a bzImage (no HdrS boot header)")
    setup_sects = bz[0x1F1] or 4
    off, length = struct.unpack_from("<II", bz, 0x248)
    start = (setup_sects + 1) * 512 + off
    data = bz[start : start + length]
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            # The build appends the decompressed size (4 bytes LE); the
            # stand-alone decompressors call it trailing garbage.
            return kind, data[:-4]
    raise ValueError(f"unknown kernel payload compression (starts {data[:6].hex()})")


def decompress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.decompress(data)
    if kind == "xz":
        return lzma.LZMADecompressor().decompress(data)
    tool = {"zstd": ["zstd", "-dcq"], "lz4": ["lz4", "-dcq"]}[kind]
    p = subprocess.run(tool, input=data, capture_output=True)
    if not p.stdout.startswith(b"\x7fELF"):
        raise RuntimeError(f"{tool[0]} failed: {p.stderr.decode(errors='replace')[-500:]}")
    return p.stdout


def extract_vmlinux(vmlinuz: Path, out: Path) -> None:
    kind, data = payload(vmlinuz.read_bytes())
    elf = decompress(kind, data)
    if not elf.startswith(b"\x7fELF"):
        raise RuntimeError(f"{vmlinuz}: {kind} payload is not an ELF file")
    # Write then rename, so an interrupted run never leaves a truncated kernel.
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", dir=out.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(elf)
    os.replace(tmp, out)
