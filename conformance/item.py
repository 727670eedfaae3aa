"""One case on one backing as a pytest item: it runs through ``Runner.run_item`` and maps the
engine's outcome onto pytest's (passed, skipped with the reason, or a readable failure)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from conformance.engine import baseline_for, environment_for, portable, runner_for
from conformance.failure import as_longrepr, format_result
from runner.report.formats.junit import testcase_properties
from runner.session.pipeline import judge
from runner.session.runner import Item

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

# Markers that pytest gives a meaning: a tag with one of these names stays a -k word only, or
# a case tagged "skip" would silently never run.
RESERVED_MARKS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "tryfirst"}
)
_MARK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class CaseNotPassed(Exception):
    """The case failed, errored or timed out; carries its result for the display."""

    def __init__(self, result: dict[str, Any]):
        super().__init__(result.get("reason") or result["outcome"])
        self.result = result


class CaseItem(pytest.Item):
    """``ID[BACKING]`` under its case file."""

    def __init__(self, *, plan_item: Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_item = plan_item
        self.result: dict[str, Any] | None = None
        case = plan_item.case
        assert case is not None
        # -k looks at node names, markers and these extra words: add the title and the tags
        self.extra_keyword_matches.update([case.title, *case.tags])
        for tag in case.tags:
            if tag not in RESERVED_MARKS and _MARK_NAME.fullmatch(tag):
                register_marker(self.config, tag)
                self.add_marker(tag)

    def runtest(self) -> None:
        result = portable(runner_for(self.config).run_item(self.plan_item))
        env = environment_for(self.config)
        # judged here, once, as ``mmapconf run`` judges each result; the controller only sums up
        judge(baseline_for(self.config), env, result)
        self.result = result
        self.user_properties.extend(testcase_properties({"environment": env}, result))
        if result["outcome"] == "skipped":
            pytest.skip(result["reason"])
        if result["outcome"] == "known":
            entry = result["baseline"]
            where = f"{entry['file']}:{entry['line']}"
            pytest.xfail(f"known deviation ({where}): {entry['reason']} [{result['reason']}]")
        if result["outcome"] != "passed":
            raise CaseNotPassed(result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, CaseNotPassed):
            result = excinfo.value.result
            message = result.get("reason") or result["outcome"]
            return as_longrepr(format_result(result), result["file"], result["line"], message)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Any, int, str]:
        case = self.plan_item.case
        assert case is not None
        return self.path, case.line - 1, self.name


def register_marker(config: pytest.Config, tag: str) -> None:
    """Declare a tag as a marker before use, so neither a warning nor --strict-markers fires."""
    line = f"{tag}: mmapconf case tag"
    if line not in config.getini("markers"):
        config.addinivalue_line("markers", line)
