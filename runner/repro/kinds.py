"""What each operation's result is in C: its kind, its C type, and the fields of a mapping result.

The engine's results are Python values whose type shows at run time; here every result has one
kind fixed by its operation and arguments, so the generated C can be typed and judged statically.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from runner.errors import MmapconfError
from runner.lang.model import Case, Step


class Unreproducible(MmapconfError):
    """The case cannot be written as a faithful C reproducer (the message says why)."""


# kind -> the C type of a variable holding such a result
C_TYPES = {
    "int": "i64",
    "addr": "i64",
    "bytes": "struct bytes",
    "list": "struct bytes",
    "format": "struct bytes",
    "fstat": "struct stat",
    "cachestat": "struct cstat",
    "wait": "struct wait_result",
    "maps": "struct maps_line",
    "kv": "struct kv",
    "rlimit": "struct rlimit",
    "uffdmsg": "struct uffd_msg",
    "dedupe": "struct dedupe",
}

_BY_OP = {
    "open": "int",
    "write": "int",
    "fork": "int",
    "repeat": "int",
    "eventfd": "int",
    "dup": "int",
    "reopen": "int",
    "memfd_create": "int",
    "fcntl": "int",
    "fadvise": "int",
    "posix_madvise": "int",
    "call": "int",
    "brk": "int",
    "let": "int",
    "userfaultfd": "int",
    "uffd_copy": "int",
    "uffd_zeropage": "int",
    "uffd_read": "uffdmsg",
    "getrlimit": "rlimit",
    "grow_stack": "int",
    # forms
    **dict.fromkeys(
        (
            "splice",
            "vmsplice",
            "sendfile",
            "copy_file_range",
            "proc_mem_write",
            "pidfd_open",
            "process_madvise",
            "lseek",
            "uring_read_fixed",
            "uring_write_fixed",
            "prctl",
        ),
        "int",
    ),
    "proc_mem_read": "bytes",
    "fideduperange": "dedupe",
    "mmap": "addr",
    "mremap": "addr",
    "mincore": "list",
    "fstat": "fstat",
    "cachestat": "cachestat",
    "wait": "wait",
    "proc_maps": "maps",
    "smaps": "kv",
    "proc_status": "kv",
}


def _nsec(field: str) -> str:
    return f"(%s.st_{field}.tv_sec * 1000000000LL + %s.st_{field}.tv_nsec)"


# The fields of fixed mapping results: name -> a C expression over the variable (%s).
FSTAT_FIELDS = {
    "size": "(i64)%s.st_size",
    "blocks": "(i64)%s.st_blocks",
    "mode": "(i64)%s.st_mode",
    "nlink": "(i64)%s.st_nlink",
    "ino": "(i64)%s.st_ino",
    "uid": "(i64)%s.st_uid",
    "gid": "(i64)%s.st_gid",
    "blksize": "(i64)%s.st_blksize",
    "atime_ns": _nsec("atim"),
    "mtime_ns": _nsec("mtim"),
    "ctime_ns": _nsec("ctim"),
}
CACHESTAT_FIELDS = {
    f: f"(i64)%s.{f}"
    for f in ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")
}
RLIMIT_FIELDS = {"soft": "(i64)%s.rlim_cur", "hard": "(i64)%s.rlim_max"}
UFFD_MSG_FIELDS = {
    "event": "(i64)%s.event",
    "address": "(i64)%s.arg.pagefault.address",
    "flags": "(i64)%s.arg.pagefault.flags",
}
DEDUPE_FIELDS = {
    "status": "(i64)%s.info.status",
    "bytes_deduped": "(i64)%s.info.bytes_deduped",
}
MAPS_INT_FIELDS = {f: f"%s.{f}" for f in ("start", "end", "offset", "inode")}
MAPS_TEXT_FIELDS = {f: f"%s.{f}" for f in ("perms", "dev", "path")}


def field_expr(kind: str, var: str, name: str) -> str | None:
    """The C integer expression for field ``name`` of a result, or None when it has none."""
    table = {
        "fstat": FSTAT_FIELDS,
        "cachestat": CACHESTAT_FIELDS,
        "maps": MAPS_INT_FIELDS,
        "rlimit": RLIMIT_FIELDS,
        "uffdmsg": UFFD_MSG_FIELDS,
        "dedupe": DEDUPE_FIELDS,
    }
    if kind in table:
        template = table[kind].get(name)
        return template.replace("%s", var) if template else None
    if kind == "kv":
        return f'kv_int(&{var}, "{name}")'
    return None


def result_kind(step: Step) -> str:
    """The kind of what ``as`` binds for this step ("none" when it binds nothing)."""
    if step.op == "read":
        return "int" if "addr" in step.args else "bytes"
    if step.op == "load":
        return "format" if "format" in step.args else "bytes"
    return _BY_OP.get(step.op, "none")


def c_name(name: str) -> str:
    """The C variable of a case name: prefixed, so no name of the case meets one of libc's."""
    return f"v_{name}"


def bound_names(case: Case) -> dict[str, str]:
    """Every name the case binds, with its kind; a name bound with two kinds is refused."""
    kinds: dict[str, str] = {}

    def bind(name: str, kind: str, step: Step) -> None:
        same = {kinds.get(name), kind} <= {"int", "addr"}
        if name in kinds and kinds[name] != kind and not same:
            raise Unreproducible(
                f"{case.file}:{step.line}: {name!r} is bound as {kinds[name]} and as {kind}; "
                "C needs one type per name"
            )
        kinds.setdefault(name, kind)

    def walk(steps: list[Step]) -> None:
        for step in steps:
            if step.op == "file":
                bind(step.args["file"], "int", step)
            elif step.op == "pipe":
                bind(step.args["read"], "int", step)
                bind(step.args["write"], "int", step)
            elif step.op == "repeat" and "var" in step.args:
                bind(step.args["var"], "int", step)
            if step.bind:
                bind(step.bind, result_kind(step), step)
            walk(step.steps)

    walk(case.setup)
    for steps in case.processes.values():
        walk(steps)
    return kinds


@dataclass(frozen=True)
class Field:
    """One field of a struct format: its code, offset and size in the packed bytes."""

    code: str
    offset: int
    size: int


_INT_CODES = frozenset("bBhHiIlLqQnN")


def format_fields(fmt: str) -> list[Field]:
    """The fields of a little-endian struct format, each placed as ``struct`` places it."""
    prefix = fmt[0] if fmt[:1] in ("@", "=", "<", ">", "!") else ""
    if prefix in (">", "!"):
        raise Unreproducible(f"format {fmt!r}: big-endian formats are not written in C here")
    body, fields, sofar = fmt[len(prefix) :], [], prefix
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", body):
        tokens = [f"{count}s"] if code == "s" else [code] * int(count or 1)
        for token in tokens:
            sofar += token
            if code == "x":
                continue
            if code != "s" and code not in _INT_CODES:
                raise Unreproducible(f"format {fmt!r}: field {code!r} is not written in C here")
            size = struct.calcsize(prefix + token)
            fields.append(Field(code, struct.calcsize(sofar) - size, size))
    return fields
