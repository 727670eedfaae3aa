"""What confines a case's processes: files only in the scratch folder, no signals out, no machine
calls. The rules and filter are defined here; the native executor applies them in the case's first
process (runner.engine.native.confinement encodes them for it).

Validation already refuses file names that leave the scratch folder, but a case runs real
system calls as root, and some operations (``call``, raw stores into executable memory) can run
arbitrary machine code. Landlock (Linux 5.13+, unprivileged, inherited by every fork) makes the
kernel itself refuse what the case must never do, whatever code runs:

- create, write, truncate, unlink or rename anything outside the scratch folder (reading ``/proc``
  and the four character devices of the case language stays allowed);
- TCP connect or bind (ABI 4+);
- signal, ptrace or reach by abstract socket any process outside the case (ABI 6+): a
  ``kill`` of pid -1 reaches only the case's own processes.

A seccomp filter adds what Landlock does not cover: the machine-wide calls (reboot, modules,
mount, clock, swap, ptrace, bpf, mknod, ...), clone with a namespace flag and sockets other than
AF_UNIX (UDP, raw packets) fail with EPERM, and so does any syscall made through another ABI
(i386 ``int 0x80``, x32, AArch32), which could otherwise go around the list; clone3 fails with
ENOSYS.
Below both, runner.engine.confine makes every mount but the scratch folder read-only.

Where the kernel lacks either, the case runs with what it has.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from typing import Any

_SYS_CREATE_RULESET = 444  # the same on every architecture
_CREATE_RULESET_VERSION = 1

# LANDLOCK_ACCESS_FS_* bits, and the ABI that introduced the last of them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_ALL = (1 << 0) | (1 << 1)  # BIND_TCP, CONNECT_TCP (ABI 4)
SCOPE_ALL = (1 << 0) | (1 << 1)  # ABSTRACT_UNIX_SOCKET, SIGNAL (ABI 6)

# What a case may open outside its scratch folder (the ``open: {path}`` allow-list's devices).
DEVICES = ("/dev/zero", "/dev/null", "/dev/urandom", "/dev/random")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when there is none (or it is disabled)."""
    version = _libc.syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def fs_rights(version: int) -> int:
    """Every filesystem right the kernel's Landlock ABI ``version`` knows."""
    return _FS_BY_ABI[max(v for v in _FS_BY_ABI if v <= version)]


# -- seccomp: the machine-wide system calls a case has no business making --------------------
# Landlock guards files, signals and TCP; these act on the whole machine (or escape Landlock's
# path checks: open_by_handle_at), and a case running as root could make them from machine code
# run by ``call``. They fail with EPERM. Numbers per architecture; any other ABI of the machine
# (i386 int 0x80 and x32 on x86-64, AArch32 on arm64) is refused outright, so it cannot be used
# to go around the list. io_uring_setup is refused because a ring's operations are no system
# calls the filter sees (IORING_OP_SOCKET would make the UDP socket it refuses): a case that uses
# io_uring gets one ring, made by the executor before the filter and restricted by the kernel
# (IORING_REGISTER_RESTRICTIONS) to fixed-buffer reads and writes (executor.c, ring_setup).
# A case process is made non-dumpable, so a crash never reaches a core_pattern pipe helper (which
# runs as root outside every namespace, and ignores RLIMIT_CORE): execve (which makes a process
# dumpable again) and prctl(PR_SET_DUMPABLE) are refused so that machine code cannot undo it. No
# case execs: the case language has no such step.
_X32_BIT = 0x40000000
DENIED_X86_64 = {
    "ptrace": 101, "syslog": 103, "vhangup": 153, "pivot_root": 155, "adjtimex": 159,
    "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170, "setdomainname": 171,
    "iopl": 172, "ioperm": 173, "init_module": 175, "delete_module": 176, "quotactl": 179,
    "clock_settime": 227, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "perf_event_open": 298, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "mknod": 133, "mknodat": 259,
    "io_uring_setup": 425, "execve": 59, "execveat": 322,
}  # fmt: skip
# The same calls on arm64, from the kernel's include/uapi/asm-generic/unistd.h (arm64 has no
# iopl, ioperm or mknod: mknodat is its only way to make a node).
DENIED_AARCH64 = {
    "ptrace": 117, "syslog": 116, "vhangup": 58, "pivot_root": 41, "adjtimex": 171,
    "chroot": 51, "acct": 89, "settimeofday": 170, "mount": 40, "umount2": 39,
    "swapon": 224, "swapoff": 225, "reboot": 142, "sethostname": 161, "setdomainname": 162,
    "init_module": 105, "delete_module": 106, "quotactl": 60,
    "clock_settime": 112, "kexec_load": 104, "add_key": 217, "request_key": 218,
    "keyctl": 219, "unshare": 97, "perf_event_open": 241, "name_to_handle_at": 264,
    "open_by_handle_at": 265, "clock_adjtime": 266, "setns": 268, "process_vm_readv": 270,
    "process_vm_writev": 271, "finit_module": 273, "kexec_file_load": 294, "bpf": 280,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "mknodat": 33,
    "io_uring_setup": 425, "execve": 221, "execveat": 281,
}  # fmt: skip


@dataclass(frozen=True)
class SeccompArch:
    """What the filter needs of one architecture: its AUDIT_ARCH, the denied calls' numbers,
    socket, clone, clone3, prctl and ioctl, and whether it has x32's bit to refuse."""

    audit: int
    denied: dict[str, int]
    socket: int
    clone: int
    clone3: int
    prctl: int
    ioctl: int
    x32: bool


SECCOMP_ARCHES = {
    "x86_64": SeccompArch(0xC000003E, DENIED_X86_64, 41, 56, 435, 157, ioctl=16, x32=True),
    "aarch64": SeccompArch(0xC00000B7, DENIED_AARCH64, 198, 220, 435, 167, ioctl=29, x32=False),
}
# ioctls that act on a whole filesystem from any descriptor of a file on it (CAP_SYS_ADMIN,
# which a case running as root has): a case could freeze, shut down (EXT4_IOC_SHUTDOWN, which is
# XFS_IOC_GOINGDOWN and F2FS_IOC_SHUTDOWN too), trim, relabel or re-UUID the filesystem of its
# disk backing: under --dir, the operator's. The same numbers on every architecture
# (include/uapi/linux/fs.h, fs/ext4/ext4.h; a C probe printed them).
FS_WIDE_IOCTLS = {
    "FIFREEZE": 0xC0045877, "FITHAW": 0xC0045878, "FITRIM": 0xC0185879,
    "EXT4_IOC_SHUTDOWN": 0x8004587D, "FS_IOC_SETFSLABEL": 0x41009432,
    "EXT4_IOC_SETFSUUID": 0x4008662C,
}  # fmt: skip
_RET_ALLOW, _RET_ERRNO, _EPERM = 0x7FFF0000, 0x00050000, 1
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _JA, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x05, 0x06


_AF_UNIX = 1
_ENOSYS = 38
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: a fork with any of these would
# be a namespace of the case's own (unshare and setns are refused above for the same reason).
_CLONE_NEW_FLAGS = 0x00020000 | 0x7E000000
_PR_SET_DUMPABLE = 4


def program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter for ``machine`` (``os.uname().machine``; [] where no list is defined): deny
    a foreign ABI, a non-AF_UNIX socket (no UDP or raw packets from a case: Landlock covers TCP
    only), clone with a namespace flag, prctl(PR_SET_DUMPABLE), the filesystem-wide ioctls
    (FS_WIDE_IOCTLS), and each listed call; clone3 fails with ENOSYS (seccomp cannot read its
    flags, which are in memory; libc then falls back to clone); allow the rest. The call's
    number (and an ioctl's request) is looked up in a tree of comparisons, not a list: the
    kernel runs the filter for every call number when it installs it (to cache the calls it
    always allows), and each case process installs it. Jumps are to labels."""
    arch = SECCOMP_ARCHES.get(machine)
    if arch is None:
        return []
    special = {arch.socket: "socket", arch.clone: "clone", arch.clone3: "enosys"}
    special |= {arch.prctl: "prctl", arch.ioctl: "ioctl"}
    targets = sorted({**dict.fromkeys(arch.denied.values(), "deny"), **special}.items())
    x32 = [(_JGE_K, "deny", 0, _X32_BIT)] if arch.x32 else []
    code: list[tuple[Any, ...]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 0, "deny", arch.audit),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        *x32,
        *_lookup(targets, "nr"),
        ("socket", _LD_W_ABS, 0, 0, 16),  # seccomp_data.args[0], low half: the address family
        (_JEQ_K, "allow", "deny", _AF_UNIX),
        ("clone", _LD_W_ABS, 0, 0, 16),  # args[0]: the clone flags
        (_JSET_K, "deny", "allow", _CLONE_NEW_FLAGS),
        ("prctl", _LD_W_ABS, 0, 0, 16),  # args[0]: the option
        (_JEQ_K, "deny", "allow", _PR_SET_DUMPABLE),
        ("ioctl", _LD_W_ABS, 0, 0, 24),  # args[1], low half: the request (an unsigned int)
        *_lookup([(request, "deny") for request in sorted(FS_WIDE_IOCTLS.values())], "io"),
        ("enosys", _RET_K, 0, 0, _RET_ERRNO | _ENOSYS),
        ("allow", _RET_K, 0, 0, _RET_ALLOW),
        ("deny", _RET_K, 0, 0, _RET_ERRNO | _EPERM),
    ]
    return _assemble(code)


_LEAF = 4  # numbers compared one by one at a leaf of the tree


def _lookup(targets: list[tuple[int, str]], name: str) -> list[tuple[Any, ...]]:
    """A binary search of the accumulator among TARGETS (number, label; sorted): a match jumps
    to its label, no match to "allow". NAME labels this subtree's parts."""
    if len(targets) <= _LEAF:
        return [*((_JEQ_K, label, 0, nr) for nr, label in targets), (_JA, 0, 0, "allow")]
    mid = len(targets) // 2
    high = f"{name}h"
    left, right = _lookup(targets[:mid], f"{name}l"), _lookup(targets[mid:], high)
    return [(_JGE_K, high, 0, targets[mid][0]), *left, (high, *right[0]), *right[1:]]


def _assemble(code: list[tuple[Any, ...]]) -> list[tuple[int, int, int, int]]:
    """Resolve labels: an instruction may start with its own label; jt, jf (and k of a JA) may
    name one. Every jump goes forward, as BPF requires."""
    labels, plain = {}, []
    for i, ins in enumerate(code):
        if isinstance(ins[0], str):
            labels[ins[0]] = i
            ins = ins[1:]
        plain.append(ins)

    def offset(target: Any, at: int) -> int:
        return labels[target] - at - 1 if isinstance(target, str) else int(target)

    out = []
    for i, (op, jt, jf, k) in enumerate(plain):
        k = offset(k, i) if op == _JA else k
        out.append((op, offset(jt, i), offset(jf, i), k))
        assert 0 <= out[-1][1] < 256 and 0 <= out[-1][2] < 256, "a jump BPF cannot make"
    return out
