"""Baselines: a YAML file of known deviations, so a gate fails only on what is new.

A baseline file looks like this (``mmapconf baseline report.json`` writes one)::

    version: 1
    entries:
      - name: article-msync-visibility[disk]     # or: id: ..., backing: ... (no backing = all)
        when: {kernel: ">=6.5", fs: ext4}         # optional: kernel, fs, backing, arch
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

from runner.lang.conditions import kernel_matches, kernel_tuple
from runner.report import model
from runner.report.model import ReportError

ENTRY_KEYS = ("name", "id", "backing", "when", "reason", "evidence", "until")
WHEN_KEYS = ("kernel", "fs", "backing", "arch")
BASELINED_OUTCOMES = ("failed", "timeout")
EVIDENCE_PLACEHOLDER = "TODO"
_VERSION = r"\d+(?:\.\d+){0,2}"  # as the case language reads a kernel version: at most 3 parts
_COND = re.compile(rf"\s*(>=|<=|==|!=|>|<)\s*({_VERSION})\s*")
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
            self.problem(node, "when must be a mapping of kernel, fs, backing, arch")
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
                    if not all(_COND.fullmatch(p) for p in cond.split(",")):
                        self.problem(
                            v, f"when.kernel {cond!r}: expected e.g. '>=6.5' or '>=5.0, <6.5'"
                        )
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
        before = len(self.problems)

        def text(key: str) -> str | None:
            return self.scalar(raw[key][1], key) if key in raw else None

        name, rid, backing = text("name"), text("id"), text("backing")
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
            self.problem(raw.get("name", raw.get("id"))[1], f"{rid!r} is not a case id")
        for key in ("reason", "evidence"):
            if key not in raw:
                self.problem(node, f"entry {name or rid!r} has no {key}")
            elif not text(key):
                self.problem(raw[key][1], f"{key} is empty")
        when = self.when(raw["when"][1]) if "when" in raw else {}
        until = text("until")
        if until is not None and not _DATE.fullmatch(until) and not re.fullmatch(_VERSION, until):
            self.problem(
                raw["until"][1],
                f"until {until!r}: expected a kernel version like '7.0' or a date like 2027-06-30",
            )
        elif until is not None and _DATE.fullmatch(until):
            try:
                dt.date.fromisoformat(until)
            except ValueError:
                self.problem(raw["until"][1], f"until {until!r} is not a real date")
        if len(self.problems) > before:
            return None
        key = (rid, backing, json.dumps(when, sort_keys=True))
        line = node.start_mark.line + 1
        if key in seen:
            self.problem(node, f"duplicate entry for {name or rid} (first at line {seen[key]})")
            return None
        seen[key] = line
        return Entry(
            file=self.path,
            line=line,
            column=node.start_mark.column + 1,
            id=rid or "",
            backing=backing or None,
            reason=text("reason") or "",
            evidence=text("evidence") or "",
            when=when,
            until=until,
        )


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
    entries_node = root
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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read: {exc}") from None
    return parse_baseline(text, str(path))


# ---- applying --------------------------------------------------------------------------


def _when_holds(entry: Entry, report: dict[str, Any], r: dict[str, Any]) -> bool:
    """Whether the entry's ``when`` holds for result R: the result's own facts first, the
    report's environment second (model.result_facts)."""
    w = entry.when
    facts = model.result_facts(report, r)
    if "kernel" in w and not kernel_matches(str(facts.get("kernel")), w["kernel"]):
        return False
    if "fs" in w and facts.get("fs") not in w["fs"]:
        return False
    if "backing" in w and facts.get("backing") not in w["backing"]:
        return False
    return not ("arch" in w and facts.get("arch") not in w["arch"])


def _covers(entry: Entry, r: dict[str, Any]) -> bool:
    """An entry named ID[BACKING] covers ID on that backing; ``ID[disk]`` covers every disk
    backing (``ID[disk:xfs]``, ``ID[disk:btrfs]`` of a run with several), narrowed by when."""
    if entry.id != model.result_id(r):
        return False
    backing = r.get("backing")
    return entry.backing in (None, backing) or entry.backing == model.split_backing(backing)


def covering_entry(
    entries: list[Entry], report: dict[str, Any], r: dict[str, Any], expired: set[int]
) -> Entry | None:
    """The first entry in force (not in ``expired``, its ``when`` true) that covers result ``r``
    of a run whose environment is ``report["environment"]``."""
    for e in entries:
        if _covers(e, r) and id(e) not in expired and _when_holds(e, report, r):
            return e
    return None


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


class KnownDeviations:
    """A baseline's entries in force on this run, to tell a result known as soon as it arrives
    (progress marks, pytest's outcome); the report's ``known`` outcomes come from apply_baseline,
    through the same matching."""

    def __init__(self, path: Path, environment: dict[str, Any], today: dt.date | None = None):
        self.entries = load_baseline(path)
        self.report = {"environment": environment}
        day = today or dt.date.today()
        self.expired = {id(e) for e in self.entries if expiry(e, self.report, day)}

    def entry_for(self, result: dict[str, Any]) -> Entry | None:
        """The entry that makes a failed ``result`` (``Result.to_json()``) known, or None."""
        if model.outcome(result) not in BASELINED_OUTCOMES:
            return None
        return covering_entry(self.entries, self.report, result, self.expired)


def _recount(report: dict[str, Any]) -> None:
    summary = report.get("summary") if isinstance(report.get("summary"), dict) else {}
    summary.update(model.counts(report))
    summary["total"] = len(model.results(report))
    report["summary"] = summary


def apply_baseline(
    report: dict[str, Any], baseline: Path, strict: bool, *, today: dt.date | None = None
) -> dict[str, Any]:
    """A copy of ``report`` with ``baseline``'s known deviations applied.

    Matching failures become outcome ``known`` (``original_outcome`` and ``reason`` kept, the
    entry under ``baseline``); the summary is recounted; ``report["baseline"]`` tells what was
    known, unexpectedly passed, expired or unmatched, and ``problems``: what fails the gate.
    Raises BaselineError for an invalid file.
    """
    entries = load_baseline(baseline)
    today = today or dt.date.today()
    out = copy.deepcopy(report)
    expired = {id(e): why for e in entries if (why := expiry(e, out, today))}
    used: set[int] = set()
    known, unexpected = [], []
    for r in model.results(out):
        used.update(id(e) for e in entries if _covers(e, r))
        e = covering_entry(entries, out, r, set(expired))
        if e is None:
            continue
        info = {"file": e.file, "line": e.line, "reason": e.reason, "evidence": e.evidence}
        o = model.outcome(r)
        if o in BASELINED_OUTCOMES:
            r["original_outcome"] = o
            r["outcome"] = "known"
            r["baseline"] = {**info, "status": "known"}
            known.append(model.result_name(r))
        elif o == "passed":
            r["baseline"] = {**info, "status": "unexpected-pass"}
            unexpected.append(model.result_name(r))
    problems = [
        f"{e.where}: baseline entry {e.name} expired: {expired[id(e)]}"
        for e in entries
        if id(e) in expired
    ]
    if strict:
        problems += [
            f"{n}: unexpected pass of a baselined known deviation (strict)" for n in unexpected
        ]
    warnings = [
        f"{e.where}: evidence for {e.name} is still a placeholder"
        for e in entries
        if e.evidence.upper().startswith(EVIDENCE_PLACEHOLDER)
    ]
    out["baseline"] = {
        "file": str(baseline),
        "strict": strict,
        "entries": len(entries),
        "known": known,
        "unexpected_passes": unexpected,
        "expired": [
            {
                "name": e.name,
                "file": e.file,
                "line": e.line,
                "until": e.until,
                "why": expired[id(e)],
            }
            for e in entries
            if id(e) in expired
        ],
        "unmatched": [e.name for e in entries if id(e) not in used],
        "warnings": warnings,
        "problems": problems,
    }
    _recount(out)
    return out


def gate_exit_code(report: dict[str, Any]) -> int:
    """0 when the run passes its gate; 1 when a result failed, errored or timed out (and was
    not baselined), or the baseline reported a problem (expired entry, strict unexpected pass)."""
    if any(model.outcome(r) in model.FAILING for r in model.results(report)):
        return 1
    base = report.get("baseline")
    if isinstance(base, dict) and base.get("problems"):
        return 1
    return 0


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
        r for r in model.results(report) if model.outcome(r) in (*BASELINED_OUTCOMES, "known")
    ]
    if not picked:
        return "\n".join([*lines, "entries: []"]) + "\n"
    lines.append("entries:")
    for r in picked:
        o = r.get("original_outcome") if model.outcome(r) == "known" else model.outcome(r)
        fs = model.backing_fs(report, r)
        prior = r.get("baseline") if isinstance(r.get("baseline"), dict) else {}
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
