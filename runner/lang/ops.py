"""The operations of the case language: their arguments, as one table, and the one registry of
argument kinds (``ARG_KINDS``) beside it.

The validator, the JSON Schema and the interpreter all read these, so an operation and a kind
of argument are each declared once.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from typing import Any

from runner.lang import names


@dataclass(frozen=True)
class OpSpec:
    name: str
    args: dict[str, str]
    required: frozenset[str] = frozenset()
    primary: str | None = None  # the argument a scalar value stands for (``close: fd``)
    data: bool = False  # takes one of data/hex/format+values
    defaults: dict[str, object] = field(default_factory=dict)
    result: str = "none"  # what ``as`` binds: int, addr, bytes, map, list, none


def _op(name: str, args: dict[str, str] | None = None, required: str = "", **kw: object) -> OpSpec:
    return OpSpec(name, args or {}, frozenset(required.split()), **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ArgKind:
    """A kind of operation argument: what it means (the validator checks that), its JSON Schema,
    and what the interpreter makes of it (``resolve``: ``expr`` evaluated, ``flags`` names ORed,
    ``event`` its number, ``value`` as written)."""

    meaning: str
    schema: dict[str, Any]
    resolve: str = "value"


# A process name (a `processes:` key; `setup` is taken) and an event name (`post`, `wait_for`)
# take the same characters; the validator and the schema both use this pattern.
PROCESS_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,31}$"
PROCESS_NAME_TEXT = (
    "letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters"
)
_INT_OR_TEXT = {"type": ["integer", "string"]}
# The only paths outside its scratch folder a case may open ("." is the scratch folder itself).
SYSTEM_PATHS = frozenset(
    {"/", "/dev/zero", "/dev/null", "/dev/urandom", "/dev/random", "/proc/self/maps", "."}
)
# The mappings a process has without mapping them, by the name /proc/self/maps shows.
SPECIAL_MAPPINGS = frozenset({"[stack]", "[heap]", "[vdso]", "[vvar]", "[vsyscall]"})
ARG_KINDS: dict[str, ArgKind] = {
    "int": ArgKind(
        "an integer expression (a YAML integer or a string over bound names and PAGE)",
        {**_INT_OR_TEXT, "description": "an integer or an expression"},
        "expr",
    ),
    "flags": ArgKind(
        "flags:F: flag names of family F joined by |, a list of them, or integer expressions",
        {"anyOf": [_INT_OR_TEXT, {"type": "array", "items": _INT_OR_TEXT}]},
        "flags",
    ),
    "file": ArgKind("the name of a file made by a file step", {"type": "string"}),
    "name": ArgKind(
        "a new name (the file's own name, a loop variable)",
        {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    ),
    "event": ArgKind(
        "a cross-process event name", {"type": "string", "pattern": PROCESS_NAME}, "event"
    ),
    "signal": ArgKind("a signal name", {"enum": sorted(names.SIGNAL)}),
    "text": ArgKind("text data", {"type": "string"}),
    "hex": ArgKind("bytes as hex digits", {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"}),
    "format": ArgKind("a struct format", {"type": "string"}),
    "values": ArgKind(
        "the values of a format: integers, expressions or text",
        {"type": "array", "items": _INT_OR_TEXT},
    ),
    "steps": ArgKind("a nested list of steps", {"$ref": "#/$defs/steps"}),
    "path": ArgKind("one of SYSTEM_PATHS", {"enum": sorted(SYSTEM_PATHS)}),
    "process": ArgKind(
        "the name of a process of the case (main, a processes member, a fork's as)",
        {"type": "string", "pattern": PROCESS_NAME},
    ),
    "special": ArgKind(
        "the name /proc/PID/maps gives a mapping that is no file's",
        {"enum": sorted(SPECIAL_MAPPINGS)},
    ),
    "thread": ArgKind(
        "the name of a thread of the process (thread starts it, join waits for it)",
        {"type": "string", "pattern": PROCESS_NAME},
    ),
    "until": ArgKind(
        "{errno: NAME or [NAMES]}: the errno that ends a repeat",
        {
            "type": "object",
            "properties": {"errno": {"type": ["string", "array"]}},
            "required": ["errno"],
            "additionalProperties": False,
        },
    ),
}


def arg_kind(kind: str) -> tuple[ArgKind, str]:
    """An argument's kind as the op table writes it: ``flags:O`` -> (the flags kind, ``O``)."""
    base, _, param = kind.partition(":")
    return ARG_KINDS[base], param


_DATA = {"data": "text", "hex": "hex", "format": "format", "values": "values"}
_RANGE = {"addr": "int", "length": "int"}
# splice(2) and copy_file_range(2): from fd_in at off_in to fd_out at off_out (an offset not
# given: the descriptor's own position)
_FIXED_IO: dict[str, Any] = {"defaults": {"offset": 0}, "result": "int"}  # io_uring fixed I/O
_PIPE_IO = {"fd_in": "int", "off_in": "int", "fd_out": "int", "off_out": "int", "length": "int"}

OPS: dict[str, OpSpec] = {
    o.name: o
    for o in [
        _op(
            "file",
            {"file": "name", "size": "int", "mode": "int", **_DATA},
            "file",
            primary="file",
            defaults={"mode": 0o644},
        ),
        _op(
            "open",
            {"file": "file", "path": "path", "flags": "flags:O", "mode": "int"},
            "flags",
            defaults={"mode": 0o644},
            result="int",
        ),
        _op("close", {"fd": "int"}, "fd", primary="fd"),
        _op("ftruncate", {"fd": "int", "length": "int"}, "fd length"),
        _op(
            "write",
            {"fd": "int", "offset": "int", "addr": "int", "length": "int", **_DATA},
            "fd",
            data=True,
            result="int",
        ),
        _op(
            "read",
            {"fd": "int", "offset": "int", "length": "int", "addr": "int"},
            "fd length",
            result="bytes",
        ),
        _op("fstat", {"fd": "int"}, "fd", primary="fd", result="map"),
        _op("fsync", {"fd": "int"}, "fd", primary="fd"),
        _op("fdatasync", {"fd": "int"}, "fd", primary="fd"),
        _op("unlink", {"file": "file"}, "file", primary="file"),
        _op(
            "mmap",
            {
                "length": "int",
                "prot": "flags:PROT",
                "flags": "flags:MAP",
                "fd": "int",
                "offset": "int",
                "addr": "int",
            },
            "length prot flags",
            defaults={"fd": -1, "offset": 0, "addr": 0},
            result="addr",
        ),
        _op("munmap", _RANGE, "addr length"),
        _op("mprotect", {**_RANGE, "prot": "flags:PROT"}, "addr length prot"),
        _op("msync", {**_RANGE, "flags": "flags:MS"}, "addr length flags"),
        _op("madvise", {**_RANGE, "advice": "flags:MADV"}, "addr length advice"),
        _op("mlock", {**_RANGE, "flags": "flags:MLOCK"}, "addr length", defaults={"flags": 0}),
        _op("munlock", _RANGE, "addr length"),
        _op(
            "mremap",
            {
                "addr": "int",
                "old_length": "int",
                "new_length": "int",
                "flags": "flags:MREMAP",
                "new_addr": "int",
            },
            "addr old_length new_length",
            defaults={"flags": 0, "new_addr": 0},
            result="addr",
        ),
        _op("mincore", {**_RANGE, "vec": "int"}, "addr length", result="list"),
        _op(
            "load",
            {"addr": "int", "length": "int", "format": "format"},
            "addr",
            primary="addr",
            result="bytes",
        ),
        _op("store", {"addr": "int", **_DATA}, "addr", data=True),
        _op("fork", {"steps": "steps"}, "steps", primary="steps", result="int"),
        _op("wait", {"pid": "int"}, "pid", primary="pid", result="map"),
        _op("post", {"event": "event"}, "event", primary="event"),
        _op("wait_for", {"event": "event"}, "event", primary="event"),
        _op("kill", {"pid": "int", "signal": "signal"}, "pid signal"),
        _op(
            "cachestat",
            {
                "fd": "int",
                "offset": "int",
                "length": "int",
                "flags": "int",
                "range_addr": "int",
                "cstat_addr": "int",
            },
            "fd",
            defaults={"offset": 0, "length": 0, "flags": 0},
            result="map",
        ),
        _op("smaps", {"addr": "int"}, "addr", primary="addr", result="map"),
        _op(
            "sem_init",
            {"addr": "int", "pshared": "int", "value": "int"},
            "addr",
            primary="addr",
            defaults={"pshared": 1, "value": 0},
        ),
        _op("sem_post", {"addr": "int"}, "addr", primary="addr"),
        _op("sem_wait", {"addr": "int"}, "addr", primary="addr"),
        _op(
            "repeat",
            {"times": "int", "var": "name", "steps": "steps", "until": "until"},
            "times steps",
            result="int",
        ),
        # Extensions to contract v1 (docs/case-format.md, "Extensions")
        _op("pipe", {"read": "name", "write": "name"}, "read write"),
        _op(
            "eventfd",
            {"initval": "int", "flags": "flags:EFD"},
            "",
            defaults={"initval": 0, "flags": 0},
            result="int",
        ),
        _op("dup", {"fd": "int"}, "fd", primary="fd", result="int"),
        _op(
            "reopen",
            {"fd": "int", "flags": "flags:O", "process": "process"},
            "fd flags",
            result="int",
        ),
        _op(
            "memfd_create",
            {"name": "text", "flags": "flags:MFD", "name_addr": "int"},
            "",
            defaults={"flags": 0},
            result="int",
        ),
        _op(
            "fcntl",
            {"fd": "int", "cmd": "flags:F", "arg": "flags:F_SEAL"},
            "fd cmd",
            defaults={"arg": 0},
            result="int",
        ),
        _op(
            "fadvise",
            {"fd": "int", "offset": "int", "length": "int", "advice": "flags:POSIX_FADV"},
            "fd advice",
            defaults={"offset": 0, "length": 0},
            result="int",
        ),
        _op(
            "posix_madvise",
            {**_RANGE, "advice": "flags:POSIX_MADV"},
            "addr length advice",
            result="int",
        ),
        _op("mseal", {**_RANGE, "flags": "int"}, "addr length", defaults={"flags": 0}),
        _op("mlockall", {"flags": "flags:MCL"}, "flags", primary="flags"),
        _op("munlockall", {}),
        _op(
            "setrlimit", {"resource": "flags:RLIMIT", "soft": "int", "hard": "int"}, "resource soft"
        ),
        _op("setuid", {"uid": "int", "gid": "int"}, "uid", primary="uid"),
        _op("call", {"addr": "int"}, "addr", primary="addr", result="int"),
        _op("sleep", {"ms": "int"}, "ms", primary="ms"),
        _op("proc_maps", {"addr": "int", "path": "special"}, "", primary="addr", result="map"),
        _op("proc_status", {}, result="map"),
        # Peer-suite forms (docs/case-format.md, "Forms for behaviours of peer suites")
        _op(
            "fallocate",
            {"fd": "int", "mode": "flags:FALLOC", "offset": "int", "length": "int"},
            "fd length",
            defaults={"mode": 0, "offset": 0},
        ),
        _op("brk", {"addr": "int"}, "addr", primary="addr", result="int"),
        _op("let", {"value": "int"}, "value", primary="value", result="int"),
        _op("userfaultfd", {"flags": "flags:O"}, "", defaults={"flags": 0}, result="int"),
        _op(
            "uffd_register",
            {"fd": "int", **_RANGE, "mode": "flags:UFFDIO_REGISTER_MODE"},
            "fd addr length mode",
        ),
        _op("uffd_read", {"fd": "int"}, "fd", primary="fd", result="map"),
        _op(
            "uffd_copy",
            {"fd": "int", "dst": "int", "src": "int", "length": "int"},
            "fd dst src length",
            result="int",
        ),
        _op("uffd_zeropage", {"fd": "int", **_RANGE}, "fd addr length", result="int"),
        _op(
            "getrlimit", {"resource": "flags:RLIMIT"}, "resource", primary="resource", result="map"
        ),
        # Durability (docs/durability.md): the power cut ends its process's steps there.
        _op(
            "sync_file_range",
            {"fd": "int", "offset": "int", "length": "int", "flags": "flags:SYNC_FILE_RANGE"},
            "fd flags",
            defaults={"offset": 0, "length": 0},
        ),
        _op("syncfs", {"fd": "int"}, "fd", primary="fd"),
        _op("power_cut", {"after_ms": "int", "at": "text"}, "", primary="after_ms"),
        # threads (docs/case-format.md, "Threads"): steps on a new thread of the process, joined
        _op(
            "thread",
            {"name": "thread", "stack": "int", "stack_size": "int", "steps": "steps"},
            "name steps",
            primary="name",
        ),
        _op("join", {"name": "thread"}, "name", primary="name"),
        _op("grow_stack", {"to": "int"}, "to", primary="to", result="int"),
        # guestsetup: swap and core dumps (docs/case-format.md, "provision.swap" and
        # "provision.core"); `core` reads the core the kernel wrote for a process of the case.
        _op("core", {"pid": "int", **_RANGE}, "pid addr length", result="map"),
        _op("getrusage", {}, result="map"),
        # forms (issue 18; docs/case-format.md, "Forms for behaviours of peer suites")
        _op(
            "splice",
            {**_PIPE_IO, "flags": "flags:SPLICE_F"},
            "fd_in fd_out length",
            defaults={"flags": 0},
            result="int",
        ),
        _op(
            "vmsplice",
            {"fd": "int", **_RANGE, "flags": "flags:SPLICE_F"},
            "fd addr length",
            defaults={"flags": 0},
            result="int",
        ),
        _op(
            "sendfile",
            {"fd_out": "int", "fd_in": "int", "offset": "int", "length": "int"},
            "fd_out fd_in length",
            result="int",
        ),
        _op(
            "copy_file_range",
            {**_PIPE_IO, "flags": "int"},
            "fd_in fd_out length",
            defaults={"flags": 0},
            result="int",
        ),
        _op("proc_mem_write", {"addr": "int", **_DATA}, "addr", data=True, result="int"),
        _op("proc_mem_read", _RANGE, "addr length", result="bytes"),
        _op("pidfd_open", {"process": "process"}, "", primary="process", result="int"),
        _op(
            "process_madvise",
            {"pidfd": "int", **_RANGE, "advice": "flags:MADV", "flags": "int"},
            "pidfd addr length advice",
            defaults={"flags": 0},
            result="int",
        ),
        _op("ficlone", {"fd": "int", "fd_src": "int"}, "fd fd_src"),
        _op(
            "ficlonerange",
            {
                "fd": "int",
                "fd_src": "int",
                "src_offset": "int",
                "length": "int",
                "dest_offset": "int",
            },
            "fd fd_src length",
            defaults={"src_offset": 0, "dest_offset": 0},
        ),
        _op(
            "fideduperange",
            {
                "fd_src": "int",
                "src_offset": "int",
                "length": "int",
                "fd": "int",
                "dest_offset": "int",
            },
            "fd_src length fd",
            defaults={"src_offset": 0, "dest_offset": 0},
            result="map",
        ),
        _op(
            "lseek",
            {"fd": "int", "offset": "int", "whence": "flags:SEEK"},
            "fd offset whence",
            result="int",
        ),
        _op("uring_register_buffers", _RANGE, "addr length"),
        _op("uring_unregister_buffers", {}),
        *(
            _op(name, {"fd": "int", **_RANGE, "offset": "int"}, "fd addr length", **_FIXED_IO)
            for name in ("uring_read_fixed", "uring_write_fixed")
        ),
        _op(
            "prctl",
            {
                "option": "flags:PR",
                "arg2": "flags:PR",
                "arg3": "int",
                "arg4": "int",
                "arg5": "int",
                "name": "text",
            },
            "option",
            defaults={"arg2": 0, "arg3": 0, "arg4": 0, "arg5": 0},
            result="int",
        ),
    ]
}

STEP_KEYS = frozenset({"as", "expect", "note"})
EXPECT_KEYS = frozenset({"when", "errno", "signal", "si_code", "si_addr", "value", "ip"})
COMPARATORS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
CASE_KEYS = {
    "id": True,
    "title": True,
    "claim": False,
    "refs": False,
    "tags": False,
    "requires": False,
    "backings": False,
    "timeout": False,
    "setup": False,
    "steps": False,
    "processes": False,
    "provision": False,
    "address_space": False,
    "after_reboot": False,
}
CONDITION_KEYS = frozenset(
    {"kernel", "backing", "fs", "arch", "root", "syscall", "sysctl", "kconfig", "disk"}
)
# The disk models a power-cut case is judged on (docs/durability.md): everything the guest
# sent to its disk, or only what a flush made durable (a disk that loses its write cache).
DISK_MODELS = ("submitted", "flushed")
# qemu's cache modes for the logged disk of a power cut (--disk-cache). Not unsafe: it drops the
# guest's flushes before blklogwrites sees them, so the flushed model would have none.
DISK_CACHES = ("writeback", "none", "writethrough", "directsync")
# power_cut: {at: ...}: judge at every crash point of the write log instead of one cut.
POWER_CUT_POINTS = ("every_flush", "every_write")
BACKINGS = ("disk", "tmpfs", "memfd", "hugetlbfs", "anon")
FILE_BACKINGS = ("disk", "tmpfs", "memfd")  # the default set for a case that uses files
DEFAULT_TIMEOUT = 10.0
# RLIMIT_AS of a case process: what it maps at its start plus this many pages (512 MiB with
# 4 KiB pages), unless the case declares its own headroom in bytes (address_space:)
CASE_ADDRESS_SPACE_PAGES = 131072
# address_space: the RLIMIT_AS headroom a case process gets above what it maps at its start
ADDRESS_SPACE_RANGE = (1 << 20, 64 << 30)  # bytes; default CASE_ADDRESS_SPACE_PAGES pages

# provision: what the harness sets up before a case and undoes after it (never the case's
# processes: their seccomp filter refuses mount, and inode flags need CAP_LINUX_IMMUTABLE).
PROVISION_KEYS = ("mount", "files", "sysctls", "memory", "swap", "core")
PROVISION_MEMORY_KEYS = ("limit",)
# bytes of provision.memory.limit: at most the limit every case runs under (confine.CASE_MEMORY),
# so that a case with its own limit is never less confined than one without
PROVISION_MEMORY_LIMIT = (1 << 20, 1 << 30)
PROVISION_MOUNT_KEYS = ("fstype", "options", "size")
# provision.swap: a swap area of this many bytes, in a guest only (swapon is machine-wide)
PROVISION_SWAP_KEYS = ("size",)
PROVISION_SWAP_SIZE = (1 << 20, 256 << 20)  # it lives in the guest's memory (a tmpfs file)
# provision.core: core dumps into the scratch folder, in a guest only (core_pattern is
# machine-wide); RLIMIT_CORE of the case's processes and their /proc/self/coredump_filter
PROVISION_CORE_KEYS = ("limit", "filter")
PROVISION_CORE_LIMIT = (0, 256 << 20)  # bytes; RLIM_INFINITY stands for no limit
PROVISION_CORE_DEFAULT_LIMIT = 64 << 20
PROVISION_CORE_FILTER = (0, 0x1FF)  # man 5 core: bits 0..8
PROVISION_FILE_KEYS = ("data", "hex", "size", "mode", "inode_flags")
PROVISION_FSTYPES = ("tmpfs", "ext4", "xfs", "btrfs")  # ext4, xfs, btrfs: a loop-mounted image
PROVISION_IMAGE_SIZE = (1 << 20, 4 << 30)  # bytes; default 1 GiB (mkfs.xfs wants >= 300 MB)
# The mount options a case may ask for: none that names a host path or device (journal_path=,
# logdev=, subvol=...), since case files are hostile input.
MOUNT_OPTION = (
    r"(no)?(exec|suid|dev|atime|diratime|delalloc|barrier|discard|datacow|datasum|ssd|quota)"
    r"|ro|rw|sync|dirsync|relatime|strictatime|lazytime|inode64|inode32|nouuid|user_xattr"
    r"|(size|nr_inodes|nr_blocks)=\d+[kKmMgG%]?|mode=[0-7]{3,4}|(uid|gid)=\d+|commit=\d+"
    r"|huge=(never|always|within_size|advise)|dax(=(never|always|inode))?"
    r"|data=(ordered|writeback|journal)|compress(-force)?=(zlib|lzo|zstd|no)(:\d+)?"
)

# Names every expression may use, besides the names a case binds.
CONSTANTS = {"PAGE": resource.getpagesize(), "RLIM_INFINITY": resource.RLIM_INFINITY}
