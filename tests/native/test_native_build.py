"""The native executor builds from its one source file, is cached by source hash, and cross-builds
for arm64 guests where that compiler is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.engine.native import build
from runner.engine.native.program import OP_CODES


def test_the_build_is_cached_by_source_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MMAPCONF_CACHE", str(tmp_path))
    first = build.executor_path()
    stamp = first.stat().st_mtime_ns
    assert build.executor_path() == first and first.stat().st_mtime_ns == stamp
    assert first.parent.parent == tmp_path / "native"
    usage = subprocess.run([str(first)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "started by mmapconf" in usage.stderr


def test_a_missing_compiler_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MMAPCONF_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(build.BuildError, match="no C compiler .no-such-cc.*install gcc"):
        build.executor_path()


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None, reason="no arm64 compiler")
def test_it_cross_builds_for_arm64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CC", "aarch64-linux-gnu-gcc")
    out = build.build(tmp_path / "mmapconf-exec-arm64", static=True)
    head = out.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183  # EM_AARCH64


def test_the_executor_numbers_the_operations_as_the_compiler_does():
    """executor.c's operation codes are ops.py's table in order (program.py's OP_CODES)."""
    text = build.SOURCE.read_text()
    block = re.search(r"enum \{\s*OP_FILE = 1,(.*?)OP_COUNT", text, re.S)
    assert block is not None
    names = ["FILE", *re.findall(r"OP_(\w+)", block.group(1))]
    assert names == [op.upper() for op in OP_CODES]
