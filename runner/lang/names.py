"""Name tables: the symbolic names a case may use, with their values on this architecture.

Values come from the kernel's UAPI headers (asm-generic/mman-common.h, asm-generic/mman.h,
linux/mman.h, linux/memfd.h, linux/fcntl.h, asm-generic/siginfo.h); x86_64 and aarch64 share them
except where ``ARCH_ONLY`` says. Open flags, errno and signal numbers are taken from Python's
own modules, which are built for the running architecture.
"""

from __future__ import annotations

import errno as _errno
import fcntl as _fcntl
import os
import platform
import resource as _resource
import signal as _signal

ARCH = platform.machine()

PROT = {
    "PROT_NONE": 0x0,
    "PROT_READ": 0x1,
    "PROT_WRITE": 0x2,
    "PROT_EXEC": 0x4,
    "PROT_SEM": 0x8,
    "PROT_GROWSDOWN": 0x01000000,
    "PROT_GROWSUP": 0x02000000,
}

MAP = {
    "MAP_SHARED": 0x01,
    "MAP_PRIVATE": 0x02,
    "MAP_SHARED_VALIDATE": 0x03,
    "MAP_DROPPABLE": 0x08,
    "MAP_FIXED": 0x10,
    "MAP_ANONYMOUS": 0x20,
    "MAP_ANON": 0x20,
    "MAP_GROWSDOWN": 0x0100,
    "MAP_DENYWRITE": 0x0800,
    "MAP_EXECUTABLE": 0x1000,
    "MAP_LOCKED": 0x2000,
    "MAP_NORESERVE": 0x4000,
    "MAP_POPULATE": 0x8000,
    "MAP_NONBLOCK": 0x10000,
    "MAP_STACK": 0x20000,
    "MAP_HUGETLB": 0x40000,
    "MAP_SYNC": 0x80000,
    "MAP_FIXED_NOREPLACE": 0x100000,
    "MAP_UNINITIALIZED": 0x4000000,
    "MAP_HUGE_2MB": 21 << 26,
    "MAP_HUGE_1GB": 30 << 26,
}

MS = {"MS_ASYNC": 1, "MS_INVALIDATE": 2, "MS_SYNC": 4}

MADV = {
    "MADV_NORMAL": 0,
    "MADV_RANDOM": 1,
    "MADV_SEQUENTIAL": 2,
    "MADV_WILLNEED": 3,
    "MADV_DONTNEED": 4,
    "MADV_FREE": 8,
    "MADV_REMOVE": 9,
    "MADV_DONTFORK": 10,
    "MADV_DOFORK": 11,
    "MADV_MERGEABLE": 12,
    "MADV_UNMERGEABLE": 13,
    "MADV_HUGEPAGE": 14,
    "MADV_NOHUGEPAGE": 15,
    "MADV_DONTDUMP": 16,
    "MADV_DODUMP": 17,
    "MADV_WIPEONFORK": 18,
    "MADV_KEEPONFORK": 19,
    "MADV_COLD": 20,
    "MADV_PAGEOUT": 21,
    "MADV_POPULATE_READ": 22,
    "MADV_POPULATE_WRITE": 23,
    "MADV_DONTNEED_LOCKED": 24,
    "MADV_COLLAPSE": 25,
    "MADV_HWPOISON": 100,
    "MADV_SOFT_OFFLINE": 101,
    "MADV_GUARD_INSTALL": 102,
    "MADV_GUARD_REMOVE": 103,
}

MREMAP = {"MREMAP_MAYMOVE": 1, "MREMAP_FIXED": 2, "MREMAP_DONTUNMAP": 4}

MLOCK = {"MLOCK_ONFAULT": 1}

MCL = {"MCL_CURRENT": 1, "MCL_FUTURE": 2, "MCL_ONFAULT": 4}

MFD = {
    "MFD_CLOEXEC": 0x1,
    "MFD_ALLOW_SEALING": 0x2,
    "MFD_HUGETLB": 0x4,
    "MFD_NOEXEC_SEAL": 0x8,
    "MFD_EXEC": 0x10,
}

F_SEAL = {
    "F_SEAL_SEAL": 0x1,
    "F_SEAL_SHRINK": 0x2,
    "F_SEAL_GROW": 0x4,
    "F_SEAL_WRITE": 0x8,
    "F_SEAL_FUTURE_WRITE": 0x10,
    "F_SEAL_EXEC": 0x20,
}

# fallocate(2) modes (include/uapi/linux/falloc.h); 0 allocates
FALLOC = {
    "FALLOC_FL_KEEP_SIZE": 0x01,
    "FALLOC_FL_PUNCH_HOLE": 0x02,
    "FALLOC_FL_COLLAPSE_RANGE": 0x08,
    "FALLOC_FL_ZERO_RANGE": 0x10,
    "FALLOC_FL_INSERT_RANGE": 0x20,
    "FALLOC_FL_UNSHARE_RANGE": 0x40,
}

# userfaultfd(2) (include/uapi/linux/userfaultfd.h): register modes, and the events uffd_read sees
UFFDIO_REGISTER_MODE = {
    "UFFDIO_REGISTER_MODE_MISSING": 0x1,
    "UFFDIO_REGISTER_MODE_WP": 0x2,
    "UFFDIO_REGISTER_MODE_MINOR": 0x4,
}
UFFD_EVENT = {
    "UFFD_EVENT_PAGEFAULT": 0x12,
    "UFFD_EVENT_FORK": 0x13,
    "UFFD_EVENT_REMAP": 0x14,
    "UFFD_EVENT_REMOVE": 0x15,
    "UFFD_EVENT_UNMAP": 0x16,
}

O_FLAGS = {name: getattr(os, name) for name in dir(os) if name.startswith("O_")}

RLIMIT = {n: getattr(_resource, n) for n in dir(_resource) if n.startswith("RLIMIT_")}

FCNTL = {n: getattr(_fcntl, n) for n in dir(_fcntl) if n.startswith("F_") and "SEAL_" not in n}

EFD = {n: getattr(os, n) for n in ("EFD_CLOEXEC", "EFD_NONBLOCK", "EFD_SEMAPHORE")}

POSIX_MADV = {
    "POSIX_MADV_NORMAL": 0,
    "POSIX_MADV_RANDOM": 1,
    "POSIX_MADV_SEQUENTIAL": 2,
    "POSIX_MADV_WILLNEED": 3,
    "POSIX_MADV_DONTNEED": 4,
}

POSIX_FADV = {n: getattr(os, n) for n in dir(os) if n.startswith("POSIX_FADV_")}

# Inode flags the harness sets for a case (provision.files; include/uapi/linux/fs.h).
FS_FL = {
    "FS_SYNC_FL": 0x00000008,
    "FS_IMMUTABLE_FL": 0x00000010,
    "FS_APPEND_FL": 0x00000020,
    "FS_NODUMP_FL": 0x00000040,
    "FS_NOATIME_FL": 0x00000080,
}

# sync_file_range(2) flags (include/uapi/linux/fs.h)
SYNC_FILE_RANGE = {
    "SYNC_FILE_RANGE_WAIT_BEFORE": 1,
    "SYNC_FILE_RANGE_WRITE": 2,
    "SYNC_FILE_RANGE_WAIT_AFTER": 4,
    "SYNC_FILE_RANGE_WRITE_AND_WAIT": 7,
}

# forms (issue 18): splice(2)/vmsplice(2) flags, lseek(2) whence, the prctl(2) options the
# language offers (and their second arguments), FIDEDUPERANGE's per-range status
SPLICE_F = {"SPLICE_F_MOVE": 1, "SPLICE_F_NONBLOCK": 2, "SPLICE_F_MORE": 4, "SPLICE_F_GIFT": 8}
SEEK = {"SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2, "SEEK_DATA": 3, "SEEK_HOLE": 4}
PR = {
    "PR_SET_THP_DISABLE": 41,
    "PR_GET_THP_DISABLE": 42,
    "PR_SET_MDWE": 65,
    "PR_GET_MDWE": 66,
    "PR_SET_VMA": 0x53564D41,
    "PR_SET_VMA_ANON_NAME": 0,
    "PR_MDWE_REFUSE_EXEC_GAIN": 1,
    "PR_MDWE_NO_INHERIT": 2,
}
# the options a prctl step may pass (the executor refuses any other: PR_SET_DUMPABLE would let a
# crash reach the machine's core_pattern helper)
PRCTL_OPTIONS = frozenset(
    PR[n]
    for n in (
        "PR_SET_THP_DISABLE",
        "PR_GET_THP_DISABLE",
        "PR_SET_MDWE",
        "PR_GET_MDWE",
        "PR_SET_VMA",
    )
)
FILE_DEDUPE_RANGE = {"FILE_DEDUPE_RANGE_SAME": 0, "FILE_DEDUPE_RANGE_DIFFERS": 1}

ARCH_ONLY = {
    "x86_64": {"MAP": {"MAP_32BIT": 0x40}},
    "aarch64": {"PROT": {"PROT_BTI": 0x10, "PROT_MTE": 0x20}},
}
# The fixed tables as the UAPI headers define them on every architecture, before this one's own
# names are added (tests check them against each architecture's headers).
SHARED_TABLES: dict[str, dict[str, int]] = {
    family: dict(table)
    for family, table in (
        ("PROT", PROT),
        ("MAP", MAP),
        ("MS", MS),
        ("MADV", MADV),
        ("MREMAP", MREMAP),
        ("MLOCK", MLOCK),
        ("MCL", MCL),
        ("MFD", MFD),
        ("F_SEAL", F_SEAL),
        ("FALLOC", FALLOC),
        ("UFFDIO_REGISTER_MODE", UFFDIO_REGISTER_MODE),
        ("UFFD_EVENT", UFFD_EVENT),
        ("SPLICE_F", SPLICE_F),
        ("SEEK", SEEK),
        ("PR", PR),
        ("FILE_DEDUPE_RANGE", FILE_DEDUPE_RANGE),
    )
}
for _family, _extra in ARCH_ONLY.get(ARCH, {}).items():
    globals()[_family].update(_extra)

FLAG_FAMILIES: dict[str, dict[str, int]] = {
    "PROT": PROT,
    "MAP": MAP,
    "MS": MS,
    "MADV": MADV,
    "MREMAP": MREMAP,
    "MLOCK": MLOCK,
    "MCL": MCL,
    "MFD": MFD,
    "F_SEAL": F_SEAL,
    "O": O_FLAGS,
    "RLIMIT": RLIMIT,
    "F": FCNTL,
    "EFD": EFD,
    "POSIX_MADV": POSIX_MADV,
    "POSIX_FADV": POSIX_FADV,
    "FS_FL": FS_FL,
    "FALLOC": FALLOC,
    "UFFDIO_REGISTER_MODE": UFFDIO_REGISTER_MODE,
    "UFFD_EVENT": UFFD_EVENT,
    "SYNC_FILE_RANGE": SYNC_FILE_RANGE,
    "SPLICE_F": SPLICE_F,
    "SEEK": SEEK,
    "PR": PR,
    "FILE_DEDUPE_RANGE": FILE_DEDUPE_RANGE,
}
ALL_FLAGS: dict[str, int] = {n: v for table in FLAG_FAMILIES.values() for n, v in table.items()}

ERRNO: dict[str, int] = {name: num for num, name in _errno.errorcode.items()}
for _alias in ("EWOULDBLOCK", "EDEADLOCK", "ENOTSUP", "EOPNOTSUPP"):
    if hasattr(_errno, _alias):
        ERRNO[_alias] = getattr(_errno, _alias)
ERRNO_NAME: dict[int, str] = dict(_errno.errorcode)
# Where two names share a number, reports use the one the man pages of this family use.
for _preferred in ("EOPNOTSUPP", "EAGAIN", "EDEADLK"):
    if hasattr(_errno, _preferred):
        ERRNO_NAME[getattr(_errno, _preferred)] = _preferred

SIGNAL: dict[str, int] = {s.name: int(s) for s in _signal.Signals}
SIGNAL_NAME: dict[int, str] = {int(s): s.name for s in _signal.Signals}

SI_CODE: dict[str, dict[str, int]] = {
    "SIGSEGV": {
        "SEGV_MAPERR": 1,
        "SEGV_ACCERR": 2,
        "SEGV_BNDERR": 3,
        "SEGV_PKUERR": 4,
        "SEGV_ACCADI": 5,
        "SEGV_ADIDERR": 6,
        "SEGV_ADIPERR": 7,
        "SEGV_MTEAERR": 8,
        "SEGV_MTESERR": 9,
        "SEGV_CPERR": 10,
    },
    "SIGBUS": {
        "BUS_ADRALN": 1,
        "BUS_ADRERR": 2,
        "BUS_OBJERR": 3,
        "BUS_MCEERR_AR": 4,
        "BUS_MCEERR_AO": 5,
    },
}
GENERIC_SI_CODE = {"SI_USER": 0, "SI_KERNEL": 0x80, "SI_QUEUE": -1, "SI_TKILL": -6}
ALL_SI_CODES = {n for table in SI_CODE.values() for n in table} | set(GENERIC_SI_CODE)


def si_code_name(signal_name: str, code: int) -> str:
    """The symbolic name of si_code ``code`` for a signal, or the number as text."""
    for name, value in SI_CODE.get(signal_name, {}).items():
        if value == code:
            return name
    for name, value in GENERIC_SI_CODE.items():
        if value == code:
            return name
    return str(code)


def si_code_value(signal_name: str, code_name: str) -> int | None:
    table = SI_CODE.get(signal_name, {})
    if code_name in table:
        return table[code_name]
    return GENERIC_SI_CODE.get(code_name)


# families whose values are choices, not bits to combine
ENUM_FAMILIES = frozenset(
    {"MADV", "RLIMIT", "F", "POSIX_MADV", "POSIX_FADV", "SEEK", "FILE_DEDUPE_RANGE"}
)
# second names of a value, or masks: a value is shown by its first name
_ALIASES = frozenset(
    {"MAP_ANON", "MAP_FILE", "O_ACCMODE", "O_FSYNC", "O_NDELAY", "O_RSYNC"}
    | {n for n, v in O_FLAGS.items() if v == 0 and n != "O_RDONLY"}  # O_LARGEFILE on 64-bit
)


def flag_text(family: str, value: int) -> str:
    """``value`` in the names of ``family``: ``PROT_READ|PROT_WRITE``, ``MADV_DONTNEED``; the
    bits no name covers in hex, and the number itself where no name fits."""
    table = {n: v for n, v in FLAG_FAMILIES[family].items() if n not in _ALIASES}
    exact = [n for n, v in table.items() if v == value]
    if exact or family in ENUM_FAMILIES or value <= 0:
        return exact[0] if exact else str(value)
    parts, rest = [], value
    for name, v in sorted(table.items(), key=lambda nv: -nv[1]):  # combined names first
        if v > 0 and v & rest == v:
            parts.append((v, name))
            rest &= ~v
    return "|".join([n for _, n in sorted(parts)] + ([hex(rest)] if rest else []))


def tables_for(machine: str) -> dict[str, dict[str, int]]:
    """The fixed flag tables on MACHINE (uname -m)."""
    out = {family: dict(table) for family, table in SHARED_TABLES.items()}
    for family, extra in ARCH_ONLY.get(machine, {}).items():
        out[family].update(extra)
    return out


def elsewhere(family: str, name: str) -> list[str]:
    """The other architectures that define NAME in FAMILY: a case using it is skipped here
    (with that reason), not refused as invalid."""
    return sorted(m for m, t in ARCH_ONLY.items() if m != ARCH and name in t.get(family, {}))


def family_of(name: str) -> str | None:
    """Which flag family a name belongs to (longest prefix wins: MADV before MAP)."""
    for family in sorted(FLAG_FAMILIES, key=len, reverse=True):
        if name in FLAG_FAMILIES[family]:
            return family
    return None
