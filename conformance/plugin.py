"""The pytest hooks of mmapconf: options, collection of case files, report attributes.

Modelled on Tavern's pytest side: collection (``collect``), the item (``item``) and the failure
display (``failure``) each live in their own small module; this one only wires them to pytest.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from conformance import engine, options
from conformance.collect import CaseFile, InvalidCase, is_case_file
from conformance.item import CaseItem
from conformance.xreport import ATTR, ReportWriter, attach, result_of


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    options.collects_everywhere(config)  # a bad ini value stops pytest here, not mid-collection
    config.pluginmanager.register(InvalidCasesDoNotStop(), "mmapconf-collection")
    folder = options.report_dir(config)
    # an xdist worker reports to its controller
    if folder is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ReportWriter(config, folder), "mmapconf-report")


def pytest_unconfigure(config: pytest.Config) -> None:
    engine.close_runner(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    if is_case_file(file_path, parent):
        return CaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    if isinstance(collector, InvalidCase):
        attach(outcome.get_result(), collector.result)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    if isinstance(item, CaseItem) and call.when == "call" and item.result is not None:
        rep = outcome.get_result()
        attach(rep, item.result)
        if rep.skipped and isinstance(rep.longrepr, tuple):
            # point the skip at the case, not at the plugin line that called pytest.skip
            path, line, _ = item.reportinfo()
            rep.longrepr = (str(path), line + 1, rep.longrepr[2])


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, Any] | None:
    """The engine's ``error`` and ``timeout`` outcomes, which pytest has no words for, and known
    deviations (a baselined failure: pytest's xfail underneath), which are not failures."""
    result = result_of(report) if report.when == "call" else None
    if result is None:
        return None
    if report.skipped and hasattr(report, "wasxfail"):
        return "known", "K", ("KNOWN", {"yellow": True})
    if result["outcome"] == "error":
        return "error", "E", "ERROR"
    if result["outcome"] == "timeout":
        return "failed", "T", "TIMEOUT"
    return None


class InvalidCasesDoNotStop:
    """Invalid case documents do not stop the run, as with ``mmapconf run`` (they still make the
    exit status 1); a collection error of any other kind keeps pytest's usual stop."""

    def __init__(self) -> None:
        self.failed = 0
        self.invalid = 0

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.failed += 1
            self.invalid += getattr(report, ATTR, None) is not None

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, Any, None]:
        option = session.config.option
        relax = 0 < self.failed == self.invalid and not option.continue_on_collection_errors
        if relax:
            option.continue_on_collection_errors = True
        try:
            yield
        finally:
            if relax:
                option.continue_on_collection_errors = False
