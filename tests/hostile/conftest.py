"""Every hostile test that runs a case runs on each executor while there are two: every wall is
shown on both."""

from __future__ import annotations

import pytest

EXECUTORS = ("python", "native")
RUNS_NO_CASE = {"test_hostile_fuzz"}  # validation only: the same on either


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ not in RUNS_NO_CASE:
        metafunc.parametrize("executor", EXECUTORS, indirect=True)


@pytest.fixture(autouse=True)
def executor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The executor of the runs a test makes, in this process (RunConfig's default) and in the
    ``mmapconf`` and ``pytest`` processes it starts (they inherit the environment)."""
    name = getattr(request, "param", "native")
    monkeypatch.setenv("MMAPCONF_EXECUTOR", name)
    return name
