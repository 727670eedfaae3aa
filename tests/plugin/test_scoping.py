"""The plugin in other projects' sessions: it collects only case files, only below the paths
named on the command line unless the project enables more, and writes no report unless asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_support import DEMO, PLUGIN, write

import conformance

pytest_plugins = ["pytester"]

ROOT = Path(conformance.__file__).resolve().parent.parent
# pytest's cache and pytest-benchmark's folder are written by them, not by this plugin
QUIET = ("-p", "no:cacheprovider", "-p", "no:benchmark")
ALL = "[pytest]\nmmapconf_collect = all\n"


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def test_no_implicit_collection_unless_the_project_enables_it(demo: pytest.Pytester) -> None:
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q")
    assert collected(result) == [] and result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    demo.makefile(".ini", pytest=ALL)
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q")
    assert len(collected(result)) == 6


def test_yaml_that_holds_no_cases_is_left_alone(demo: pytest.Pytester) -> None:
    demo.makefile(".ini", pytest=ALL)
    write(demo.path, "cases/data/settings.yaml", "key: value\nsteps: [a, b]\n")
    write(demo.path, "cases/data/test_api.tavern.yaml", "test_name: get\nstages:\n  - name: x\n")
    write(demo.path, "cases/data/list.yml", "- id: 1\n  steps: []\n")
    for args in ((), ("cases",), ("cases/data",), ("cases/data/settings.yaml",)):
        result = demo.runpytest(*PLUGIN, "--collect-only", "-q", *args)
        assert "data" not in result.stdout.str().replace("cases/demo/demo.yaml", "")
        assert "unknown key" not in result.stdout.str()


def test_a_broken_case_file_is_still_reported(demo: pytest.Pytester) -> None:
    write(demo.path, "cases/broken.yaml", "id: half\ntitle: a quote never closed: 'x\nsteps: []\n")
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q", "cases")
    result.stdout.fnmatch_lines(["ERROR cases/broken.yaml::broken[[]invalid[]]"])
    assert result.ret != pytest.ExitCode.OK


def test_any_folder_named_on_the_command_line_is_collected(
    demo: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("my-suite")
    write(elsewhere, "area/demo.yaml", DEMO)
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q", str(elsewhere))
    assert len(collected(result)) == 6
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q", str(elsewhere / "area" / "demo.yaml"))
    assert len(collected(result)) == 6


def test_a_cases_folder_that_becomes_the_rootdir_is_collected(demo: pytest.Pytester) -> None:
    result = demo.runpytest(*PLUGIN, "--collect-only", "-q", "--rootdir", "cases", "cases")
    assert len(collected(result)) == 6


def test_no_report_unless_asked_or_configured(demo: pytest.Pytester) -> None:
    result = demo.runpytest(*PLUGIN, "cases", "-k", "demo-pass")
    result.assert_outcomes(passed=1)
    # pytester makes this folder HOME: ~/.cache/mmapconf (validated cases, the built executor)
    # is a cache, not a report
    assert sorted(p.name for p in demo.path.iterdir() if p.name != ".cache") == ["cases"]
    demo.makefile(".ini", pytest="[pytest]\nmmapconf_report_dir = out\n")
    demo.runpytest(*PLUGIN, "cases", "-k", "demo-pass").assert_outcomes(passed=1)
    assert (demo.path / "out" / "report.json").is_file()


def test_a_bad_collect_value_is_a_usage_error(demo: pytest.Pytester) -> None:
    demo.makefile(".ini", pytest="[pytest]\nmmapconf_collect = everything\n")
    result = demo.runpytest(*PLUGIN, "cases")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*mmapconf_collect = 'everything': use 'named' or 'all'*"])


CONFTEST = """\
import pathlib
import pytest
import yaml

@pytest.fixture
def data():
    return yaml.safe_load((pathlib.Path(__file__).parent / "cases" / "data.yaml").read_text())
"""

PROJECT_TEST = """\
def test_reads_its_own_data(data):
    assert data["test_name"] == "fetch"

def test_plain():
    assert 1 + 1 == 2
"""


def tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("args", [(), ("tests",), ("tests/cases",)])
def test_another_project_runs_untouched_with_the_plugin_installed(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The plugin as installed (its entry point, every other installed plugin too), in a
    project whose own tests/cases holds data files and a Tavern test, not mmapconf cases."""
    write(tmp_path, "pyproject.toml", '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    write(tmp_path, "tests/conftest.py", CONFTEST)
    write(tmp_path, "tests/test_project.py", PROJECT_TEST)
    write(tmp_path, "tests/cases/data.yaml", "test_name: fetch\nid: 7\nstages: []\n")
    write(tmp_path, "tests/cases/test_x.tavern.yaml", "test_name: x\nstages:\n  - name: a\n")
    before = tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = str(ROOT)  # this checkout's plugin, whichever checkout is installed
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *QUIET, "-q", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    expected = "2 passed" if args != ("tests/cases",) else "no tests ran"
    assert expected in run.stdout, run.stdout + run.stderr
    assert "unknown key" not in run.stdout and "mmapconf" not in run.stdout
    plugins = subprocess.run(
        [sys.executable, "-m", "pytest", "--trace-config", "--co", "-q", *QUIET],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "conformance" in plugins.stdout  # the plugin was loaded, through its entry point
    assert tree(tmp_path) == before


def test_mmapconf_run_and_pytest_take_the_same_paths_and_options(
    demo: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from runner.cli import main as cli

    elsewhere = tmp_path_factory.mktemp("suite")
    write(elsewhere, "area/demo.yaml", DEMO)
    for paths in ([str(elsewhere)], [str(elsewhere / "area" / "demo.yaml")], ["cases"]):
        options = ["-k", "sigbus or pass", "--backing", "tmpfs,anon"]
        listed = demo.runpytest(*PLUGIN, "--collect-only", "-q", *paths, *options)
        names = sorted(line.rpartition("::")[2] for line in collected(listed))
        assert cli.main(["run", *paths, *options, "--report-dir", str(demo.path / "r")]) == 0
        report = json.loads((demo.path / "r" / "report.json").read_text())
        assert names == sorted(r["name"] for r in report["results"])
        assert names == ["demo-pass[anon]", "demo-sigbus[tmpfs]"]
