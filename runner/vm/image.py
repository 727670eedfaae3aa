"""Kernel images: the ELF vmlinux inside a bzImage, the release a kernel names itself by, its
PVH note, and the configuration it carries (CONFIG_IKCONFIG).

qemu boots an ELF vmlinux through its PVH entry point (CONFIG_PVH=y in every Debian kernel);
that skips the in-guest decompressor, which costs 0.3-0.6 s under TCG and cannot run at all
under the PVM flavour of KVM. A kernel without the note is booted as the bzImage it is.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import struct
import subprocess
import zlib
from pathlib import Path

from runner.report.atomic import write_bytes

# Magic bytes of the compressors the kernel build supports.
_MAGIC = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
    b"\x02\x21\x4c\x18": "lz4",  # lz4 legacy frame, as the kernel writes it
    b"\x1f\x8b\x08": "gzip",
    b"BZh": "bzip2",
    b"\x5d\x00\x00": "lzma",
    b"\x89LZO": "lzo",
}
ELF_MAGIC = b"\x7fELF"
_PT_NOTE = 4
_XEN_ELFNOTE_PHYS32_ENTRY = 18  # the PVH entry point (include/xen/interface/elfnote.h)
_BANNER = re.compile(rb"Linux version (\S+) \(")


def is_bzimage(data: bytes) -> bool:
    return data[0x202:0x206] == b"HdrS"


def is_arm64_image(data: bytes) -> bool:
    """An arm64 kernel Image, which qemu boots as it is (Documentation/arch/arm64/booting.rst:
    the magic "ARM\\x64" at offset 0x38 of its header)."""
    return data[0x38:0x3C] == b"ARM\x64"


def payload(bz: bytes) -> tuple[str, bytes]:
    """(compressor, compressed payload) of a bzImage, from its boot header."""
    if not is_bzimage(bz):
        raise ValueError("not a bzImage (no HdrS boot header)")
    setup_sects = bz[0x1F1] or 4
    off, length = struct.unpack_from("<II", bz, 0x248)
    start = (setup_sects + 1) * 512 + off
    data = bz[start : start + length]
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            # scripts/Makefile.lib appends the decompressed size (4 bytes LE) to every payload
            # but gzip's, whose own trailer holds it; the stand-alone tools call it garbage.
            return kind, data if kind == "gzip" else data[:-4]
    raise ValueError(f"unknown kernel payload compression (starts {data[:6].hex()})")


def decompress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31).decompress(data)  # stops at the stream's end
    if kind == "xz":
        return lzma.LZMADecompressor().decompress(data)
    if kind == "lzma":
        return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(data)
    if kind == "bzip2":
        return bz2.BZ2Decompressor().decompress(data)
    tool = {"zstd": ["zstd", "-dcq"], "lz4": ["lz4", "-dcq"], "lzo": ["lzop", "-dcq"]}[kind]
    try:
        p = subprocess.run(tool, input=data, capture_output=True)
    except FileNotFoundError:
        raise RuntimeError(f"{tool[0]} is needed to unpack this kernel; install it") from None
    if not p.stdout.startswith(ELF_MAGIC):
        raise RuntimeError(f"{tool[0]} failed: {p.stderr.decode(errors='replace')[-500:]}")
    return p.stdout


def elf_of(image: bytes) -> bytes:
    """The ELF kernel: the image itself, or the payload of a bzImage."""
    if image.startswith(ELF_MAGIC):
        return image
    kind, data = payload(image)
    elf = decompress(kind, data)
    if not elf.startswith(ELF_MAGIC):
        raise RuntimeError(f"the {kind} payload is not an ELF file")
    return elf


def extract_vmlinux(vmlinuz: Path, out: Path) -> None:
    write_bytes(out, elf_of(vmlinuz.read_bytes()))  # atomic: never a truncated kernel


def release(image: bytes) -> str | None:
    """The release (`uname -r`) a kernel image names itself by: the bzImage header's version
    string, else the linux_banner in the ELF."""
    if is_bzimage(image):
        (ptr,) = struct.unpack_from("<H", image, 0x20E)
        if ptr:
            text = image[ptr + 0x200 : ptr + 0x400].split(b"\0")[0]
            if text.split():
                return text.split()[0].decode(errors="replace")
        image = elf_of(image)
    m = _BANNER.search(image)
    return m.group(1).decode(errors="replace") if m else None


def has_pvh_note(elf: bytes) -> bool:
    """Whether an ELF64 kernel has the Xen PHYS32_ENTRY note qemu boots through (CONFIG_PVH)."""
    if not elf.startswith(ELF_MAGIC) or elf[4] != 2:
        return False
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", elf, 0x20)[0],
        *struct.unpack_from("<HH", elf, 0x36),
    )
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize
        )
        if p_type == _PT_NOTE and _notes_have(elf[p_offset : p_offset + p_filesz]):
            return True
    return False


def _notes_have(notes: bytes) -> bool:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        name = notes[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
        if name == b"Xen" and ntype == _XEN_ELFNOTE_PHYS32_ENTRY:
            return True
        pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def embedded_config(elf: bytes) -> str | None:
    """The .config a kernel built with CONFIG_IKCONFIG carries (between IKCFG_ST and IKCFG_ED)."""
    start = elf.find(b"IKCFG_ST")
    end = elf.find(b"IKCFG_ED", start)
    if start < 0 or end < 0:
        return None
    try:
        return gzip.decompress(elf[start + 8 : end]).decode(errors="replace")
    except (OSError, EOFError, zlib.error):
        return None
