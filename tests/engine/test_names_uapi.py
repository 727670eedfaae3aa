"""The name tables checked against the kernel's UAPI headers, for x86_64 and aarch64.

A C file lists every fixed name of the tables (and the si_codes); the architecture's compiler
evaluates each one the headers define, and the values are read back from the object file, so
the check does not depend on our parsing of the headers.  The headers are the toolchain's
(linux-libc-dev, and linux-libc-dev-arm64-cross for aarch64); names newer than those headers
are listed as absent, and MMAPCONF_UAPI_INCLUDE=DIR (an unpacked newer linux-libc-dev's
usr/include) checks them too.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from runner.lang import names

TOOLCHAINS = {
    "x86_64": ("x86_64-linux-gnu", "gcc", "objcopy"),
    "aarch64": ("aarch64-linux-gnu", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objcopy"),
}
HEADERS = (
    "linux/mman.h",
    "linux/memfd.h",
    "linux/fcntl.h",
    "asm/siginfo.h",
    "linux/falloc.h",
    "linux/userfaultfd.h",
)


def wanted(machine: str) -> dict[str, int]:
    table = {n: v for t in names.tables_for(machine).values() for n, v in t.items()}
    for codes in names.SI_CODE.values():
        table.update(codes)
    return table


def header_values(machine: str, tmp_path: Path, table: dict[str, int]) -> dict[str, int | None]:
    """What the headers say each name of TABLE is (None: not defined there)."""
    triplet, cc, objcopy = TOOLCHAINS[machine]
    if shutil.which(cc) is None or shutil.which(objcopy) is None:
        pytest.skip(f"no {cc} (scripts/install-vm-deps.sh installs the arm64 cross compiler)")
    lines = [f"#include <{h}>" for h in HEADERS]
    lines.append('const long long v[][2] __attribute__((section(".mmapconf"))) = {')
    for name in table:
        lines += [f"#ifdef {name}", f"{{1, (long long)({name})}},", "#else", "{0, 0},", "#endif"]
    lines.append("};")
    src, obj, out = tmp_path / "n.c", tmp_path / "n.o", tmp_path / "n.bin"
    src.write_text("\n".join(lines) + "\n")
    extra = os.environ.get("MMAPCONF_UAPI_INCLUDE")
    inc = ["-I", f"{extra}/{triplet}", "-I", extra] if extra else []
    subprocess.run([cc, *inc, "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
    subprocess.run(
        [objcopy, "-O", "binary", "--only-section=.mmapconf", str(obj), str(out)], check=True
    )
    data = out.read_bytes()
    pairs = struct.iter_unpack("<qq", data)
    return {n: (v if d else None) for n, (d, v) in zip(table, pairs, strict=True)}


@pytest.mark.parametrize("machine", sorted(TOOLCHAINS))
def test_tables_match_the_uapi_headers(machine: str, tmp_path: Path) -> None:
    table = wanted(machine)
    got = header_values(machine, tmp_path, table)
    wrong = {n: (v, got[n]) for n, v in table.items() if got[n] is not None and got[n] != v}
    assert not wrong, f"{machine}: table value != header value: {wrong}"
    absent = sorted(n for n, v in got.items() if v is None)
    print(
        f"{machine}: {len(table) - len(absent)} names checked; absent from these headers:", absent
    )
    # Most names are old enough for any header set; those that are not are newer than it.
    assert len(absent) < len(table) // 4


@pytest.mark.parametrize("machine", sorted(TOOLCHAINS))
def test_each_architecture_defines_its_own_names_and_not_the_others(
    machine: str, tmp_path: Path
) -> None:
    own = {n for t in names.ARCH_ONLY[machine].values() for n in t}
    others = {n for m, f in names.ARCH_ONLY.items() if m != machine for t in f.values() for n in t}
    got = header_values(machine, tmp_path, {n: 0 for n in sorted(own | others)})
    assert {n for n in own if got[n] is None} == set(), f"{machine} headers lack its own names"
    assert {n for n in others if got[n] is not None} == set(), f"{machine} defines others' names"
