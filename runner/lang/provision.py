"""The ``provision:`` key of a case: what the harness sets up before the case and undoes after
it, whatever the outcome (the case's processes could not: mount is refused to them, inode flags
need CAP_LINUX_IMMUTABLE, and a case is hostile input).

    provision:
      mount: {fstype: tmpfs, options: "noexec,size=16k"}   # the case's files live on it
      files:
        f: {data: "abcd", inode_flags: FS_APPEND_FL}      # made before the case; opened by it
      sysctls: {vm.dirty_expire_centisecs: 100}          # in a guest only (--kernel)
      memory: {limit: 64 * 1024 * 1024}                  # the case's own memory cgroup
      swap: {size: 16 * 1024 * 1024}                     # a swap area, in a guest only
      core: {limit: RLIM_INFINITY, filter: 0x33}         # core dumps, in a guest only

Read here into model.Provision; engine/provision.py carries it out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from runner.lang import names
from runner.lang.expr import ExprError, parse
from runner.lang.model import CoreProvision, FileProvision, MountProvision, Provision
from runner.lang.ops import (
    CONSTANTS,
    MOUNT_OPTION,
    PROVISION_CORE_DEFAULT_LIMIT,
    PROVISION_CORE_FILTER,
    PROVISION_CORE_KEYS,
    PROVISION_CORE_LIMIT,
    PROVISION_FILE_KEYS,
    PROVISION_FSTYPES,
    PROVISION_IMAGE_SIZE,
    PROVISION_KEYS,
    PROVISION_MEMORY_KEYS,
    PROVISION_MEMORY_LIMIT,
    PROVISION_MOUNT_KEYS,
    PROVISION_SWAP_KEYS,
    PROVISION_SWAP_SIZE,
)

Err = Callable[[Any, Any, str], None]  # (node, key, message)
NameCheck = Callable[[Any, Any, Any], bool]  # (node, key, name): a valid new file name?
_MOUNT_OPTION = re.compile(MOUNT_OPTION)
SYSCTL_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
# What a case may change in its guest: memory management and filesystem tunables.
SYSCTL_PREFIXES = ("vm.", "fs.")


def read_provision(doc: dict, err: Err, file_name_ok: NameCheck) -> Provision | None:
    value = doc.get("provision")
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        err(doc, "provision", f"must be a mapping of {' and/or '.join(PROVISION_KEYS)}")
        return None
    for key in value:
        if key not in PROVISION_KEYS:
            err(value, key, f"unknown provision key; expected one of {', '.join(PROVISION_KEYS)}")
    mount = _mount(value, err) if "mount" in value else None
    files = _files(value, err, file_name_ok) if "files" in value else {}
    sysctls = _sysctls(value, err) if "sysctls" in value else {}
    memory = _memory(value, err) if "memory" in value else None
    swap = _swap(value, err) if "swap" in value else None
    core = _core(value, err) if "core" in value else None
    backings = doc.get("backings")
    if mount is not None and backings not in (None, "disk", ["disk"]):
        err(doc, "backings", "a case with provision.mount runs on its own mount: backings: [disk]")
    return Provision(mount, files, sysctls, memory, swap, core)


def _swap(parent: dict, err: Err) -> int | None:
    """swap: {size: BYTES}: a swap area the harness makes and swaps on (in a guest only)."""
    node = parent["swap"]
    if not isinstance(node, dict) or "size" not in node:
        err(parent, "swap", "must be a mapping with size (bytes): {size: 16 * 1024 * 1024}")
        return None
    _keys(node, PROVISION_SWAP_KEYS, err, "provision.swap")
    return _constant(node, "size", err, PROVISION_SWAP_SIZE)


def _core(parent: dict, err: Err) -> CoreProvision | None:
    """core: {limit: BYTES, filter: BITS}: the case's processes dump core into its scratch
    folder (in a guest only), with that RLIMIT_CORE (RLIM_INFINITY: none) and coredump_filter."""
    node = parent["core"]
    node = {} if node is None else node
    if not isinstance(node, dict):
        err(parent, "core", "must be a mapping of limit and filter: {limit: RLIM_INFINITY}")
        return None
    _keys(node, PROVISION_CORE_KEYS, err, "provision.core")
    limit: int | None = PROVISION_CORE_DEFAULT_LIMIT
    if "limit" in node:
        unlimited = node["limit"] == "RLIM_INFINITY"
        limit = CONSTANTS["RLIM_INFINITY"] if unlimited else _constant(node, "limit", err)
        if limit is not None and not unlimited:
            limit = _bounded(node, "limit", limit, err, PROVISION_CORE_LIMIT)
    bits = _constant(node, "filter", err, PROVISION_CORE_FILTER) if "filter" in node else -1
    if limit is None or bits is None:
        return None
    return CoreProvision(limit, bits)


def _memory(parent: dict, err: Err) -> int | None:
    """memory: {limit: BYTES}: the limit of the case's own memory cgroup."""
    node = parent["memory"]
    if not isinstance(node, dict) or "limit" not in node:
        err(parent, "memory", "must be a mapping with limit (bytes): {limit: 64 * 1024 * 1024}")
        return None
    _keys(node, PROVISION_MEMORY_KEYS, err, "provision.memory")
    return _constant(node, "limit", err, PROVISION_MEMORY_LIMIT)


def _sysctls(parent: dict, err: Err) -> dict[str, str]:
    """sysctls: {vm.dirty_expire_centisecs: 100}: set in a guest only, since a guest is
    disposable and the host is not; a key outside the allowed prefixes is refused."""
    node = parent["sysctls"]
    if not isinstance(node, dict) or not node:
        err(parent, "sysctls", "must map sysctl keys (vm.dirty_expire_centisecs) to values")
        return {}
    out: dict[str, str] = {}
    for key, value in node.items():
        if not isinstance(key, str) or not SYSCTL_KEY.fullmatch(key):
            err(node, key, "a sysctl key is dotted words, e.g. vm.dirty_expire_centisecs")
        elif not key.startswith(SYSCTL_PREFIXES):
            err(node, key, f"{key}: a case may set sysctls under {', '.join(SYSCTL_PREFIXES)}")
        elif isinstance(value, bool) or not isinstance(value, int | str) or "\n" in str(value):
            err(node, key, "a sysctl value is an integer or a one-line string")
        else:
            out[key] = str(value)
    return out


def _keys(node: dict, allowed: tuple[str, ...], err: Err, what: str) -> None:
    for key in node:
        if key not in allowed:
            err(node, key, f"unknown {what} key; expected one of {', '.join(allowed)}")


def _mount(parent: dict, err: Err) -> MountProvision | None:
    node = parent["mount"]
    if not isinstance(node, dict) or "fstype" not in node:
        err(parent, "mount", "must be a mapping with fstype (and options, size)")
        return None
    _keys(node, PROVISION_MOUNT_KEYS, err, "provision.mount")
    fstype = node["fstype"]
    if fstype not in PROVISION_FSTYPES:
        err(node, "fstype", f"{fstype!r}: one of {', '.join(PROVISION_FSTYPES)}")
        return None
    options = node.get("options", "")
    if not isinstance(options, str):
        err(node, "options", 'must be a string of mount options, e.g. "noexec,size=16k"')
        return None
    for opt in filter(None, options.split(",")):
        if not _MOUNT_OPTION.fullmatch(opt):
            err(node, "options", f"mount option {opt!r} is not one a case may ask for")
    size = None
    if "size" in node:
        if fstype == "tmpfs":
            err(node, "size", "a tmpfs is sized by its options (size=16k)")
        size = _constant(node, "size", err, PROVISION_IMAGE_SIZE)
    return MountProvision(fstype, options, size)


def _constant(node: dict, key: str, err: Err, bounds: tuple[int, int] | None = None) -> int | None:
    """An integer or an expression over constants only (PAGE): known before the case runs."""
    value = node[key]
    try:
        n = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str):
            n = parse(value).eval(dict(CONSTANTS))
    except (ExprError, KeyError, NameError) as e:
        err(node, key, f"{value!r}: an integer or an expression over PAGE ({e})")
        return None
    if n is None:
        err(node, key, f"{value!r} is not an integer or an expression")
    elif bounds:
        return _bounded(node, key, n, err, bounds)
    return n


def _bounded(node: dict, key: str, n: int, err: Err, bounds: tuple[int, int]) -> int | None:
    if not bounds[0] <= n <= bounds[1]:
        err(node, key, f"{n} is outside {bounds[0]}..{bounds[1]}")
        return None
    return n


def _files(parent: dict, err: Err, file_name_ok: NameCheck) -> dict[str, FileProvision]:
    node = parent["files"]
    if not isinstance(node, dict) or not node:
        err(
            parent,
            "files",
            "must be a mapping of file names to {data, hex, size, mode, inode_flags}",
        )
        return {}
    out: dict[str, FileProvision] = {}
    for name, spec in node.items():
        if not file_name_ok(node, name, name):
            continue
        spec = spec if spec is not None else {}
        if not isinstance(spec, dict):
            err(node, name, "must be a mapping of data, hex, size, mode, inode_flags")
            continue
        _keys(spec, PROVISION_FILE_KEYS, err, "provision file")
        made = _file(spec, err)
        if made is not None:
            out[name] = made
    return out


def _file(spec: dict, err: Err) -> FileProvision | None:
    if "data" in spec and "hex" in spec:
        err(spec, "hex", "give data or hex, not both")
        return None
    data = b""
    if "data" in spec:
        if not isinstance(spec["data"], str):
            err(spec, "data", "must be text")
            return None
        data = spec["data"].encode()
    if "hex" in spec:
        try:
            data = bytes.fromhex(spec["hex"])
        except (TypeError, ValueError):
            err(spec, "hex", "must be an even number of hex digits")
            return None
    size = _constant(spec, "size", err, (0, 1 << 30)) if "size" in spec else None
    mode = _constant(spec, "mode", err, (0, 0o777)) if "mode" in spec else 0o600
    flags = _inode_flags(spec, err) if "inode_flags" in spec else 0
    if mode is None or flags is None:
        return None
    return FileProvision(data, size, mode, flags)


def _inode_flags(spec: dict, err: Err) -> int | None:
    value = spec["inode_flags"]
    total = 0
    for item in value if isinstance(value, list) else str(value).split("|"):
        flag = str(item).strip()
        if flag not in names.FS_FL:
            err(
                spec, "inode_flags", f"unknown inode flag {flag!r}; one of {', '.join(names.FS_FL)}"
            )
            return None
        total |= names.FS_FL[flag]
    return total
