"""Confine a case's processes with Landlock: files only in the scratch folder, no signals out.

Validation already refuses file names that leave the scratch folder, but a case runs real
system calls as root, and some operations (``call``, raw stores into executable memory) can run
arbitrary machine code. Landlock (Linux 5.13+, unprivileged, inherited by every fork) makes the
kernel itself refuse what the case must never do, whatever code runs:

- create, write, truncate, unlink or rename anything outside the scratch folder (reading the
  Python installation, ``/proc`` and the four character devices of the case language stays allowed);
- TCP connect or bind (ABI 4+);
- signal, ptrace or reach by abstract socket any process outside the case (ABI 6+): a
  ``kill`` of pid -1 reaches only the case's own processes.

Where the kernel has no Landlock the case runs unconfined and ``status()`` says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on every arch
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# LANDLOCK_ACCESS_FS_* bits, and the ABI that introduced the last of them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # rights a file rule takes
_NET_ALL = (1 << 0) | (1 << 1)  # BIND_TCP, CONNECT_TCP (ABI 4)
_SCOPE_ALL = (1 << 0) | (1 << 1)  # ABSTRACT_UNIX_SOCKET, SIGNAL (ABI 6)

# What a case may open outside its scratch folder (the ``open: {path}`` allow-list's devices).
DEVICES = ("/dev/zero", "/dev/null", "/dev/urandom", "/dev/random")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_status = "not applied"


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when there is none (or it is disabled)."""
    version = _libc.syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def applied() -> bool:
    return _status != "not applied"


def status() -> str:
    """What ``confine`` did in this process (inherited by fork): for reports and tests."""
    return _status


def _fs_rights(version: int) -> int:
    return _FS_BY_ABI[max(v for v in _FS_BY_ABI if v <= version)]


def _readable_roots() -> list[str]:
    """Folders whose files the case process may read: Python and the harness's own code, which
    a lazy import may still need, and /proc (smaps, maps, status, fd links)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/proc"}
    roots |= {p for p in sys.path if p and os.path.isdir(p)}
    return sorted(roots)


def confine(scratch: str | None) -> str:
    """Confine this process (and every process it forks) to ``scratch``. Returns the status.

    Called once per case, in its first process, before any step runs; never raises for lack of
    Landlock: an older kernel runs cases unconfined.
    """
    global _status
    version = abi()
    if version < 1:
        _status = "unavailable: the kernel has no Landlock"
        return _status
    fs = _fs_rights(version)
    attr = _RulesetAttr(fs, _NET_ALL if version >= 4 else 0, _SCOPE_ALL if version >= 6 else 0)
    size = 24 if version >= 6 else 16 if version >= 4 else 8
    ruleset = _libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        _status = f"unavailable: landlock_create_ruleset failed (errno {ctypes.get_errno()})"
        return _status
    try:
        if scratch:
            _allow(ruleset, scratch, fs)
        for device in DEVICES:
            _allow(ruleset, device, (READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV) & fs)
        _allow(ruleset, "/", READ_DIR)  # opening a folder (``open: {path: /}``) reads no file
        for root in _readable_roots():
            _allow(ruleset, root, READ_FILE | READ_DIR)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if _libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    _status = f"confined (Landlock ABI {version})"
    return _status


def _allow(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # nothing there to allow
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneath(rights, fd)
        if _libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
    finally:
        os.close(fd)
