"""One gate: every outcome fails or passes it the same way through every run path (``mmapconf
run``, ``run --kernel``, the pytest plugin, ``report --gate``) and every report format.

The engine is replaced by one that gives each case the outcome its id names, so the test holds
every outcome, those the engine rarely produces (``flaky``, a newer engine's unknown one)
included; ``known`` is what the baseline makes of a failure, as in a real run.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ktap_grammar import parse as parse_ktap

from runner import outcomes
from runner.cli.main import main
from runner.report.model import load_report
from runner.session.runner import Item, Result, Runner
from runner.vm import run as vm_run

pytest_plugins = ["pytester"]

# every outcome, and one this version does not know (a newer engine's)
OUTCOMES = [*outcomes.NAMES, "exotic"]
ENGINE_SAYS = {"known": "failed"}  # the baseline turns this failure into known
BASELINE = """\
version: 1
entries:
  - name: gate-known[anon]
    reason: a documented deviation
    evidence: the test that made it
"""


def case_text() -> str:
    return "---\n".join(
        f"id: gate-{o}\ntitle: the engine says {ENGINE_SAYS.get(o, o)}\nsteps:\n"
        "  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS}\n"
        for o in OUTCOMES
    )


def fake_run_item(self: Runner, item: Item) -> Result:
    assert item.case is not None
    o = item.case.id.removeprefix("gate-")
    o = ENGINE_SAYS.get(o, o)
    step = {"process": "main", "step": "1", "op": "mmap", "line": 3, "args": {}}
    step.update(expected="success", observed="success" if o == "passed" else "EFAULT")
    step["ok"] = o in ("passed", "skipped")
    return Result(
        item.name,
        item.case.id,
        "anon",
        item.case.file,
        item.case.line,
        o,
        "" if o == "passed" else f"the engine says {o}",
        steps=[step],
        outcomes_seen=["passed", "failed"] if o == "flaky" else None,
    )


@pytest.fixture
def tree(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cases and the baseline in pytester's folder, which is the current one."""
    (pytester.path / "cases").mkdir()
    (pytester.path / "cases" / "gate.yaml").write_text(case_text())
    (pytester.path / "baseline.yaml").write_text(BASELINE)
    monkeypatch.setattr(Runner, "run_item", fake_run_item)
    # only the plugin under test in pytester's runs: faster, and the same whatever is installed
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.path


def run_cli(only: str | None, report_dir: str) -> int:
    keyword = ["-k", f"gate-{only}"] if only else []
    argv = ["run", "cases", *keyword, "--format", "all", "--baseline", "baseline.yaml"]
    return main([*argv, "--report-dir", report_dir])


def test_one_report_with_every_outcome_through_every_format(tree: Path) -> None:
    assert run_cli(None, "all") == 1
    report = load_report(tree / "all" / "report.json")
    seen = {r["id"].removeprefix("gate-"): r["outcome"] for r in report["results"]}
    assert seen == {o: o for o in OUTCOMES}
    fails = {f"gate-{o}[anon]": outcomes.fails_gate(o) for o in OUTCOMES}
    assert (
        fails["gate-flaky[anon]"] and fails["gate-exotic[anon]"] and not fails["gate-known[anon]"]
    )

    junit = ET.parse(tree / "all" / "report.xml").getroot()
    for tc in junit.iter("testcase"):
        marked = tc.find("failure") is not None or tc.find("error") is not None
        assert marked == fails[tc.get("name")], tc.get("name")
    failing = sum(fails.values())
    assert int(junit.get("failures")) + int(junit.get("errors")) == failing

    ktap = parse_ktap((tree / "all" / "report.ktap").read_text())
    assert {r.description: not r.ok for r in ktap} == fails

    md = (tree / "all" / "report.md").read_text()
    assert md.startswith("## mmapconf: ❌ failed")
    for name, bad in fails.items():
        assert (f"<code>{name}</code>" in md) == bad, name  # the details of what fails the gate
    html = (tree / "all" / "report.html").read_text()
    assert '<p class="verdict"><span class="o o-failed">FAILED</span>' in html
    for o in OUTCOMES:
        assert re.search(rf'data-name="gate-{o}\[anon\]" data-outcome="{o}"', html)


@pytest.mark.parametrize("o", OUTCOMES)
def test_every_run_path_gates_the_same_way(
    tree: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, o: str
) -> None:
    want = 1 if outcomes.fails_gate(o) else 0
    assert run_cli(o, "run") == want
    report_json = str(tree / "run" / "report.json")
    assert load_report(tree / "run" / "report.json")["results"][0]["outcome"] == o
    # the report of that run, gated again; and its formats, which say the same
    assert main(["report", report_json, "--gate", "--format", "md,ktap", "-o", "again"]) == want
    verdict = (tree / "again" / "report.md").read_text().splitlines()[0]
    assert verdict == ("## mmapconf: ❌ failed" if want else "## mmapconf: ✅ passed")
    # run --kernel: the guest wrote that report (the boot itself is tests/vm's)
    monkeypatch.setattr(vm_run, "run_under_kernels", lambda *a, **k: [Path(report_json)])
    assert main(["run", "--kernel", "6.1", "cases", "--report-dir", "k"]) == want
    # the pytest plugin, with the same baseline
    args = ["-p", "conformance", "cases", "-k", f"gate-{o}", "--mmapconf-baseline"]
    result = pytester.runpytest(*args, "baseline.yaml", "--report-dir", "p")
    assert result.ret == want, result.stdout.str()
    assert load_report(tree / "p" / "report.json")["results"][0]["outcome"] == o
