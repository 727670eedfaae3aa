"""The typed form of a validated case: what the executor runs and the reports describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.lang.ops import CASE_ADDRESS_SPACE_PAGES, CONSTANTS


@dataclass(frozen=True)
class Expect:
    """One expectation entry: success, an errno, a signal, or a value (after ``when`` holds)."""

    kind: str  # success | errno | signal | value
    when: dict[str, Any] | None = None
    errno: tuple[str, ...] = ()
    signal: str | None = None
    si_code: str | None = None
    si_addr: Any = None  # an expression, resolved in the process
    value: Any = None
    ip: Any = None  # the faulting instruction's address: an expression, or comparators of them

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "errno":
            out["errno"] = list(self.errno)
        elif self.kind == "signal":
            out.update(signal=self.signal, si_code=self.si_code)
            if self.ip is not None:
                out["ip"] = self.ip
        return out


SUCCESS = Expect("success")


@dataclass
class Step:
    op: str
    args: dict[str, Any]
    label: str  # "5", or "3.2" inside a fork or repeat
    line: int
    bind: str | None = None
    expect: tuple[Expect, ...] = (SUCCESS,)
    note: str = ""
    steps: list[Step] = field(default_factory=list)  # for fork, repeat and thread


@dataclass(frozen=True)
class CoreProvision:
    """Core dumps for the case's processes: RLIMIT_CORE (bytes, -1: unlimited) and the
    coredump_filter they start with (-1: the kernel's default)."""

    limit: int
    filter: int = -1


@dataclass(frozen=True)
class MountProvision:
    """A fresh mount the harness makes for the case's files (its scratch folder)."""

    fstype: str
    options: str = ""  # mount -o
    size: int | None = None  # of the image, for the filesystems that need one


@dataclass(frozen=True)
class FileProvision:
    """A file the harness makes in the scratch folder before the case (the case opens it)."""

    data: bytes = b""
    size: int | None = None  # ftruncate to this after writing data
    mode: int = 0o600
    inode_flags: int = 0  # FS_*_FL, set after writing, cleared after the case


@dataclass(frozen=True)
class Provision:
    mount: MountProvision | None = None
    files: dict[str, FileProvision] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)  # set in a guest only (--kernel)
    memory_limit: int | None = None  # bytes: the case runs in its own memory cgroup
    swap_size: int | None = None  # bytes of a swap area the harness makes (in a guest only)
    core: CoreProvision | None = None  # core dumps into the scratch folder (in a guest only)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.mount:
            out["mount"] = dict(self.mount.__dict__)
        if self.files:
            out["files"] = {
                n: {"size": f.size, "mode": f.mode, "inode_flags": f.inode_flags}
                for n, f in self.files.items()
            }
        if self.sysctls:
            out["sysctls"] = dict(self.sysctls)
        if self.memory_limit is not None:
            out["memory"] = {"limit": self.memory_limit}
        if self.swap_size is not None:
            out["swap"] = {"size": self.swap_size}
        if self.core is not None:
            out["core"] = dict(self.core.__dict__)
        return out


@dataclass
class Case:
    id: str
    title: str
    file: str
    line: int
    claim: str | None = None
    refs: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    requires: dict[str, Any] | None = None
    backings: list[str] | None = None
    timeout: float = 10.0
    address_space: int | None = None  # RLIMIT_AS headroom in bytes; None: the engine's default
    setup: list[Step] = field(default_factory=list)
    processes: dict[str, list[Step]] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    uses_file: bool = False
    provision: Provision | None = None
    # names this architecture lacks, with the architectures that define them: the case skips here
    foreign_names: dict[str, list[str]] = field(default_factory=dict)
    # steps run in a fresh boot on the disk a power_cut step left (docs/durability.md)
    after_reboot: list[Step] = field(default_factory=list)

    @property
    def address_space_pages(self) -> int:
        """The RLIMIT_AS headroom of the case's processes, in pages."""
        if self.address_space is None:
            return CASE_ADDRESS_SPACE_PAGES
        return -(-self.address_space // CONSTANTS["PAGE"])

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def power_cut(self) -> Step | None:
        """The case's power_cut step (the validator allows one, at the top of a process)."""
        for steps in self.processes.values():
            for step in steps:
                if step.op == "power_cut":
                    return step
        return None

    @property
    def uses_machine_code(self) -> bool:
        """Whether a step runs machine code of the case's own (``call``)."""
        todo = [*self.setup, *(s for steps in self.processes.values() for s in steps)]
        while todo:
            step = todo.pop()
            if step.op == "call":
                return True
            todo += step.steps
        return False
