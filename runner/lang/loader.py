"""Find case files, load and validate them, and check that ids are unique across the suite."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import Problem, UsageError
from runner.lang import cache, model, names
from runner.lang.model import Case
from runner.lang.validate import CaseValidator
from runner.lang.yamlsafe import load_documents, parse_documents, read_bounded

SUFFIXES = (".yaml", ".yml")
MAX_SNIFF = 1 << 16
INTERNAL = "internal error while validating (a harness bug; please report it)"
# the top-level keys of a case, looked for in the text of a file too broken to parse
_CASE_ID = re.compile(r"^id\s*:", re.MULTILINE)
_CASE_BODY = re.compile(r"^(steps|processes)\s*:", re.MULTILINE)


@dataclass
class InvalidCase:
    """A document that did not validate: it ends as ``error`` in a run."""

    id: str
    file: str
    line: int
    problems: list[Problem]


@dataclass
class Suite:
    cases: list[Case] = field(default_factory=list)
    invalid: list[InvalidCase] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # the cases run all the same

    @property
    def problems(self) -> list[Problem]:
        return [p for inv in self.invalid for p in inv.problems]


# What a cached file's Suite is made of (runner.lang.cache builds nothing else).
CACHED_CLASSES = frozenset(
    {
        Suite,
        InvalidCase,
        Problem,
        model.Case,
        model.Step,
        model.Expect,
        model.Provision,
        model.MountProvision,
        model.FileProvision,
    }
)


def is_case_document(data: object) -> bool:
    """A case is a mapping with an ``id`` and ``steps`` or ``processes``."""
    return isinstance(data, dict) and "id" in data and ("steps" in data or "processes" in data)


def holds_cases(path: Path) -> bool:
    """Whether a YAML file is a case file: one of its documents is a case. Other YAML (a
    project's data, a Tavern test) is not ours."""
    docs, problems = load_documents(path)
    if any(is_case_document(doc.data) for doc in docs):
        return True
    if not problems:
        return False
    # a file that does not parse counts when its text has a case's top-level keys, so that a
    # broken case file is reported, not passed over
    try:
        text = path.read_bytes()[:MAX_SNIFF].decode("utf-8", "replace")
    except OSError:
        return False
    return bool(_CASE_ID.search(text) and _CASE_BODY.search(text))


def discover(paths: list[str]) -> list[Path]:
    """Case files under the given files and folders, in a stable order. Every YAML file in a
    folder is taken as a case file, and one that is not a case is reported: the pytest plugin,
    which runs in projects with YAML of their own, collects only files that ``holds_cases``."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return list(dict.fromkeys(found))


def display_name(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def load_file(path: Path) -> Suite:
    """One file's cases, validated (or as validated before: see runner.lang.cache)."""
    name = display_name(path)
    raw, problem = read_bounded(path, name)
    if problem is not None:
        return Suite(invalid=[InvalidCase(_file_id(name), name, problem.line, [problem])])
    if not cache.enabled():
        return _validated(raw, name)
    entry = cache.key(raw, name, names.ARCH)
    suite = cache.load(entry, CACHED_CLASSES)
    if not isinstance(suite, Suite):
        suite = _validated(raw, name)
        cache.store(entry, suite)
    return suite


def _validated(raw: bytes, name: str) -> Suite:
    suite = Suite()
    docs, problems = parse_documents(raw, name)
    if problems:
        suite.invalid.append(InvalidCase(_file_id(name), name, problems[0].line, problems))
    for index, doc in enumerate(docs):
        validator = CaseValidator(name, doc.data, doc.pos[0])
        try:
            case = validator.validate()
        except Exception as e:  # a validator bug costs this document, not the run
            validator.problems.append(Problem(name, doc.pos[0], 1, f"{INTERNAL}: {e!r}"))
            case = None
        suite.warnings += validator.warnings
        if case is not None:
            suite.cases.append(_plain(case))
        else:
            doc_id = doc.data.get("id") if isinstance(doc.data, dict) else None
            if not isinstance(doc_id, str) or not doc_id:
                doc_id = f"{_file_id(name)}-{index + 1}"
            suite.invalid.append(InvalidCase(doc_id, name, doc.pos[0], validator.problems))
    return suite


def _plain(value: Any) -> Any:
    """``value`` with every mapping and list of the YAML made plain: a validated case keeps no
    positions (only validation reports them), which are near half of a loaded case's memory."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def load_suite(paths: list[str]) -> Suite:
    """Every case under ``paths``; invalid documents and duplicate ids land in ``invalid``."""
    suite = Suite()
    for path in discover(paths):
        part = load_file(path)
        suite.cases += part.cases
        suite.invalid += part.invalid
        suite.warnings += part.warnings
    flag_duplicates(suite)
    return suite


def flag_duplicates(suite: Suite) -> None:
    """Move every case whose id was seen before (in this suite) to ``invalid``."""
    ids = UniqueIds()
    keep = []
    for case in suite.cases:
        duplicate = ids.duplicate(case)
        if duplicate is not None:
            suite.invalid.append(duplicate)
        else:
            keep.append(case)
    suite.cases = keep


class UniqueIds:
    """The ids of the cases seen so far, in load order: the first case with an id keeps it."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}  # id -> where the first case with it is

    def duplicate(self, case: Case) -> InvalidCase | None:
        """CASE as an invalid document if an earlier case has its id; else None (and its id is
        taken)."""
        where = self.first.get(case.id)
        if where is None:
            self.first[case.id] = case.location
            return None
        message = f"duplicate id {case.id!r}, first at {where}"
        problem = Problem(case.file, case.line, 1, message, "id")
        return InvalidCase(case.id, case.file, case.line, [problem])


def _file_id(name: str) -> str:
    stem = Path(name).stem.lower()
    return "".join(c if c.isalnum() else "-" for c in stem).strip("-") or "file"
