"""The kernel's walls around one case: a PID namespace, cgroups, and a read-only mount view.

What can be made once is made once per process that runs cases (a worker, or the harness
itself): the cgroups and a *template* mount namespace (the whole tree read-only, nodev,
nosuid; ``/dev`` a read-only tmpfs holding only the four devices of the case language). The
native fork server is put in the cgroups and handed the template once (``host``); per case it
forks the case's init (executor.c ``case_init``) as pid 1 of a fresh PID namespace, in a private
copy of the template with the scratch folder the one writable place (a fresh, size-limited tmpfs
for scratch folders the reduced ``/dev`` hides, ``fresh_options``) and ``/proc`` for the case's
own PID namespace. When the init dies the kernel kills every process of the namespace, setsid
or not; the namespace and its mounts vanish with it: nothing to undo.

Nothing is made on the host but the cgroup folders, scratch folders and each process's own disk
instance (runner/engine/mounts.py), all named after the process that owns them
(``pid.starttime``); ``sweep()`` removes those whose owner is gone, so what a SIGKILLed worker or
harness left the next sweep removes.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from runner.engine import mounts
from runner.engine.arena import MAX_CASE_PROCESSES
from runner.engine.backings import SCRATCH_RE, remove_scratch
from runner.engine.owner import OWNER_RE, owner_alive, owner_tag

CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_REC, _MS_PRIVATE = 32, 0x4000, 1 << 18
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV = 1, 2, 4
_AT_FDCWD, _AT_RECURSIVE = -100, 0x8000
_SYS = {"mount_setattr": 442}  # the same on every architecture

CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_DIR = "mmapconf"  # under each controller: one folder per owner
# The case's init, its processes, and one more, so that the case's own count (which ends the case
# with a clear error) acts first; the cgroup stops what goes around it (a raw fork).
PIDS_MAX = MAX_CASE_PROCESSES + 2
CASE_MEMORY = 1 << 30  # memory cgroup limit of one case (its tmpfs and memfd pages included)
KILL_WAIT_S = 2.0  # how long a removal waits for what it killed in a cgroup to be gone
CASE_CGROUP = "case"  # child of an owner's memory cgroup: a case's own limit (provision.memory)
CASE_TMPFS = 256 << 20  # size of the fresh tmpfs a tmpfs-backed case writes in
DEVICES = {"null": 3, "zero": 5, "random": 8, "urandom": 9}  # char 1:N, the language's devices

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]


class _MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("set", "clr", "propagation", "userns_fd")]


def _check(rc: int, what: str) -> int:
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return rc


def _syscall(name: str, *args: object) -> int:
    return _check(_libc.syscall(_SYS[name], *args), name)


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    enc = [s.encode() if s is not None else None for s in (src, target, fstype, data or None)]
    _check(_libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")


@dataclass
class Confinement:
    """What one process that runs cases set up once; ``status`` goes into the report."""

    owner: str
    pid: int = 0
    pid_ns: bool = False
    cgroups: dict[str, str] = field(default_factory=dict)  # controller -> this owner's folder
    template: int = -1  # fd of the template mount namespace
    template_root: int = -1  # fd of the root its builder had there (a chroot in a qemu guest)
    hidden: dict[str, str] = field(default_factory=dict)  # mount point the reduced /dev hides -> fs
    problems: list[str] = field(default_factory=list)
    joined: dict[str, str] = field(default_factory=dict)  # controller -> where we came from
    hosted: set[int] = field(default_factory=set)  # harness processes in the case cgroups

    def adopt(self) -> None:
        """Move this process (a dedicated -n worker) into the case cgroups once, so that each
        case's init is born there: moving a process between v1 cgroups waits for an RCU grace
        period, the largest cost of a case's confinement otherwise. The worker never forks but
        inits (and its fork server); the OOM killer takes case processes before it (the init
        gives them the highest score, oom_score_adj 1000)."""
        for controller in self.cgroups:
            self.joined[controller] = _own_cgroup(controller)
        self.host(os.getpid())

    def host(self, pid: int) -> None:
        """Put a harness process (this worker, a fork server) in the case cgroups once, for
        its inits to be born there; the pids limit grows by one for it, so that a case always
        has exactly PIDS_MAX tasks. A child of an adopted worker is born there already."""
        self.hosted.add(pid)
        for controller, path in self.cgroups.items():
            if controller == "pids":
                _write(path, "pids.max", str(PIDS_MAX + len(self.hosted)))
            if not self.joined or pid == os.getpid():
                _write(path, "cgroup.procs", str(pid))

    def origins(self) -> list[str]:
        """The cgroup.procs files of the cgroups a hosted process came from, for it to go back
        to before it exits: a dead process stays in its cgroup until reaped, and where no one
        reaps it (an orphan on a machine whose init does not), it would keep ours busy."""
        return [
            os.path.join(self.joined.get(c) or _own_cgroup(c), "cgroup.procs") for c in self.cgroups
        ]

    def unhost(self, pid: int) -> None:
        """A hosted process has ended: its task goes from the pids limit."""
        self.hosted.discard(pid)
        if "pids" in self.cgroups:
            with contextlib.suppress(OSError):  # the cgroup is gone already
                _write(self.cgroups["pids"], "pids.max", str(PIDS_MAX + len(self.hosted)))

    def status(self) -> dict[str, str]:
        return {
            "pid_namespace": "per case" if self.pid_ns else "unavailable: process group only",
            "pids_limit": f"pids cgroup, {PIDS_MAX} tasks"
            if "pids" in self.cgroups
            else f"unavailable: the case counts its own forks ({MAX_CASE_PROCESSES})",
            "memory_limit": f"memory cgroup, {CASE_MEMORY >> 20} MiB"
            if "memory" in self.cgroups
            else "unavailable: RLIMIT_AS per process only",
            "mounts": "read-only root, reduced /dev, scratch the only writable place"
            if self.template >= 0
            else "unavailable: Landlock only",
            "tmpfs_scratch": f"fresh tmpfs of {CASE_TMPFS >> 20} MiB"
            if self.template >= 0
            else "shared /dev/shm",
            **({"problems": "; ".join(self.problems)} if self.problems else {}),
        }

    def close(self) -> None:
        """Remove what this process made (only in the process that made it)."""
        if self.pid != os.getpid():
            return
        for fd in (self.template, self.template_root):
            if fd >= 0:
                os.close(fd)
        self.template = self.template_root = -1
        for came_from in self.joined.values():
            with contextlib.suppress(OSError):
                _write(came_from, "cgroup.procs", "0")
        for path in self.cgroups.values():
            _forget_oom_file(path)
            _remove_cgroup(path)
        self.cgroups.clear()


_current: Confinement | None = None


def current() -> Confinement:
    """This process's confinement, set up at its first use (a forked worker makes its own)."""
    global _current
    if _current is None or _current.pid != os.getpid():
        _current = _setup(owner_tag())
        atexit.register(_at_exit, _current)  # a forked worker calls close itself before _exit
    return _current


@contextlib.contextmanager
def only(walls: set[str]) -> Iterator[None]:
    """For the benchmark: run cases with only some of this process's walls (``pid_ns``,
    ``cgroups``, ``mounts``); Landlock and seccomp stay. What it set up stays set up."""
    global _current
    full = current()
    _current = replace(
        full,
        pid_ns=full.pid_ns and "pid_ns" in walls,
        cgroups=full.cgroups if "cgroups" in walls else {},
        joined=full.joined if "cgroups" in walls else {},
        template=full.template if "mounts" in walls else -1,
    )
    try:
        yield
    finally:
        _current = full


def _at_exit(conf: Confinement) -> None:
    conf.close()
    sweep([])  # and what a worker of ours killed before its own clean-up left


def _setup(owner: str) -> Confinement:
    conf = Confinement(owner, os.getpid())
    if os.geteuid() != 0:
        conf.problems.append("not root")
        return conf
    conf.pid_ns = _probe_pid_ns(conf)
    for controller in ("pids", "memory"):
        with contextlib.suppress(OSError):
            conf.cgroups[controller] = _make_cgroup(controller, owner)
    if len(conf.cgroups) < 2:
        conf.problems.append("no writable pids/memory cgroup v1 hierarchy")
    try:
        conf.hidden = _hidden_mounts()
        conf.template, conf.template_root = _make_template(conf.hidden)
    except OSError as e:
        conf.problems.append(f"no mount namespace: {e}")
    return conf


def _probe_pid_ns(conf: Confinement) -> bool:
    """Can we make PID namespaces (the fork server makes one per case)? Tried once, undone."""
    own = -1
    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
        _check(_libc.setns(own, CLONE_NEWPID), "setns back to our PID namespace")
    except OSError as e:
        conf.problems.append(str(e))
        return False
    finally:
        if own >= 0:
            os.close(own)
    return True


# -- cgroups --------------------------------------------------------------------------------
def _cgroup_parents(controller: str) -> list[str]:
    """Where our cgroups go: beneath the cgroup we run in (so a case stays inside whatever
    limits whoever started us set), and, for the sweep, the hierarchy's root too. A process
    that finds itself in an owner's cgroup of ours (a fork of an adopted worker) puts its own
    beside that owner's, never inside it, where the owner's removal could not take it."""
    own = _own_cgroup(controller).split(os.sep)
    for i in range(len(own) - 1):
        if own[i] == CGROUP_DIR and OWNER_RE.match(own[i + 1]):
            own = own[:i]
            break
    top = os.path.join(CGROUP_ROOT, controller, CGROUP_DIR)
    return list(dict.fromkeys([os.path.join(os.sep.join(own), CGROUP_DIR), top]))


def _make_cgroup(controller: str, owner: str) -> str:
    parent = _cgroup_parents(controller)[0]
    os.makedirs(parent, exist_ok=True)
    path = os.path.join(parent, owner)
    os.makedirs(path, exist_ok=True)
    if controller == "pids":
        _write(path, "pids.max", str(PIDS_MAX))
    else:
        _write(path, "memory.limit_in_bytes", str(CASE_MEMORY))
        with contextlib.suppress(OSError):  # only with swap accounting
            _write(path, "memory.memsw.limit_in_bytes", str(CASE_MEMORY))
    return path


def why_no_memory_limit() -> str:
    """Why a case cannot have a memory cgroup of its own here ('' when it can)."""
    if os.geteuid() != 0:
        return "not root"
    try:
        own = _own_cgroup("memory")
    except OSError:
        return "no cgroup v1 memory controller"
    return "" if os.access(own, os.W_OK) else f"{own} is not writable"


@contextlib.contextmanager
def case_memory(conf: Confinement, server: int, limit: int | None) -> Iterator[Confinement]:
    """CONF with the case's own memory cgroup, LIMIT bytes, while the block runs (CONF itself
    when LIMIT is None). It is a child of this owner's memory cgroup, so the owner's limit holds
    as well (v1 with use_hierarchy; the validator keeps LIMIT <= CASE_MEMORY besides). The fork
    SERVER moves into it, so that the case's init is born there, and back when the block ends,
    whatever the outcome; the cgroup is then removed (a sweep removes it with its owner's)."""
    parent = conf.cgroups.get("memory")
    if limit is None or parent is None:
        yield conf
        return
    path = os.path.join(parent, CASE_CGROUP)
    os.makedirs(path, exist_ok=True)
    try:
        _write(path, "memory.limit_in_bytes", str(limit))
        with contextlib.suppress(OSError):  # only with swap accounting
            _write(path, "memory.memsw.limit_in_bytes", str(limit))
        _write(path, "cgroup.procs", str(server))
        yield replace(conf, cgroups={**conf.cgroups, "memory": path})
    finally:
        with contextlib.suppress(ProcessLookupError):  # the server ended meanwhile
            _write(parent, "cgroup.procs", str(server))
        _forget_oom_file(path)
        _remove_cgroup(path)


def _own_cgroup(controller: str) -> str:
    """The folder of the v1 ``controller`` cgroup this process is in."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return os.path.join(CGROUP_ROOT, controller, path.lstrip("/"))
    raise OSError(0, f"not in a {controller} cgroup")


def _write(folder: str, name: str, value: str) -> None:
    fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _remove_cgroup(path: str, tries: int = 50) -> bool:
    """Kill what is left in it and its children (a SIGKILLed owner's case), then remove them,
    the deepest first; True when it is gone. A cgroup that still holds an unreaped zombie
    (where init does not reap) stays busy: a later sweep tries again."""
    end = time.monotonic() + KILL_WAIT_S  # one bound for the whole removal, not one per try
    for folder, _, _ in os.walk(path, topdown=False):
        for _ in range(tries):
            try:
                os.rmdir(folder)
                break
            except FileNotFoundError:
                break
            except OSError:
                _kill_members(folder, end)
                time.sleep(0.01)
    return not os.path.exists(path)


def _kill_members(folder: str, end: float) -> None:
    """SIGKILL what is in FOLDER's cgroup and wait, until END at most, for it to be gone: on a
    loaded machine a killed PID namespace takes longer to end than a few tries of rmdir would
    wait. A zombie is not waited for (where init does not reap, it stays)."""
    while True:
        live = [pid for pid in _members(folder) if _alive(pid)]
        if not live or time.monotonic() > end:
            return
        for pid in live:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        time.sleep(0.01)


def _members(folder: str) -> list[int]:
    try:
        with open(os.path.join(folder, "cgroup.procs")) as f:
            return [int(pid) for pid in f.read().split()]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    """Not gone and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


# memory.oom_control of each memory cgroup read so far, kept open: it is read twice per case, and
# a pread of the open file (which the kernel generates anew at offset 0) costs 3 us where opening
# it by its path each time cost 80 us. A cgroup's file is closed before the cgroup is removed.
_oom_files: dict[str, int] = {}


def memory_failures(conf: Confinement) -> int:
    """How many processes the OOM killer took in the case cgroup so far (``oom_kill`` of v1's
    memory.oom_control: the limit was reached and nothing could be reclaimed)."""
    path = conf.cgroups.get("memory")
    if not path:
        return 0
    with contextlib.suppress(OSError, ValueError):
        fd = _oom_files.get(path)
        if fd is None:
            fd = os.open(os.path.join(path, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            _oom_files[path] = fd
        for line in os.pread(fd, 4096, 0).splitlines():
            key, _, value = line.partition(b" ")
            if key == b"oom_kill":
                return int(value)
    return 0


def _forget_oom_file(path: str) -> None:
    """Close PATH's memory.oom_control before the cgroup goes (a new one there is read anew)."""
    fd = _oom_files.pop(path, None)
    if fd is not None:
        os.close(fd)


# -- the template mount namespace -----------------------------------------------------------
def _hidden_mounts() -> dict[str, str]:
    """Mount points under /dev (shm, hugepages, ...) that the reduced /dev covers, with their
    filesystem type: a scratch folder on one gets a fresh instance there."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split()[4].replace("\\040", " ")
            if point.startswith("/dev/") and right.split()[0] in ("tmpfs", "hugetlbfs"):
                out[point] = right.split()[0]
    return out


def _make_template(hidden: dict[str, str]) -> tuple[int, int]:
    """Build the read-only view in a short-lived child; keep its mount namespace, and the root
    it had in there, by fd."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.close(go_w)
            _build_template(hidden)
            os.write(ready_w, b"1")
            os.read(go_r, 1)  # stay until the harness holds the namespace
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(0, "the template mount namespace could not be built")
        ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        return ns, os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


def _build_template(hidden: dict[str, str]) -> None:
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing we mount reaches the host
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV, 0, 0, 0)
    _syscall("mount_setattr", _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(attr), 32)
    _mount("mmapconf-dev", "/dev", "tmpfs", _MS_NOSUID | _MS_NOEXEC, "size=64k,mode=755")
    for name, minor in DEVICES.items():
        _check(_libc.mknod(f"/dev/{name}".encode(), 0o20666, os.makedev(1, minor)), "mknod")
    for point in hidden:
        os.makedirs(point, mode=0o1777, exist_ok=True)
    _mount(None, "/dev", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NOEXEC)


def hidden_parent(conf: Confinement, scratch: str | None) -> str | None:
    """The mount point the reduced /dev hides that holds ``scratch`` (/dev/shm), if any."""
    if not scratch:
        return None
    return next((p for p in conf.hidden if scratch.startswith(p.rstrip("/") + "/")), None)


def fresh_options(fstype: str) -> str:
    """The mount options of a case's own tmpfs (size-limited) or hugetlbfs."""
    return f"size={CASE_TMPFS},mode=1777" if fstype == "tmpfs" else "mode=1777"


# -- leftovers of owners that are gone ------------------------------------------------------
def sweep(scratch_dirs: list[str]) -> list[str]:
    """Remove cgroups, scratch folders and disk instances (mounts.sweep_instances) whose owner
    process no longer exists; return them.

    All are named after their owner's ``pid.starttime`` (scratch: ``mmapconf-<tag>-*``), so a
    folder of a live run, even one started after a pid was reused, is never touched.
    """
    removed = [str(p) for p in mounts.sweep_instances()]
    for controller in ("pids", "memory"):
        with contextlib.suppress(OSError):
            for parent in _cgroup_parents(controller):
                for tag in mounts.names_in(parent):
                    path = os.path.join(parent, tag)
                    dead = OWNER_RE.match(tag) and not owner_alive(tag)
                    if dead and _remove_cgroup(path, tries=2):
                        removed.append(path)
    for d in dict.fromkeys(scratch_dirs):
        for name in mounts.names_in(d):
            m = SCRATCH_RE.match(name)
            if m and not owner_alive(m.group(1)):
                with contextlib.suppress(OSError):
                    remove_scratch(os.path.join(d, name))
                    removed.append(os.path.join(d, name))
    return removed
