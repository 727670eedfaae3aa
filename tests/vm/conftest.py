"""Helpers of the kernel and guest tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def fake_deb() -> Callable[[Path, str, dict[str, str | bytes | Path]], Path]:
    """fake_deb(DIR, NAME, FILES): a minimal .deb built in DIR, FILES mapping a path to its
    text or bytes, or to a symlink target (a Path)."""
    return _fake_deb


def _fake_deb(tmp_path: Path, name: str, files: dict[str, str | bytes | Path]) -> Path:
    top = tmp_path / name
    for rel, content in files.items():
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            p.symlink_to(content)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    (top / "DEBIAN").mkdir()
    (top / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1\nArchitecture: arm64\nMaintainer: t <t@t>\nDescription: t\n"
    )
    subprocess.run(
        ["dpkg-deb", "-b", "-Znone", str(top), str(tmp_path / f"{name}.deb")],
        check=True,
        capture_output=True,
    )
    return tmp_path / f"{name}.deb"
