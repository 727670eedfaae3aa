"""Collection: a YAML case file becomes one item per case × backing, in the engine's plan order.

A document that does not validate becomes a collector that fails with its ``file:line:column``
problems, so the valid cases of the same file still run, as with ``mmapconf run``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.engine import portable, runner_for
from conformance.failure import format_problems
from conformance.item import CaseItem
from conformance.options import collects_everywhere
from runner.lang.loader import SUFFIXES, Suite, flag_duplicates, holds_cases, load_file
from runner.lang.model import Case
from runner.session.runner import Item

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

_FIRST_CASES = pytest.StashKey[dict[str, Case]]()


def is_case_file(path: Path, parent: pytest.Collector) -> bool:
    """A YAML file that holds cases, and that pytest reached through a file or folder named on
    its command line, or anywhere when the project enables that (``mmapconf_collect = all``)."""
    if path.suffix not in SUFFIXES:
        return False
    config = parent.config
    if not (collects_everywhere(config) or _under_named_path(config, path)):
        return False
    return holds_cases(path)


def _under_named_path(config: pytest.Config, path: Path) -> bool:
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False  # testpaths or the current folder: pytest chose them, not the user
    for arg in config.args:
        named = Path(os.path.abspath(config.invocation_params.dir / arg.split("::")[0]))
        if path == named or named in path.parents:
            return True
    return False


class CaseFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        suite = load_file(self.path)
        _flag_cross_file_duplicates(self.config, suite)
        runner = runner_for(self.config)
        for item in runner.plan(suite):
            if item.invalid is not None:
                yield InvalidCase.from_parent(self, name=item.name, plan_item=item)
            else:
                yield CaseItem.from_parent(self, name=item.name, plan_item=item)


class InvalidCaseError(Exception):
    """Raised by an invalid document's collector; its display is the problem list."""


class InvalidCase(pytest.Collector):
    """``ID[invalid]``: fails at collection, showing every problem of the document."""

    def __init__(self, *, plan_item: Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_item = plan_item
        # what report.json records for it: the engine's own ``error`` result for this document
        self.result = portable(runner_for(self.config).run_item(plan_item))

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        raise InvalidCaseError(self.plan_item.name)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, InvalidCaseError):
            invalid = self.plan_item.invalid
            assert invalid is not None
            # pytest heads a collection error with the file only: name the document first
            head = f"invalid case {self.name} at {invalid.file}:{invalid.line}:"
            # plain text, not as_longrepr: xdist drops a collection error that another worker
            # already reported by comparing the two, which only works for strings
            return head + "\n" + format_problems(invalid.problems)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int, str]:
        assert self.plan_item.invalid is not None
        return self.path, self.plan_item.invalid.line - 1, self.name


def _flag_cross_file_duplicates(config: pytest.Config, suite: Suite) -> None:
    """Ids must be unique across the suite, as ``load_suite`` checks: the engine's own check runs
    over the cases collected so far plus this file's, and later duplicates become invalid."""
    first = config.stash.setdefault(_FIRST_CASES, {})
    combined = Suite(cases=[*first.values(), *suite.cases])
    flag_duplicates(combined)
    suite.invalid += combined.invalid
    kept = {id(c) for c in combined.cases}
    suite.cases = [c for c in suite.cases if id(c) in kept]
    first.update((c.id, c) for c in suite.cases)
