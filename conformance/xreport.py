"""One report.json per pytest run, written by the process that sees every report.

That is the serial pytest process, or the xdist controller: workers attach each result to
their reports (``report.mmapconf_result``, which pytest's report serialisation and so xdist and
pytest-forked carry), and the controller collects them. Results live in the controller only, so
a worker that dies loses nothing already reported; the item it was running, and any case item
that failed without a result, become ``error`` results naming what pytest said.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from conformance.engine import baseline_for, environment_for
from runner.lang.loader import SUFFIXES
from runner.report.baseline import baseline_lines
from runner.session.pipeline import Finished, Output, conclude
from runner.session.runner import Result

ATTR = "mmapconf_result"


def attach(rep: pytest.CollectReport | pytest.TestReport, result: dict[str, Any]) -> None:
    """As JSON text: execnet cannot send some plain values (it fails on -2**63, an offset
    that cases use), and a failed send takes the whole xdist session down."""
    setattr(rep, ATTR, json.dumps(result))


_NAME = re.compile(r"^(?P<id>.+)\[(?P<backing>[^\]]*)\]$")


def result_of(rep: pytest.CollectReport | pytest.TestReport) -> dict[str, Any] | None:
    text = getattr(rep, ATTR, None)
    return json.loads(text) if text is not None else None


class ReportWriter:
    """Registered only where reports end up, and only when a report was asked for: never in an
    xdist worker."""

    def __init__(self, config: pytest.Config, folder: Path) -> None:
        self.config = config
        self.folder = folder
        self.results: dict[str, dict[str, Any]] = {}
        self.unresolved: dict[str, pytest.TestReport] = {}
        self.order: dict[str, int] = {}
        self.start = time.monotonic()
        self.env: dict[str, Any] | None = None
        self.finished: Finished | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.start = time.monotonic()
        self.env = environment_for(self.config)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._set_order([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.order:  # every worker collects the same items
            self._set_order(ids)

    def _set_order(self, nodeids: list[str]) -> None:
        for nodeid in nodeids:
            self.order.setdefault(_name(nodeid), len(self.order))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        result = result_of(report)
        if result is not None:
            self.results[result["name"]] = result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = result_of(report)
        if result is not None:
            self.results[result["name"]] = result
            self.unresolved.pop(report.nodeid, None)
        elif report.failed and _is_case_node(report.nodeid):
            self.unresolved.setdefault(report.nodeid, report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for nodeid, rep in self.unresolved.items():
            name = _name(nodeid)
            if name not in self.results:
                self.results[name] = _lost_result(nodeid, rep)
        if not self.results or self.env is None or self.config.option.collectonly:
            return  # no case ran: nothing to report (e.g. the project's own tests)
        results = sorted(self.results.values(), key=self._key)
        duration = time.monotonic() - self.start
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        full = bool(self.config.getoption("mmapconf_full_traces"))
        output = Output(self.folder, baseline=baseline_for(self.config), full_traces=full)
        self.finished = conclude(
            self.env, results, duration, output, interrupted_by=130 if interrupted else None
        )
        if self.finished.status and exitstatus == pytest.ExitCode.OK:
            # the gate of `mmapconf run`: an expired baseline entry, or a strict unexpected pass
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None, Any, None]:
        yield  # after pytest's own summary: the last line before the counts
        if self.finished is None:
            return
        for line in baseline_lines(self.finished.report):
            terminalreporter.write_line(line)
        terminalreporter.write_sep("-", f"mmapconf report: {self.finished.path}")

    def _key(self, result: dict[str, Any]) -> tuple[int, int, str]:
        # invalid documents first, then collection order: as ``mmapconf run`` plans a suite
        first = 0 if result["backing"] == "invalid" else 1
        return first, self.order.get(result["name"], len(self.order)), result["name"]


def _name(nodeid: str) -> str:
    return nodeid.rpartition("::")[2]


def _is_case_node(nodeid: str) -> bool:
    path, sep, name = nodeid.partition("::")
    return bool(sep) and path.endswith(SUFFIXES) and _NAME.match(name) is not None


def _lost_result(nodeid: str, rep: pytest.TestReport) -> dict[str, Any]:
    """A case item whose result never arrived: its worker crashed, or the plugin itself broke."""
    path, _, name = nodeid.partition("::")
    match = _NAME.match(name)
    assert match is not None
    line = rep.location[1] if rep.location and rep.location[1] is not None else None
    text = str(rep.longrepr or "no result").strip().splitlines()
    reason = f"no result from pytest ({rep.when}): {text[-1] if text else ''}".strip()
    return Result(
        name=name,
        id=match["id"],
        backing=match["backing"],
        file=path,
        line=line + 1 if line is not None else 0,
        outcome="error",
        reason=reason,
        duration_s=round(rep.duration, 6),
    ).to_json()
