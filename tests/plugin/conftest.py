"""Fixtures for the plugin's self-tests: the case tree of ``plugin_support`` in pytester's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from plugin_support import DEMO, INVALID, write

import conformance

ROOT = Path(conformance.__file__).resolve().parent.parent


@pytest.fixture
def demo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester with cases/demo/demo.yaml; subprocess runs find the plugin without installing."""
    write(pytester.path, "cases/demo/demo.yaml", DEMO)
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    # only the plugins a test names: faster, and the same whatever else is installed
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


@pytest.fixture
def with_invalid(demo: pytest.Pytester) -> pytest.Pytester:
    write(demo.path, "cases/other/invalid.yaml", INVALID)
    return demo
