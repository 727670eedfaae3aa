"""A guest's run with no Python in the guest: planned, compiled and judged on the host, run by
the static native executor in the guest's batch mode (executor.c), one exec, a fork per case.

One boot: the guest's cmd.sh execs ``mmapconf-exec --batch``, which answers the host's facts
query (its kernel, page size, syscalls, sysctls, filesystems: what the plan depends on), then
runs each case the host streams to it and streams back each case's records (runner/vm/batch.py).
The host plans and compiles with the guest's facts while the guest runs, decodes and judges the
records with the native executor's own decoder and the verdict (runner/engine/native/execute.py,
runner/engine/verdict.py), and writes the report as a run in the guest would have.

What the harness makes around a case is made in the guest by the batch mode: the scratch folder
(on the guest's disk or /dev/shm), a provision's mount (a tmpfs, or an image on the guest's
tmpfs formatted there with this host's mkfs, on a loop device) and files with their inode
flags, and the machine-wide set-up only a guest may have: sysctls, a swap area, the core_pattern
of provision.core; undone after each case. Besides the executor, the guest execs only that
mkfs.
"""

from __future__ import annotations

import argparse
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runner.engine import confine, libc, mounts
from runner.engine.backings import DIR_CAP, SHM_DIR, Backing
from runner.engine.native import confinement
from runner.engine.native.execute import not_compilable, program_for, replay
from runner.engine.native.program import NotCompilable, Program
from runner.engine.native.server import NativeArena
from runner.engine.provision import READ_BACK, guest_only
from runner.engine.verdict import judge_execution
from runner.lang.conditions import Facts
from runner.lang.loader import Suite, load_suite
from runner.lang.model import Case, Provision, Step
from runner.lang.ops import CONSTANTS
from runner.lang.selection import matches_keyword
from runner.lang.shipped import default_paths, shipped_baseline
from runner.report.baseline import Baseline
from runner.session import environment
from runner.session.options import RUN, add_parser_options, add_selection
from runner.session.pipeline import Output, run_session
from runner.session.runner import Item, Result, RunConfig, Runner, finish_result

from . import batch, qemu
from .batch import (
    BatchWriter,
    CaseEntry,
    FileEntry,
    GuestGone,
    MountEntry,
    OutputReader,
    SysctlEntry,
)

FACTS_WAIT_S = 120.0  # from qemu's start to the guest's facts: its boot, under TCG and load
# The guest is stuck when nothing came back for this long past the longest case's timeout.
RESULT_GRACE_S = 30.0
MAX_LANES = 16  # executor.c's
NO_RESULT = "no result from the guest"  # an item's reason when the guest stopped before it
GUEST_TMP = "/run/tmp"  # the guest's temp folder (the disk backing without a disk)
PROVISION_DIR = "/run/mmapconf"  # a tmpfs in the guest: provision mount points go here
# provision.core: relative, so the kernel writes the core in the dumping process's working
# folder (its scratch folder, the one writable place of its view), named by its pid in the
# case's PID namespace, which is what the case's fork and wait see
CORE_PATTERN = "core.%p"
# mount(8)'s names of the mount flags a case may ask for (ops.MOUNT_OPTION); the rest of its
# options are the filesystem's own (the data string)
_MS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "sync": 16, "dirsync": 128}
_MS |= {"noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}
_MS |= {"lazytime": 1 << 25}
_MS_CLEARS = {"rw", "suid", "dev", "exec", "atime", "diratime"}


class GuestFacts:
    """What the guest said of itself, as the plan needs it."""

    def __init__(self, pairs: list[tuple[str, str]]):
        one = dict(pairs)
        self.release, self.version, self.machine = one["release"], one["version"], one["machine"]
        self.page_size, self.uid = int(one["page_size"]), int(one["uid"])
        self.landlock_abi = int(one["landlock_abi"])
        self.loop_control = one["loop_control"] == "1"
        self.hugetlbfs = one.get("hugetlbfs") or None
        self.filesystems = {v for k, v in pairs if k == "filesystem"}
        self.syscalls = {n: v == "1" for n, v in _split(pairs, "syscall")}
        self.sysctls = dict(_split(pairs, "sysctl"))
        self.fstypes = {p: fs or None for p, fs in _split(pairs, "fstype")}
        self.cgroups = [v for k, v in pairs if k == "wall_cgroup"]
        self.wall_problems = [v for k, v in pairs if k == "wall_problem"]

        self.pid_ns = one.get("wall_pid_ns") == "1"
        self.template = one.get("wall_template") == "1"
        self.hidden = dict(_split(pairs, "wall_hidden"))

    def walls(self) -> confine.Confinement:
        """What the batch set up, as runner.engine.confine holds it for a worker: a PID
        namespace per case, the case cgroups, the template view (its fds are the guest's: here
        only whether there is one), the mount points under /dev it hides."""
        conf = confine.Confinement("guest", pid_ns=self.pid_ns, problems=list(self.wall_problems))
        conf.cgroups = {Path(p).parent.name: p for p in self.cgroups}
        conf.template = 0 if self.template else -1
        conf.hidden = dict(self.hidden)
        return conf

    def facts(self) -> Facts:
        return Facts(
            kernel=self.release,
            arch=self.machine,
            root=self.uid == 0,
            syscall_probe=lambda name: self.syscalls.get(name, False),
            sysctl=self.sysctls.get,
        )

    def backings(self, disk_dir: str) -> dict[str, list[Backing]]:
        """The backings of the guest, as runner.engine.backings finds them on a host."""
        shm = self.fstypes.get(SHM_DIR)
        disk_fs = self.fstypes.get(disk_dir)
        memfd = "" if self.syscalls.get("memfd_create") else "memfd_create is not available"
        huge = self.hugetlbfs
        return {
            # the guest's disk, as the guest harness's --dir has it
            "disk": [Backing("disk", "disk", disk_dir, disk_fs, cap=DIR_CAP)],
            "tmpfs": [
                Backing(
                    "tmpfs",
                    "tmpfs",
                    SHM_DIR,
                    shm,
                    "" if shm == "tmpfs" else f"{SHM_DIR} is not a tmpfs mount",
                )
            ],
            "memfd": [Backing("memfd", "memfd", None, "tmpfs", memfd)],
            "hugetlbfs": [
                Backing(
                    "hugetlbfs",
                    "hugetlbfs",
                    huge,
                    "hugetlbfs",
                    "" if huge else "no writable hugetlbfs is mounted",
                )
            ],
            "anon": [Backing("anon", "anon", None, None)],
        }

    def why_cannot_mount(self, fstype: str) -> str:
        """runner.engine.mounts.why_cannot_mount, for the guest (the image is made here)."""
        if self.uid != 0:
            return "mounting needs root"
        if fstype == "tmpfs":
            return ""
        if not self.loop_control:
            return "no loop devices (/dev/loop-control is missing in the guest)"
        if fstype not in self.filesystems:
            return f"the guest's kernel has no {fstype} (not in its /proc/filesystems)"
        try:
            mounts.tool(mounts.MKFS[fstype][0])
        except mounts.Unavailable as e:
            return str(e)
        return ""


def _split(pairs: list[tuple[str, str]], key: str) -> Iterator[tuple[str, str]]:
    for k, v in pairs:
        if k == key:
            name, _, value = v.partition("=")
            yield name, value


class GuestRunner(Runner):
    """Plans with the guest's facts, sends each item that runs to the guest, and judges what
    comes back; ``run_item`` is the pipeline's, so the report is made as on a host."""

    def __init__(
        self,
        config: RunConfig,
        guest: GuestFacts,
        disk_dir: str,
        job: Path,
        reader: OutputReader,
        alive: Callable[[], bool],
        provision_dir: str = PROVISION_DIR,
        machine_wide: bool = True,
    ):
        # not Runner.__init__: it probes this host
        self.config = config
        self.guest = guest
        self.kinds = guest.backings(disk_dir)
        self.facts = guest.facts()
        self.walls = guest.walls()
        self.job, self.reader, self.alive = job, reader, alive
        self.provision_dir = provision_dir
        self.machine_wide = machine_wide  # in a guest: sysctls, swapon, core_pattern are ours
        self.arena = NativeArena()
        self.queue: dict[int, list[int]] = {}  # id(item) -> its batch indexes, in order
        self.sent: dict[int, tuple[Case, Program | NotCompilable]] = {}
        self.outputs: dict[int, batch.CaseOutput] = {}
        self.gone = ""  # why the guest sends no more
        self.longest = 0.0  # the longest timeout of a case sent

    def in_guest(self) -> bool:
        return True

    def why_not(self, provision: Provision | None) -> str:
        if provision is None:
            return ""
        machine_wide = guest_only(provision) or ("provision.sysctls" if provision.sysctls else "")
        if machine_wide and not self.machine_wide:
            return f"{machine_wide}: machine-wide, made in a guest only (run --kernel)"
        if provision.swap_size is not None and not self.guest.loop_control:
            return "provision.swap: no loop devices (/dev/loop-control is missing in the guest)"
        if provision.memory_limit is not None:
            return "provision.memory: the batch guest does not make it (--guest-runner python)"
        if provision.mount is not None:
            why = self.guest.why_cannot_mount(provision.mount.fstype)
            if why:
                return f"provision.mount {provision.mount.fstype}: {why}"
        if any(f.inode_flags for f in provision.files.values()) and self.guest.uid != 0:
            return "provision.files: the harness sets inode flags as root (CAP_LINUX_IMMUTABLE)"
        return ""

    def submit(self, items: list[Item], writer: BatchWriter) -> None:
        """Compile every item that runs (in run order) and stream it to the guest."""
        for item in items:
            result, facts = self.new_result(item)
            if result.outcome != "skipped" or result.reason:
                continue
            assert item.case is not None and item.backing is not None
            index = len(self.sent)
            self.queue.setdefault(id(item), []).append(index)
            entry = self._entry(index, item.case, item.backing)
            try:
                program: Program | NotCompilable = program_for(
                    item.case, facts, entry.mount is not None or bool(entry.scratch)
                )
            except NotCompilable as e:
                program = e
            self.sent[index] = (item.case, program)
            self.longest = max(self.longest, item.case.timeout)
            if isinstance(program, Program):
                entry.program = program.words
                writer.case(entry)

    def place(self, index: int, case: Case, backing: Backing) -> tuple[str, MountEntry | None, str]:
        """Where case INDEX runs: the scratch folder the guest makes ('' for none), the mount it
        makes, and the folder the case is given (either of them, or '' for none)."""
        p = case.provision
        # a core needs a folder to land in, whatever the backing
        base = backing.dir or (GUEST_TMP if p is not None and p.core is not None else None)
        scratch = f"{base}/mmapconf-guest-{index}" if base else ""
        mount = None
        if p is not None and p.mount is not None:
            mount = self._mount(index, p.mount.fstype, p.mount.options, p.mount.size)
        return scratch, mount, mount.point if mount else scratch

    def _entry(self, index: int, case: Case, backing: Backing) -> CaseEntry:
        p = case.provision
        scratch, mount, folder = self.place(index, case, backing)
        files = [
            FileEntry(name, f.data, f.mode, f.size, f.inode_flags)
            for name, f in (p.files.items() if p else [])
        ]
        spec = confinement.spec(folder or None, self.guest.landlock_abi, self.guest.machine)
        spec = confinement.view(self.walls, folder or None) + spec
        entry = CaseEntry(index, case.timeout, scratch, b"", spec, mount, files)
        if p is not None:
            entry.sysctls = machine_settings(p)
            if p.swap_size is not None:
                entry.swap_image = f"{self.provision_dir}/swap-{index}.img"
                entry.swap_size = p.swap_size
        return entry

    def _mount(self, index: int, fstype: str, options: str, size: int | None) -> MountEntry:
        flags, data = mount_options(options)
        point = f"{self.provision_dir}/provision-{index}"
        if fstype == "tmpfs":
            return MountEntry(fstype, point, flags, data)
        image = f"{self.provision_dir}/provision-{index}.img"
        tool, *rest = mounts.MKFS[fstype]
        mkfs = (mounts.tool(tool), *rest, image)
        return MountEntry(fstype, point, flags, data, image, size or mounts.IMAGE_SIZE, mkfs)

    def run_item(self, item: Item) -> Result:
        result, _ = self.new_result(item)
        if result.outcome != "skipped" or result.reason:
            return result
        index = self.queue[id(item)].pop(0)
        case, program = self.sent[index]
        start = time.monotonic()
        if isinstance(program, NotCompilable):
            run = not_compilable(program)
            return finish_result(
                result, run, judge_execution(run, self.arena, case.timeout), [], start
            )
        out = self._output(index)
        start = time.monotonic()  # the case's duration is its time in the guest, not our wait
        if out is None:
            result.outcome, result.reason = "error", f"{NO_RESULT}: {self.gone}"
            return result
        if out.setup_error:  # set-up, or the fork server broke
            result.outcome, result.reason = "error", out.setup_error
            return result
        self.arena.load(out.arena)
        run = replay(program, out.run, self.arena, out.refused)
        run.memory_limit_hit = out.memory_limit_hit
        verdict = judge_execution(run, self.arena, case.timeout)
        leftover = [out.leftover] if out.leftover else []
        return finish_result(result, run, verdict, leftover, start - out.took_s)

    def _output(self, index: int) -> batch.CaseOutput | None:
        while index not in self.outputs and not self.gone:
            # whichever case the guest runs now (with lanes, another than INDEX) ends by then
            deadline = time.monotonic() + self.longest + RESULT_GRACE_S
            try:
                kind, payload = self.reader.next(deadline, self.alive)
            except GuestGone as e:
                self.gone = str(e)
                break
            if kind == batch.RESULT:
                try:
                    out = batch.parse_result(payload)
                    if len(out.arena) > NativeArena.SIZE:
                        raise ValueError(f"an arena of {len(out.arena)} bytes")
                except (struct.error, ValueError) as e:
                    self.gone = f"a result that does not decode ({e})"
                    break
                self.outputs[out.index] = out
            elif kind == batch.DONE:
                self.gone = "the guest's executor ended before it"
        return self.outputs.pop(index, None)

    def close(self) -> None:
        self.arena.close()


def machine_settings(p: Provision) -> list[SysctlEntry]:
    """The /proc/sys files P has the guest write: its sysctls, and for core dumps the pattern."""
    out = [
        SysctlEntry("/proc/sys/" + key.replace(".", "/"), value, key in READ_BACK)
        for key, value in p.sysctls.items()
    ]
    if p.core is not None:
        out.append(SysctlEntry("/proc/sys/kernel/core_pattern", CORE_PATTERN, True))
    return out


def mount_options(options: str) -> tuple[int, str]:
    """mount(8)'s split of OPTIONS: the MS_* flags, and the filesystem's data string."""
    flags, data = 0, []
    for opt in filter(None, options.split(",")):
        if opt in _MS:
            flags |= _MS[opt]
        elif opt not in _MS_CLEARS:
            data.append(opt)
    return flags, ",".join(data)


def guest_options(guest_argv: list[str]) -> argparse.Namespace:
    """GUEST_ARGV (``run PATHS... [options]``) parsed as ``mmapconf run`` parses it."""
    p = argparse.ArgumentParser(prog="mmapconf run")
    add_selection(p)
    add_parser_options(p.add_argument, RUN)
    return p.parse_args(guest_argv[1:] if guest_argv[:1] == ["run"] else guest_argv)


def load_guest_suite(args: argparse.Namespace) -> tuple[Suite, Baseline | None]:
    paths, shipped = (args.paths, None) if args.paths else default_paths()
    suite = load_suite(paths)
    if args.keyword:
        suite.cases = [c for c in suite.cases if matches_keyword(args.keyword, c)]
    path = None if args.no_baseline else args.baseline
    if path is None and shipped is not None and not args.no_baseline:
        path = shipped_baseline()
    return suite, Baseline.load(path, args.strict) if path else None


def sysctl_keys(cases: list[Case]) -> list[str]:
    """Every sysctl a case's ``requires`` or a step's ``when`` asks about."""
    keys: set[str] = set()
    for case in cases:
        keys |= set((case.requires or {}).get("sysctl") or {})
        for steps in (case.setup, *case.processes.values()):
            for step in _walk(steps):
                for e in step.expect:
                    keys |= set((e.when or {}).get("sysctl") or {})
    return sorted(keys)


def _walk(steps: list[Step]) -> Iterator[Step]:
    for s in steps:
        yield s
        yield from _walk(s.steps)


def guest_environment(
    guest: GuestFacts, backings: list[Backing], argv: list[str]
) -> dict[str, Any]:
    """environment.capture's facts, the guest's where they are the guest's. ``python`` is the
    interpreter that planned and judged the run (on the host); the confinement is what the
    batch made in the guest for its fork servers (the walls a harness's worker makes), besides
    Landlock, seccomp and rlimits."""
    env = environment.capture(backings, argv, guest.walls().status())
    env.update(
        kernel_release=guest.release,
        kernel_version=guest.version,
        machine=guest.machine,
        page_size=guest.page_size,
        uid=guest.uid,
        guest_runner="the native executor's batch mode: no Python in the guest; "
        "planned, compiled and judged on the host",
    )
    return env


def plannable(page_size: int) -> str:
    """Why programs compiled here cannot run on a guest of PAGE_SIZE ('' when they can)."""
    if page_size != CONSTANTS["PAGE"]:
        return (
            f"the guest's page size ({page_size}) is not this host's ({CONSTANTS['PAGE']}), "
            "which the programs were compiled with"
        )
    return ""


def run_batch(
    spec: qemu.GuestSpec, guest_argv: list[str], timeout: float
) -> tuple[qemu.BootResult, Path | None]:
    """Boot SPEC, whose cmd.sh runs the batch, and run GUEST_ARGV (``run ... --dir D
    --report-dir JOB``, as a run in the guest would get it) through it; returns the boot and
    the report written (None when the guest never told its facts)."""
    writer = BatchWriter(spec.job / batch.IN_NAME)
    reader = OutputReader(spec.job / batch.OUT_NAME)
    try:
        with qemu.Guest(spec) as guest:
            report = drive(guest_argv, spec.job, writer, reader, guest.alive)
            return guest.wait(timeout), report
    finally:
        writer.close()
        reader.close()


def handshake(
    writer: BatchWriter,
    reader: OutputReader,
    alive: Callable[[], bool],
    sysctls: list[str],
    paths: list[str],
    lanes: int = 1,
    walls: bool = True,
) -> GuestFacts | None:
    """The facts query (SYSCTLS, the filesystems of PATHS and /dev/shm) and the guest's answer;
    None, with the batch ended, when it never came."""
    writer.facts_query(dict(libc.SYSCALLS), sysctls, [*paths, SHM_DIR], lanes, walls)
    try:
        kind, payload = reader.next(time.monotonic() + FACTS_WAIT_S, alive)
    except GuestGone:
        kind, payload = 0, b""
    if kind != batch.FACTS:
        writer.end()
        return None
    return GuestFacts(batch.parse_facts(payload))


def drive(
    guest_argv: list[str],
    job: Path,
    writer: BatchWriter,
    reader: OutputReader,
    alive: Callable[[], bool],
    provision_dir: str = PROVISION_DIR,
    walls: bool = True,
) -> Path | None:
    """The host's part of a batch run whose executor is alive while ALIVE() says so: the facts,
    the plan, the programs, the judging, the report in JOB (None without the facts). WALLS:
    the executor makes the case cgroups (in a guest; False where it runs on a host)."""
    args = guest_options(guest_argv)
    disk_dir = args.dir[0] if args.dir else GUEST_TMP
    suite, baseline = load_guest_suite(args)  # while the guest boots
    lanes = min(args.jobs, MAX_LANES)
    facts = handshake(writer, reader, alive, sysctl_keys(suite.cases), [disk_dir], lanes, walls)
    if facts is None:
        return None
    config = RunConfig(args.backing, [disk_dir])
    runner = GuestRunner(config, facts, disk_dir, job, reader, alive, provision_dir, walls)
    items = runner.plan(suite)
    runner.gone = plannable(facts.page_size)
    try:
        runner.submit([] if runner.gone else items * args.repeat, writer)
    finally:
        writer.end()
    env = guest_environment(facts, runner.backings, ["mmapconf", *guest_argv])
    output = Output(job, args.format, baseline, args.full_traces)
    return run_session(runner, items, env, output, repeat=args.repeat).path
