"""The wheel as a user gets it: built from this tree, installed into a fresh venv (its
dependencies from the configured index), run from an empty folder. It must carry the catalogue,
its schema and its baseline, and find them without the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
PACKAGES = ("runner", "conformance", "cases", "baselines")


def _run(argv: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv with the wheel of this tree installed."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"  # a copy: building writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in SOURCES:
        shutil.copy(ROOT / name, src / name)
    for name in PACKAGES:
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(base), "."], src)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = base.glob("mmapconf-*.whl")
    venv.create(base / "venv", with_pip=True)
    bin_ = base / "venv" / "bin"
    done = _run([str(bin_ / "python"), "-m", "pip", "install", "-q", str(wheel)], base)
    assert done.returncode == 0, done.stdout + done.stderr
    return bin_


def test_version_validate_and_run_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    mmapconf = str(installed / "mmapconf")
    version = _run([mmapconf, "--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("mmapconf 0."), version.stderr
    schema = _run([mmapconf, "schema", "--path"], tmp_path)
    where = Path(schema.stdout.strip())
    assert where.is_file() and installed.parent in where.parents  # the wheel's, not the tree's
    valid = _run([mmapconf, "validate"], tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "the shipped catalogue" in valid.stderr and " cases valid" in valid.stdout
    run = _run([mmapconf, "run", "-n", "2"], tmp_path)
    assert "cases: the catalogue shipped with mmapconf" in run.stdout, run.stdout + run.stderr
    assert "baseline " in run.stdout and " known" in run.stdout  # its own baseline, by default
    assert run.returncode in (0, 1), run.stderr  # 1 only when this kernel fails a case
    assert (tmp_path / "reports" / "latest" / "report.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_the_plugin_of_the_wheel_collects_a_named_folder(installed: Path, tmp_path: Path) -> None:
    """pytest from the venv (pytest is not a dependency: installed here from the index)."""
    done = _run([str(installed / "python"), "-m", "pip", "install", "-q", "pytest"], tmp_path)
    assert done.returncode == 0, done.stderr
    cases = _run([str(installed / "mmapconf"), "schema", "--path"], tmp_path).stdout.strip()
    folder = Path(cases).parent / "article"
    listed = _run(
        [
            str(installed / "python"),
            "-m",
            "pytest",
            "--co",
            "-q",
            "-p",
            "no:cacheprovider",
            str(folder),
        ],
        tmp_path,
    )
    assert "01-rdonly-shared-write-eacces.yaml::" in listed.stdout, listed.stdout + listed.stderr
    assert list(tmp_path.iterdir()) == []
