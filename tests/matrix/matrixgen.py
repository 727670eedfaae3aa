"""The self-test matrix: every expectation kind in every process context, right and wrong.

Each cell is two YAML cases: the right expectation (must pass) and a wrong one (must fail, and
the reason must name the process, the step and both sides). ``python tests/matrix/matrixgen.py``
writes them to tests/matrix/generated/, one file per kind; test_matrix.py checks that what is
committed is what this writes, runs it through ``mmapconf run`` and judges every cell.

What the right expectations say is what tests/matrix/probe.c observes (each kind's ``truth``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "generated"

Step = dict[str, Any]
RW_ANON = {"length": "PAGE", "prot": "PROT_READ|PROT_WRITE", "fd": -1}
_MAP_RW = {"mmap": {**RW_ANON, "flags": "MAP_PRIVATE|MAP_ANONYMOUS"}, "as": "m"}
_MAP_RO = {
    "mmap": {**RW_ANON, "prot": "PROT_READ", "flags": "MAP_PRIVATE|MAP_ANONYMOUS"},
    "as": "m",
}
_STORE_42 = {"store": {"addr": "m", "format": "<i", "values": [42]}}
_STORE_RO = {"store": {"addr": "m + 5", "hex": "01"}}
_SEGV_ACCERR = {"signal": "SIGSEGV", "si_code": "SEGV_ACCERR", "si_addr": "m + 5"}


@dataclass(frozen=True)
class Kind:
    """One kind of expectation: the step that observes it, its right and a wrong expectation,
    and how the failure of the wrong one reads (``{page}``-relative offsets filled in)."""

    name: str
    prelude: list[Step]
    check: Step
    right: dict[str, Any]
    wrong: dict[str, Any]
    expected: str  # the wrong expectation as the failure shows it
    observed: str  # the observation as the failure shows it
    truth: list[str]  # what probe.c prints for this kind
    refs: list[str]
    death: str | None = None  # the signal the check step dies by

    def message(self, proc: str, label: str, page: int) -> str:
        op = next(k for k in self.check if k != "as")
        shown = {"page": page, "page7": page + 7}
        return (
            f"{proc} step {label} ({op}): expected {self.expected.format(**shown)}, "
            f"got {self.observed.format(**shown)}"
        )


KINDS = [
    Kind(
        "value",
        [_MAP_RW, _STORE_42],
        {"load": {"addr": "m", "format": "<i"}},
        {"value": 42},
        {"value": 43},
        "value 43",
        "success, value 42",
        ["value 42"],
        ["a store then a load of the same bytes reads them back (man 2 mmap, MAP_PRIVATE)"],
    ),
    Kind(
        "bytes",
        [_MAP_RW, {"store": {"addr": "m", "hex": "4142"}}],
        {"load": {"addr": "m", "length": 2}},
        {"value": {"hex": "4142"}},
        {"value": {"hex": "4143"}},
        "value {{hex: '4143'}}",
        "success, value {{hex 4142}} (2 bytes)",
        ["bytes 4142"],
        ["man 2 mmap: the mapping reads back what was stored"],
    ),
    Kind(
        "fields",
        # shared: each its own shmem object, so a repeat's next mapping never merges with it
        [{**_MAP_RW, "mmap": {**RW_ANON, "flags": "MAP_SHARED|MAP_ANONYMOUS"}}],
        {"proc_maps": "m"},
        {"value": {"start": "m", "end": "m + PAGE", "perms": "rw-s"}},
        {"value": {"perms": "rw-p"}},
        "value {{perms: 'rw-p'}}",
        "success, value {{perms: 'rw-s'}}",
        ["fields perms rw-s"],
        ["man 5 proc_pid_maps: perms r, w, x, p (private) or s (shared)"],
    ),
    Kind(
        "comparators",
        [_MAP_RW, _STORE_42],
        {"load": {"addr": "m", "format": "<i"}},
        {"value": {"eq": 42, "ne": 0, "gt": 41, "ge": 42, "lt": 43, "le": 42}},
        {"value": {"gt": 41, "lt": 42}},
        "value {{gt: 41, lt: 42}}",
        "success, value 42",
        ["comparators 42"],
        ["docs/case-format.md, Expectations: comparators eq ne gt ge lt le"],
    ),
    Kind(
        "errno",
        [_MAP_RW],
        {"munmap": {"addr": "m + 1", "length": "PAGE"}},
        {"errno": "EINVAL"},
        {"errno": "ENOMEM"},
        "errno ENOMEM",
        "errno EINVAL",
        ["errno EINVAL"],
        ["man 2 munmap, EINVAL: addr is not a multiple of the page size"],
    ),
    Kind(
        "exit",
        [{"fork": {"steps": [{"sleep": {"ms": 1}}]}, "as": "x"}],
        {"wait": "x"},
        {"value": {"exit": 0}},
        {"value": {"exit": 1}},
        "value {{exit: 1}}",
        "success, value {{exit: 0}}",
        ["exit 0"],
        ["man 2 wait: WEXITSTATUS of a child that returned from its steps (exit 0)"],
    ),
    Kind(
        "signal",
        [_MAP_RO],
        _STORE_RO,
        {"signal": "SIGSEGV"},
        {"signal": "SIGBUS"},
        "SIGBUS",
        "SIGSEGV/SEGV_ACCERR at m+5",
        ["signal SIGSEGV SEGV_ACCERR offset 5", "signal wait SIGSEGV"],
        ["man 2 mprotect: an access that violates the protection generates SIGSEGV"],
        death="SIGSEGV",
    ),
    Kind(
        "si-code",
        [
            {
                "mmap": {**RW_ANON, "length": "2 * PAGE", "flags": "MAP_PRIVATE|MAP_ANONYMOUS"},
                "as": "m",
            },
            {"munmap": {"addr": "m + PAGE", "length": "PAGE"}},
        ],
        {"load": {"addr": "m + PAGE"}},
        {"signal": "SIGSEGV", "si_code": "SEGV_MAPERR"},
        {"signal": "SIGSEGV", "si_code": "SEGV_ACCERR"},
        "SIGSEGV/SEGV_ACCERR",
        "SIGSEGV/SEGV_MAPERR at m+{page}",
        ["si_code SIGSEGV SEGV_MAPERR offset {page}", "si_code wait SIGSEGV"],
        ["man 2 sigaction: SEGV_MAPERR, address not mapped to object"],
        death="SIGSEGV",
    ),
    Kind(
        "si-addr",
        [
            {"memfd_create": {"name": "matrix"}, "as": "fd"},
            {"ftruncate": {"fd": "fd", "length": "PAGE"}},
            {
                "mmap": {
                    "length": "2 * PAGE",
                    "prot": "PROT_READ",
                    "flags": "MAP_SHARED",
                    "fd": "fd",
                },
                "as": "m",
            },
        ],
        {"load": {"addr": "m + PAGE + 7"}},
        {"signal": "SIGBUS", "si_code": "BUS_ADRERR", "si_addr": "m + PAGE + 7"},
        {"signal": "SIGBUS", "si_code": "BUS_ADRERR", "si_addr": "m + PAGE"},
        "SIGBUS/BUS_ADRERR at m+{page}",
        "SIGBUS/BUS_ADRERR at m+{page7}",
        ["si_addr SIGBUS BUS_ADRERR offset {page7}", "si_addr wait SIGBUS"],
        [
            "man 2 mmap, SIGBUS: access to a page beyond the end of the file",
            "man 2 sigaction: si_addr",
        ],
        death="SIGBUS",
    ),
    Kind(
        "wait-death",
        [_MAP_RO, {"fork": {"steps": [{**_STORE_RO, "expect": _SEGV_ACCERR}]}, "as": "x"}],
        {"wait": "x"},
        {"value": _SEGV_ACCERR},
        {"value": {**_SEGV_ACCERR, "si_addr": "m + 4"}},
        "value {{signal: 'SIGSEGV', si_code: 'SEGV_ACCERR', si_addr: m+4}}",
        "success, value {{signal: 'SIGSEGV', si_code: 'SEGV_ACCERR', si_addr: m+5}}",
        ["wait-death SIGSEGV SEGV_ACCERR offset 5", "wait-death wait SIGSEGV"],
        ["man 2 wait: WTERMSIG; the fault's si_code and si_addr as the child's handler saw them"],
    ),
]


def _ended(kind: Kind) -> dict[str, Any]:
    """What a waited child of this kind ends with, as its parent's ``wait`` expects it."""
    return {"value": {"signal": kind.death} if kind.death else {"exit": 0}}


def _fork(steps: list[Step], name: str, ending: dict[str, Any] | None) -> list[Step]:
    forked: list[Step] = [{"fork": {"steps": steps}, "as": name}]
    return forked + ([{"wait": name, "expect": ending}] if ending else [])


def _thread(steps: list[Step]) -> list[Step]:
    """The steps on a thread of the process, joined (a death in it ends the join with it)."""
    return [{"thread": "t", "steps": steps}, {"join": "t"}]


@dataclass(frozen=True)
class Context:
    """Where the checked step runs: the case body around it, and its process and step label."""

    name: str
    title: str
    body: Callable[[list[Step], Kind], dict[str, Any]]
    proc: str
    prefix: str = ""  # the label of the step the check is nested in
    extra_refs: list[str] = field(default_factory=list)


CONTEXTS = [
    Context("main", "in the main process", lambda s, k: {"steps": s}, "main"),
    Context(
        "member",
        "in a processes: member",
        lambda s, k: {"processes": {"member": {"steps": s}}},
        "member",
    ),
    Context(
        "fork-waited",
        "in a fork child its parent waits for",
        lambda s, k: {"steps": _fork(s, "c", _ended(k))},
        "c",
        "1.",
    ),
    Context(
        "fork-unwaited",
        "in a fork child nobody waits for",
        lambda s, k: {"steps": _fork(s, "c", None)},
        "c",
        "1.",
    ),
    Context(
        "nested-fork",
        "in a fork child of a fork child, each waited for",
        lambda s, k: {"steps": _fork(_fork(s, "g", _ended(k)), "c", {"value": {"exit": 0}})},
        "g",
        "1.1.",
    ),
    Context(
        "repeat",
        "inside a repeat",
        lambda s, k: {"steps": [{"repeat": {"times": 2, "var": "i", "steps": s}}]},
        "main",
        "1.",
    ),
    Context(
        "thread",
        "in a thread of the main process",
        lambda s, k: {"steps": _thread(s)},
        "main/t",
        "1.",
    ),
    Context(
        "thread-in-fork",
        "in a thread of a fork child its parent waits for",
        lambda s, k: {"steps": _fork(_thread(s), "c", _ended(k))},
        "c/t",
        "1.1.",
    ),
]


@dataclass(frozen=True)
class Cell:
    kind: Kind
    context: Context
    right: bool

    @property
    def id(self) -> str:
        return f"matrix-{self.kind.name}-{self.context.name}-{'right' if self.right else 'wrong'}"

    @property
    def label(self) -> str:
        return f"{self.context.prefix}{len(self.kind.prelude) + 1}"

    def message(self, page: int) -> str:
        return self.kind.message(self.context.proc, self.label, page)

    def case(self) -> dict[str, Any]:
        kind, ctx = self.kind, self.context
        check = {**kind.check, "expect": kind.right if self.right else kind.wrong}
        verdict = "right: must pass" if self.right else "wrong: must fail"
        return {
            "id": self.id,
            "title": f"matrix: a {kind.name} expectation {ctx.title} ({verdict})",
            "refs": [*kind.refs, "tests/matrix/probe.c"],
            "tags": ["matrix", kind.name, ctx.name],
            **ctx.body([*kind.prelude, check], kind),
        }


def cells() -> list[Cell]:
    return [Cell(k, c, right) for k in KINDS for c in CONTEXTS for right in (True, False)]


def rendered() -> dict[Path, str]:
    """Each generated file and its text: one file per kind, all its contexts in it."""
    out = {}
    for kind in KINDS:
        docs = [c.case() for c in cells() if c.kind is kind]
        text = yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=None, width=100)
        head = "# Generated by tests/matrix/matrixgen.py: edit that, then run it.\n"
        out[GENERATED / f"{kind.name}.yaml"] = head + text
    return out


def main() -> int:
    GENERATED.mkdir(exist_ok=True)
    texts = rendered()
    for stale in set(GENERATED.glob("*.yaml")) - set(texts):
        stale.unlink()
    for path, text in texts.items():
        path.write_text(text)
    print(f"{len(cells())} cases in {len(texts)} files under {GENERATED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
