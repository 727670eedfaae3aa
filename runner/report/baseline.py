"""Baselines: a YAML file of known deviations, so a gate fails only on what is new.

A baseline file looks like this (``mmapconf baseline report.json`` writes one)::

    version: 1
    entries:
      - name: article-msync-visibility[disk]     # or: id: ..., backing: ... (no backing = all)
        when: {kernel: ">=6.5", fs: ext4}         # optional: kernel, fs, backing, arch, page_size
        reason: cachestat reports no dirty pages on this filesystem
        evidence: https://example.org/bug/123     # a link, or text saying what was checked
        until: "7.0"                              # optional: a kernel version or a date

An entry that applies turns a ``failed`` (or ``timeout``) result into ``known``, keeping the
original reason. A baselined case that passes is an *unexpected pass*: reported always, a gate
failure under ``strict``. An entry past its ``until`` (running kernel >= that version, or today
after that date) is *expired*: it no longer covers anything, and it fails the gate until someone
removes or renews it. ``error`` results are never baselined: they mean the case or the harness
broke, which no deviation of the system under test explains.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner import outcomes
from runner.errors import ReportError
from runner.lang.conditions import (
    KERNEL_SPEC_HELP,
    holds,
    kernel_matches,
    kernel_tuple,
    valid_kernel_spec,
)
from runner.report import model

ENTRY_KEYS = ("name", "id", "backing", "when", "reason", "evidence", "until")
WHEN_KEYS = (
    "kernel",
    "fs",
    "backing",
    "arch",
    "page_size",
    "disk",
)  # disk: the model after a power cut
EVIDENCE_PLACEHOLDER = "TODO"
_VERSION = r"\d+(?:\.\d+){0,2}"  # as the case language reads a kernel version: at most 3 parts
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BaselineError(ReportError):
    """An invalid baseline file; the message has one ``file:line:column: problem`` per line."""


@dataclass
class Entry:
    """One known deviation, with where it was written."""

    file: str
    line: int
    column: int
    id: str
    backing: str | None
    reason: str
    evidence: str
    when: dict[str, Any] = field(default_factory=dict)
    until: str | None = None

    @property
    def name(self) -> str:
        return f"{self.id}[{self.backing}]" if self.backing else self.id

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


# ---- reading and validating -------------------------------------------------------------


class _Reader:
    """Walks the composed YAML node tree, so every problem can name its line and column."""

    def __init__(self, path: str):
        self.path = path
        self.problems: list[str] = []

    def problem(self, node: yaml.Node, message: str) -> None:
        m = node.start_mark
        self.problems.append(f"{self.path}:{m.line + 1}:{m.column + 1}: {message}")

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"{what} must be a single value")
            return None
        # The raw text, not the constructed value: `until: 7.0` must stay "7.0", not 7.0 (a
        # float), and `until: 2027-01-01` a string, not a date object.
        return node.value.strip()

    def scalars(self, node: yaml.Node, what: str) -> list[str] | None:
        if isinstance(node, yaml.SequenceNode):
            out = [self.scalar(n, what) for n in node.value]
            return None if None in out else [x for x in out if x is not None]
        v = self.scalar(node, what)
        return None if v is None else [v]

    def when(self, node: yaml.Node) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"when must be a mapping of {', '.join(WHEN_KEYS)}")
            return {}
        out: dict[str, Any] = {}
        for k, v in node.value:
            key = self.scalar(k, "a when key")
            if key not in WHEN_KEYS:
                self.problem(k, f"unknown when key {key!r} (known: {', '.join(WHEN_KEYS)})")
                continue
            if key == "kernel":
                cond = self.scalar(v, "when.kernel")
                if cond is not None:
                    if not valid_kernel_spec(cond):
                        self.problem(v, f"when.kernel {cond!r}: {KERNEL_SPEC_HELP}")
                    else:
                        out[key] = cond
            else:
                vals = self.scalars(v, f"when.{key}")
                if vals is not None:
                    out[key] = vals
        return out

    def entry(self, node: yaml.Node, seen: dict[tuple, int]) -> Entry | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, "an entry must be a mapping with name, reason and evidence")
            return None
        raw = self.entry_keys(node)
        before = len(self.problems)
        name, rid, backing = self.entry_id(node, raw)
        shown = name or rid
        for key in ("reason", "evidence"):
            if key not in raw:
                self.problem(node, f"entry {shown!r} has no {key}")
            elif not self.text(raw, key):
                self.problem(raw[key][1], f"{key} is empty")
        when = self.when(raw["when"][1]) if "when" in raw else {}
        until = self.until(raw)
        if len(self.problems) > before:
            return None
        same = (rid, backing, json.dumps(when, sort_keys=True))
        line = node.start_mark.line + 1
        if same in seen:
            self.problem(node, f"duplicate entry for {shown} (first at line {seen[same]})")
            return None
        seen[same] = line
        return Entry(
            file=self.path,
            line=line,
            column=node.start_mark.column + 1,
            id=rid or "",
            backing=backing or None,
            reason=self.text(raw, "reason") or "",
            evidence=self.text(raw, "evidence") or "",
            when=when,
            until=until,
        )

    def entry_keys(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The entry's known keys, each with its key and value nodes (for the problems' places)."""
        raw: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = self.scalar(k, "an entry key")
            if key is None:
                continue
            if key not in ENTRY_KEYS:
                self.problem(k, f"unknown entry key {key!r} (known: {', '.join(ENTRY_KEYS)})")
            elif key in raw:
                self.problem(k, f"{key} given twice")
            else:
                raw[key] = (k, v)
        return raw

    def text(self, raw: dict[str, tuple[yaml.Node, yaml.Node]], key: str) -> str | None:
        return self.scalar(raw[key][1], key) if key in raw else None

    def entry_id(
        self, node: yaml.Node, raw: dict[str, tuple[yaml.Node, yaml.Node]]
    ) -> tuple[str | None, str | None, str | None]:
        """The entry's name, and the case id and backing it covers: from ``name: ID[BACKING]``
        or from ``id`` (and ``backing``), never both."""
        name, rid, backing = self.text(raw, "name"), self.text(raw, "id"), self.text(raw, "backing")
        if name is not None:
            if rid is not None or backing is not None:
                self.problem(raw["name"][0], "give either name: ID[BACKING], or id (+ backing)")
            rid, backing = model.split_name(name)
            if backing is None:
                self.problem(
                    raw["name"][1],
                    f"name {name!r}: expected ID[BACKING], e.g. "
                    "article-sigbus-past-eof[tmpfs] (or use id:)",
                )
        elif rid is None:
            self.problem(node, "entry has neither name nor id")
        if rid is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", rid):
            self.problem((raw.get("name") or raw["id"])[1], f"{rid!r} is not a case id")
        return name, rid, backing

    def until(self, raw: dict[str, tuple[yaml.Node, yaml.Node]]) -> str | None:
        """The entry's end: a kernel version or a real date."""
        until = self.text(raw, "until")
        if until is None:
            return None
        node = raw["until"][1]
        if not _DATE.fullmatch(until) and not re.fullmatch(_VERSION, until):
            expected = "expected a kernel version like '7.0' or a date like 2027-06-30"
            self.problem(node, f"until {until!r}: {expected}")
        elif _DATE.fullmatch(until):
            try:
                dt.date.fromisoformat(until)
            except ValueError:
                self.problem(node, f"until {until!r} is not a real date")
        return until


def parse_baseline(text: str, path: str = "baseline.yaml") -> list[Entry]:
    """Validate a baseline's text; raise BaselineError naming every problem's file:line:col."""
    reader = _Reader(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark
        where = f"{path}:{m.line + 1}:{m.column + 1}" if m else path
        raise BaselineError(f"{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise BaselineError(f"{path}: not valid YAML: {exc}") from None
    if root is None:
        return []
    entries_node: yaml.Node | None = root
    if isinstance(root, yaml.MappingNode):
        entries_node = None
        for k, v in root.value:
            key = reader.scalar(k, "a top-level key")
            if key == "version":
                if reader.scalar(v, "version") != "1":
                    reader.problem(v, "this mmapconf reads baseline version 1")
            elif key == "entries":
                entries_node = v
            else:
                reader.problem(k, f"unknown top-level key {key!r} (known: version, entries)")
        if entries_node is None:
            reader.problem(root, "no entries: list")
    if entries_node is not None and not isinstance(entries_node, yaml.SequenceNode):
        if not (isinstance(entries_node, yaml.ScalarNode) and entries_node.value in ("", "null")):
            reader.problem(entries_node, "entries must be a list")
        entries_node = None
    entries: list[Entry] = []
    seen: dict[tuple, int] = {}
    for node in entries_node.value if entries_node is not None else []:
        e = reader.entry(node, seen)
        if e is not None:
            entries.append(e)
    if reader.problems:
        raise BaselineError("\n".join(reader.problems))
    return entries


def load_baseline(path: Path) -> list[Entry]:
    """Read and validate a baseline file (see parse_baseline)."""
    path = Path(path)
    return parse_baseline(model.read_input(path, BaselineError, "baseline file"), str(path))


# ---- applying --------------------------------------------------------------------------


def _covers(entry: Entry, r: dict[str, Any]) -> bool:
    """An entry named ID[BACKING] covers ID on that backing; ``ID[disk]`` covers every disk
    backing (``ID[disk:xfs]``, ``ID[disk:btrfs]`` of a run with several), narrowed by when."""
    if entry.id != model.result_id(r):
        return False
    backing = r.get("backing")
    return entry.backing in (None, backing) or entry.backing == model.split_backing(backing)


def expiry(entry: Entry, report: dict[str, Any], today: dt.date) -> str | None:
    """Why ``entry`` has expired on this run, or None while it is in force."""
    if entry.until is None:
        return None
    if _DATE.fullmatch(entry.until):
        if today > dt.date.fromisoformat(entry.until):
            return f"until {entry.until} has passed (today is {today.isoformat()})"
        return None
    release = model.kernel_release(report)
    if kernel_tuple(release) != (0, 0, 0) and kernel_matches(release, f">={entry.until}"):
        return f"until kernel {entry.until}, and this kernel is {release}"
    return None


@dataclass
class Baseline:
    """A loaded baseline file, applied one result at a time (``judge``, in a pytest worker or
    at the end of ``mmapconf run``) and summed up once per report (``conclude``)."""

    file: str
    entries: list[Entry]
    strict: bool = False
    today: dt.date = field(default_factory=dt.date.today)

    @classmethod
    def load(cls, path: Path, strict: bool = False, today: dt.date | None = None) -> Baseline:
        return cls(str(path), load_baseline(path), strict, today or dt.date.today())

    def expired(self, report: dict[str, Any]) -> dict[int, str]:
        return {id(e): why for e in self.entries if (why := expiry(e, report, self.today))}

    def covering(self, report: dict[str, Any], r: dict[str, Any]) -> Entry | None:
        """The first entry in force (not expired, its ``when`` true of the result's facts)
        that covers result ``r`` of ``report``."""
        expired = self.expired(report)
        for e in self.entries:
            if _covers(e, r) and id(e) not in expired and holds(e.when, model.facts(report, r)):
                return e
        return None

    def judge(self, report: dict[str, Any], r: dict[str, Any]) -> None:
        """Apply the baseline to result ``r`` (of ``report``, whose environment it ran in): a
        covered failure becomes ``known`` (``original_outcome`` kept), a covered pass is marked
        an unexpected pass."""
        e = self.covering(report, r)
        o = model.outcome(r)
        if e is None or o not in (*outcomes.BASELINABLE, "passed"):
            return
        info = {"file": e.file, "line": e.line, "reason": e.reason, "evidence": e.evidence}
        if o == "passed":
            r["baseline"] = {**info, "status": "unexpected-pass"}
            return
        r["original_outcome"] = o
        r["outcome"] = "known"
        r["baseline"] = {**info, "status": "known"}

    def conclude(self, report: dict[str, Any]) -> None:
        """Sum up, in ``report["baseline"]``, what the judged results of ``report`` made of the
        baseline: known, unexpected passes, expired and unmatched entries, and ``problems``
        (what fails the gate); and recount the summary."""
        rs = model.results(report)
        expired = self.expired(report)
        status = {model.result_name(r): (r.get("baseline") or {}).get("status") for r in rs}
        unexpected = [n for n, s in status.items() if s == "unexpected-pass"]
        problems = [
            f"{e.where}: baseline entry {e.name} expired: {expired[id(e)]}"
            for e in self.entries
            if id(e) in expired
        ]
        if self.strict:
            problems += [
                f"{n}: unexpected pass of a baselined known deviation (strict)" for n in unexpected
            ]
        report["baseline"] = {
            "file": self.file,
            "strict": self.strict,
            "entries": len(self.entries),
            "known": [n for n, s in status.items() if s == "known"],
            "unexpected_passes": unexpected,
            "expired": [
                {"name": e.name, "file": e.file, "line": e.line, "until": e.until, "why": why}
                for e in self.entries
                if (why := expired.get(id(e)))
            ],
            "unmatched": [e.name for e in self.entries if not any(_covers(e, r) for r in rs)],
            "warnings": [
                f"{e.where}: evidence for {e.name} is still a placeholder"
                for e in self.entries
                if e.evidence.upper().startswith(EVIDENCE_PLACEHOLDER)
            ],
            "problems": problems,
        }
        report["summary"] = model.summarize(rs, model.total_duration(report))


def apply_baseline(
    report: dict[str, Any],
    baseline: Path | Baseline,
    strict: bool = False,
    *,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """A copy of ``report`` with ``baseline``'s known deviations applied (a path is loaded with
    ``strict`` and ``today``): every result judged, then the report concluded. Raises
    BaselineError for an invalid file."""
    if not isinstance(baseline, Baseline):
        baseline = Baseline.load(baseline, strict, today)
    out = copy.deepcopy(report)
    for r in model.results(out):
        if model.outcome(r) != "known":  # judged once: a report already baselined keeps it
            baseline.judge(out, r)
    baseline.conclude(out)
    return out


def baseline_lines(report: dict[str, Any]) -> list[str]:
    """Terminal lines about the baseline, for the end of a run (empty without one)."""
    base = report.get("baseline")
    if not isinstance(base, dict):
        return []
    lines = [
        f"baseline {base.get('file')}: {len(base.get('known') or [])} known,"
        f" {len(base.get('unexpected_passes') or [])} unexpected pass(es),"
        f" {len(base.get('expired') or [])} expired"
    ]
    if not base.get("strict"):
        lines += [f"  unexpected pass: {n}" for n in base.get("unexpected_passes") or []]
    lines += [f"  gate: {p}" for p in base.get("problems") or []]
    lines += [f"  warning: {w}" for w in base.get("warnings") or []]
    return lines


# ---- writing ---------------------------------------------------------------------------


def _q(text: Any) -> str:
    # A JSON string is a valid YAML double-quoted scalar: safe for any reason text.
    return json.dumps(str(text), ensure_ascii=False)


def make_baseline(report: dict[str, Any]) -> str:
    """A baseline (YAML text) covering every failed or timed-out result of ``report`` (and the
    already-known ones), with the result's reason and an evidence placeholder to fill in."""
    env = model.environment(report)
    lines = [
        "# mmapconf baseline: known deviations (see docs/ci-gating.md).",
        f"# Written from a run on Linux {env.get('kernel_release') or 'unknown'}"
        f" ({env.get('machine') or '?'}), started {env.get('started') or '?'}.",
        "# Fill in each evidence: a bug link, a mailing-list thread, or what was checked.",
        "version: 1",
    ]
    picked = [
        r for r in model.results(report) if model.outcome(r) in (*outcomes.BASELINABLE, "known")
    ]
    if not picked:
        return "\n".join([*lines, "entries: []"]) + "\n"
    lines.append("entries:")
    for r in picked:
        o = r.get("original_outcome") if model.outcome(r) == "known" else model.outcome(r)
        fs = model.backing_fs(report, r)
        prior = model.mapping(r.get("baseline"))
        lines.append(f"  - name: {_q(model.result_name(r))}")
        # On the disk backing the filesystem is whatever --dir pointed at, so pin it; on the
        # other backings it follows from the backing itself.
        if model.split_backing(r.get("backing")) == "disk" and fs:
            lines.append(f"    when: {{fs: {_q(fs)}}}")
        lines.append(f"    reason: {_q(r.get('reason') or o)}")
        lines.append(
            f"    evidence: {_q(prior.get('evidence') or EVIDENCE_PLACEHOLDER + ': link or text')}"
        )
        lines.append(
            f"    # seen: {o} on {env.get('kernel_release') or '?'}, {r.get('backing')}"
            f" on {fs or '-'}; case {r.get('file') or '?'}:{r.get('line') or '?'}"
        )
    return "\n".join(lines) + "\n"
