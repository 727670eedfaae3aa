"""A run: which case × backing items there are, and running one item to its result.

Both ``mmapconf run`` and the pytest plugin go through ``plan`` and ``run_item``, so the two
give the same outcomes.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from runner import outcomes
from runner.engine import confine, interrupt, libc
from runner.engine.backings import Backing, ScratchLeftover, available_backings, remove_scratch
from runner.engine.execution import Execution
from runner.engine.native import execute as native
from runner.engine.native.build import executor_path
from runner.engine.provision import in_guest, provided, why_not
from runner.engine.verdict import Verdict, judge_execution
from runner.errors import CaseRuntimeError
from runner.lang.conditions import Facts, unmet
from runner.lang.loader import InvalidCase, Suite, UniqueIds, discover, load_file
from runner.lang.model import Case, Provision
from runner.lang.ops import FILE_BACKINGS
from runner.lang.packed import PackedCase
from runner.lang.powercut import is_power_cut


@dataclass
class Item:
    """One case on one backing (or an invalid document, which ends as ``error``)."""

    name: str
    backing: Backing | None
    case: Case | None = None
    invalid: InvalidCase | None = None

    @property
    def id(self) -> str:
        return self.case.id if self.case else self.invalid.id  # type: ignore[union-attr]

    @property
    def timeout(self) -> float:
        """How long its case may run (0 for an invalid document)."""
        return self.case.timeout if self.case else 0.0


class PackedItem(Item):
    """An item whose case is held packed (runner.lang.packed) and unpacked when it is read: in
    the ``-n`` worker that runs it. The items of one case share its packed bytes."""

    def __init__(self, name: str, backing: Backing, packed: PackedCase):
        self.name, self.backing, self.invalid = name, backing, None
        self.packed = packed

    @property
    def case(self) -> Case:
        return self.packed.unpack()

    @case.setter
    def case(self, case: Case | None) -> None:
        raise AttributeError("a packed item's case is read only")

    @property
    def id(self) -> str:
        return self.packed.id

    @property
    def timeout(self) -> float:
        return self.packed.timeout


@dataclass
class Result:
    name: str
    id: str
    backing: str
    file: str
    line: int
    outcome: str
    reason: str = ""
    duration_s: float = 0.0
    title: str = ""
    claim: str | None = None
    refs: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    outcomes_seen: list[str] | None = None  # with --repeat: each repetition's outcome, in order
    steps_left_out: int = 0  # passed steps inside loops, counted by the executor, not sent
    facts: dict[str, Any] = field(default_factory=dict)  # what it ran on: backing kind, fs
    output: str = ""  # what the case printed on stdout/stderr (bounded), never the terminal
    uses_machine_code: bool = False  # a case with ``call`` can forge its own observations

    @classmethod
    def from_json(cls, data: Any) -> Result:
        """A Result from its to_json form (as a -n worker sends it); ValueError if it is not."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not set(data) <= names:
            raise ValueError("not a result")
        try:
            return cls(**data)
        except TypeError as e:
            raise ValueError(f"not a result: {e}") from None

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if out["outcomes_seen"] is None:
            del out["outcomes_seen"]
        for key in ("steps_left_out", "output", "uses_machine_code"):
            if not out[key]:
                del out[key]
        return out


@dataclass
class RunConfig:
    """What the user chose: backing kinds (None: all that apply), --dir folders."""

    backings: list[str] | None = None
    dirs: list[str] = field(default_factory=list)
    disks: list[Backing] | None = None  # host --fs: the disk backings, made by the session


class Runner:
    """Holds what is made once per run: the backings and the machine facts. Making one also
    removes what a SIGKILLed earlier run left (runner.engine.confine.sweep)."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.kinds = available_backings(config.dirs, config.disks)
        self.facts = Facts(syscall_probe=libc.syscall_exists)
        confine.sweep([b.dir for bs in self.kinds.values() for b in bs if b.dir])
        executor_path()  # built (or found) once, before -n forks workers that would each look

    @property
    def backings(self) -> list[Backing]:
        wanted = self.config.backings or [*FILE_BACKINGS, "anon"]
        return [b for kind in wanted for b in self.kinds.get(kind, [])]

    def plan(self, suite: Suite) -> list[Item]:
        items = _invalid_items(suite.invalid)
        for case in suite.cases:
            items += [Item(f"{case.id}[{b.name}]", b, case=case) for b in self._backings(case)]
        return items

    def plan_files(self, paths: list[str], wanted: Callable[[Case], bool]) -> list[Item]:
        """``plan(load_suite(paths))`` with only the WANTED cases, loaded one file at a time and
        each held packed: the harness never holds the loaded catalogue (issue 13's peak RSS)."""
        ids = UniqueIds()
        invalid, duplicates, items = [], [], []
        for path in discover(paths):
            part = load_file(path)
            invalid += part.invalid
            for case in part.cases:
                duplicate = ids.duplicate(case)
                if duplicate is not None:
                    duplicates.append(duplicate)
                elif wanted(case) and (backings := self._backings(case)):
                    packed = PackedCase.of(case)
                    items += [PackedItem(f"{case.id}[{b.name}]", b, packed) for b in backings]
        return _invalid_items(invalid + duplicates) + items

    def _backings(self, case: Case) -> list[Backing]:
        """Where CASE runs in this run: none for a power-cut case in a guest (the host runs it,
        in boots of its own: runner/vm/durability)."""
        return [] if is_power_cut(case) and self.in_guest() else self._backings_for(case)

    def _backings_for(self, case: Case) -> list[Backing]:
        p = case.provision
        if p is not None and p.mount is not None:
            # Its files live on the mount the harness makes for it: one run, named by that fs.
            return [Backing(f"disk:{p.mount.fstype}", "disk", None, p.mount.fstype)]
        if not case.uses_file:
            return self.kinds["anon"]
        kinds = ["disk"] if is_power_cut(case) else case.backings or list(FILE_BACKINGS)
        if self.config.backings is not None:
            kinds = [k for k in kinds if k in self.config.backings]
        found = [b for k in kinds for b in self.kinds.get(k, [])]
        if p is not None and p.files:
            found = [b for b in found if b.dir is not None]  # files need a folder: not memfd
        return found

    def run_item(self, item: Item) -> Result:
        result, facts = self.new_result(item)
        if result.outcome != "skipped" or result.reason:
            return result  # invalid, or skipped here
        case, backing = item.case, item.backing
        assert case is not None and backing is not None
        start = time.monotonic()
        made = contextlib.ExitStack()  # the scratch folder and the provision, undone in reverse
        leftover: list[str] = []  # what removing the scratch folder could not remove
        with interrupt.while_running():
            scratch, arena = None, native.NativeArena()  # fresh per case
            try:
                # An interrupt while they are made or undone waits until that is done.
                with interrupt.deferred():
                    scratch = backing.scratch()
                    made.callback(lambda: leftover.append(_remove(scratch)))
                    folder = made.enter_context(provided(case.provision, scratch))
                run = native.execute(case, facts, arena, folder)
                verdict = judge_execution(run, arena, case.timeout)
            except CaseRuntimeError as e:  # raised only by the harness's set-up of the case
                result.outcome, result.reason = "error", f"set-up: {e}"
                return result
            finally:
                with interrupt.deferred():
                    made.close()
                    arena.close()  # fresh per case: nothing carries over to the next
        return finish_result(result, run, verdict, leftover, start)

    def new_result(self, item: Item) -> tuple[Result, Facts]:
        """ITEM's result before it runs, with the facts it runs on: an invalid case's error,
        ``skipped`` with the reasons it cannot run here, or ``skipped`` with no reason yet."""
        if item.invalid is not None:
            inv = item.invalid
            reason = "invalid case: " + "; ".join(str(p) for p in inv.problems[:5])
            invalid = Result(item.name, inv.id, "invalid", inv.file, inv.line, "error", reason)
            return invalid, self.facts
        case, backing = item.case, item.backing
        assert case is not None and backing is not None
        result = Result(
            item.name,
            case.id,
            backing.name,
            case.file,
            case.line,
            "skipped",
            title=case.title,
            claim=case.claim,
            refs=case.refs,
            tags=case.tags,
            facts={"backing": backing.kind, "fs": backing.fs},
        )
        facts = self.facts.for_backing(backing.kind, backing.fs)
        reasons = [r for r in (backing.unavailable, self.why_not(case.provision)) if r]
        if is_power_cut(case) and not self.in_guest():
            reasons.insert(0, "a power-cut case runs only under --kernel, alone in its boots")
        reasons += unmet(case.requires, facts)
        # Only when `requires` holds: a case that already says `arch: x86_64` skips for that.
        reasons = reasons or [
            f"{name} is defined on {', '.join(arches)} only, not on {facts.arch}"
            for name, arches in sorted(case.foreign_names.items())
        ]
        result.reason = "; ".join(reasons)
        result.uses_machine_code = case.uses_machine_code and not reasons
        return result, facts

    def why_not(self, provision: Provision | None) -> str:
        """Why this machine cannot provide PROVISION ('' when it can)."""
        return why_not(provision)

    def in_guest(self) -> bool:
        """Whether this run's cases run in a disposable guest of `run --kernel` (a power-cut
        case is then left to the host, which gives it boots of its own)."""
        return in_guest()

    def close(self) -> None:
        """Stop what the run started in this process (the native fork server)."""
        native.close_server()


def _invalid_items(invalid: list[InvalidCase]) -> list[Item]:
    return [Item(f"{inv.id}[invalid]", None, invalid=inv) for inv in invalid]


def finish_result(
    result: Result, run: Execution, verdict: Verdict, leftover: list[str], start: float
) -> Result:
    """RESULT with the outcome of RUN: its verdict, what could not be removed after it, the
    memory limit if it was reached, its trace and output."""
    result.outcome, result.reason = verdict.outcome, verdict.reason
    if any(leftover) and result.outcome == "passed":
        result.outcome = "error"
    memory = _memory(run) if result.outcome != "passed" else ""
    result.reason = "; ".join(x for x in (result.reason, *leftover, memory) if x)
    result.steps = [_step_record(s.to_json()) for s in verdict.steps]
    result.steps_left_out = run.dropped_steps
    result.output = _output(run)
    result.duration_s = round(time.monotonic() - start, 6)
    return result


# What a step observed that most steps did not: a step's record in the report has these keys
# only when it did (a null in each was a fifth of report.json).
OBSERVATIONS = ("result", "errno", "signal", "si_code", "si_addr")


def _step_record(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if v is not None or k not in OBSERVATIONS}


def _remove(scratch: str | None) -> str:
    try:
        remove_scratch(scratch)
    except ScratchLeftover as e:
        return f"scratch folder left behind: {e.strerror}"
    return ""


def _memory(run: Execution) -> str:
    if not run.memory_limit_hit:
        return ""
    return f"the case reached its memory limit ({confine.CASE_MEMORY >> 20} MiB)"


def _output(run: Execution) -> str:
    text = run.output.decode("utf-8", "replace")
    return text + (f"\n[{run.output_dropped} more bytes left out]" if run.output_dropped else "")


def merge_repeats(runs: list[Result]) -> Result:
    """One item's repetitions as one result: their common outcome, or ``flaky`` if they differ.

    The kept details (reason, steps) are those of the first repetition that did not pass, so a
    flaky result shows how it went wrong; the duration is the total of all repetitions.
    """
    seen = [r.outcome for r in runs]
    shown = next((r for r in runs if r.outcome not in outcomes.UNREMARKABLE), runs[0])
    merged = Result(**{**shown.__dict__, "outcomes_seen": seen})
    merged.duration_s = round(sum(r.duration_s for r in runs), 6)
    if len(set(seen)) > 1:
        counts = Counter(seen)
        tally = ", ".join(f"{o} x{counts[o]}" for o in dict.fromkeys(seen))
        merged.outcome = "flaky"  # only from --repeat
        merged.reason = f"outcomes differ across {len(runs)} runs: {tally}" + (
            f"; first {shown.outcome}: {shown.reason}" if shown.reason else ""
        )
    return merged
