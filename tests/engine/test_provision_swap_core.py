"""``provision.swap`` and ``provision.core`` on the host side: what the validator refuses, the
``core`` step's rule, and the skips (both are machine-wide, made only by a batch guest:
tests/vm/test_vm_swap_core.py boots one)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.engine import provision
from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner

CORE = """\
id: prov-core
title: t
provision:
  core: {}
steps:
  - fork:
      steps:
        - wait_for: never
    as: c
  - kill: {pid: c, signal: SIGABRT}
  - wait: c
  - core: {pid: c, addr: 0, length: 0}
"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def _problems(tmp_path: Path, text: str) -> list[str]:
    return [str(p) for p in load_suite([_write(tmp_path, text)]).problems]


@pytest.mark.parametrize(
    ("provision_text", "message"),
    [
        ("swap: 5", "must be a mapping with size"),
        ("swap: {size: 4096}", "outside 1048576..268435456"),
        ("swap: {size: 1024 * 1024 * 1024}", "outside 1048576..268435456"),
        ("swap: {size: 16 * 1024 * 1024, priority: 1}", "unknown provision.swap key"),
        ("core: 5", "must be a mapping of limit and filter"),
        ("core: {filter: 0x200}", "outside 0..511"),
        ("core: {limit: -5}", "outside 0..268435456"),
        ("core: {limit: 1024 * 1024 * 1024}", "outside 0..268435456"),
        ("core: {pattern: x}", "unknown provision.core key"),
    ],
)
def test_validator_refuses(tmp_path: Path, provision_text: str, message: str) -> None:
    text = f"id: p\ntitle: t\nprovision:\n  {provision_text}\nsteps:\n  - sleep: 1\n"
    problems = _problems(tmp_path, text)
    assert any(message in p and "case.yaml:" in p for p in problems), problems


def test_the_forms_read_as_documented(tmp_path: Path) -> None:
    text = CORE.replace("core: {}", "core: {limit: RLIM_INFINITY, filter: 0x31}")
    text = text.replace("provision:\n", "provision:\n  swap: {size: 4 * 1024 * 1024}\n")
    (case,) = load_suite([_write(tmp_path, text)]).cases
    assert case.provision is not None and case.provision.core is not None
    assert (case.provision.core.limit, case.provision.core.filter) == (-1, 0x31)
    assert case.provision.swap_size == 4 << 20
    (default,) = load_suite([_write(tmp_path, CORE)]).cases
    core = default.provision.core if default.provision else None
    assert core is not None and (core.limit, core.filter) == (64 << 20, -1)


def test_a_core_step_needs_provision_core(tmp_path: Path) -> None:
    text = CORE.replace("provision:\n  core: {}\n", "")
    problems = _problems(tmp_path, text)
    assert any("case.yaml:10:" in p and "provision.core" in p for p in problems), problems


@pytest.mark.parametrize("key", ["swap: {size: 16 * 1024 * 1024}", "core: {}"])
def test_skipped_on_the_host_with_the_reason(tmp_path: Path, key: str) -> None:
    text = CORE.replace("core: {}", key)
    if not key.startswith("core"):
        text = text.replace("  - core: {pid: c, addr: 0, length: 0}\n", "")
    runner = Runner(RunConfig(dirs=[]))
    try:
        (item,) = runner.plan(load_suite([_write(tmp_path, text)]))
        result, _ = runner.new_result(item)
    finally:
        runner.close()
    name = key.split(":")[0]
    assert result.outcome == "skipped"
    assert result.reason == f"provision.{name}: machine-wide, made in a guest only (run --kernel)"


def test_a_python_guest_skips_them_for_the_batch_guest(monkeypatch) -> None:
    monkeypatch.setenv("MMAPCONF_GUEST", "1")
    case = load_suite([str(Path(__file__).parents[2] / "cases/coredump/rlimit.yaml")]).cases[0]
    why = provision.why_not(case.provision)
    assert (
        why == "provision.core: machine-wide, made by the batch guest only (--guest-runner native)"
    )
