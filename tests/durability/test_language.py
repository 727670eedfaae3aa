"""The power-cut case language: what the validator accepts and the errors it gives (file, line,
what is wrong), and what the host does with such a case (skipped, with the reason)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner

GOOD = """id: cut-good
title: a power-cut case
provision:
  sysctls: {vm.dirty_expire_centisecs: 100}
setup:
  - file: f
    size: PAGE
steps:
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED, fd: f}
    as: m
  - store: {addr: m, data: "x"}
  - power_cut: {after_ms: 0}
after_reboot:
  - open: {file: f, flags: O_RDONLY}
    as: fd
  - read: {fd: fd, length: 1}
    expect:
      - when: {disk: flushed}
        value: {hex: "00"}
      - value: {data: "x"}
"""


def _problems(tmp: Path, text: str) -> list[str]:
    path = tmp / "c.yaml"
    path.write_text(text)
    return [f"{p.line}: {p.message}" for p in load_suite([str(path)]).problems]


def test_the_good_case_is_valid(tmp_path: Path) -> None:
    assert _problems(tmp_path, GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "wanted"),
    [
        (
            "  - power_cut: {after_ms: 0}\n",
            "  - power_cut: {after_ms: 0}\n  - munmap: {addr: m, length: PAGE}\n",
            "13: comes after power_cut: it is never reached",
        ),
        ("{after_ms: 0}", "{after_ms: -1}", "after_ms is an integer of 0..600000 ms"),
        (
            "{after_ms: 0}",
            "{at: sometimes}",
            "'sometimes': power_cut at is one of every_flush or every_write",
        ),
        (
            "{after_ms: 0}",
            "{}",
            "power_cut takes after_ms: N, and/or at: every_flush or every_write",
        ),
        (
            "      - when: {disk: flushed}",
            "      - when: {disk: cached}",
            "'cached': the disk model is submitted or flushed",
        ),
        (
            "  - read: {fd: fd, length: 1}",
            "  - read: {fd: m, length: 1}",
            "'m' is not bound before this step",
        ),
        (
            "{vm.dirty_expire_centisecs: 100}",
            "{kernel.panic: 1}",
            "kernel.panic: a case may set sysctls under vm., fs.",
        ),
        (
            "after_reboot:\n",
            "backings: [tmpfs]\nafter_reboot:\n",
            "a power-cut case runs on the guest disk: backings: [disk]",
        ),
    ],
)
def test_bad_input_is_said_at_its_line(tmp_path: Path, old: str, new: str, wanted: str) -> None:
    assert old in GOOD
    problems = _problems(tmp_path, GOOD.replace(old, new))
    assert any(wanted in p for p in problems), problems


def test_after_reboot_needs_a_cut_and_a_cut_needs_after_reboot(tmp_path: Path) -> None:
    no_cut = GOOD.replace("  - power_cut: {after_ms: 0}\n", "")
    assert any("after_reboot needs a power_cut step" in p for p in _problems(tmp_path, no_cut))
    no_after = GOOD[: GOOD.index("after_reboot:")]
    assert any("needs after_reboot" in p for p in _problems(tmp_path, no_after))


def test_one_cut_at_the_top_of_a_process(tmp_path: Path) -> None:
    nested = GOOD.replace(
        "  - power_cut: {after_ms: 0}\n",
        "  - fork:\n      steps:\n        - power_cut: {after_ms: 0}\n",
    )
    assert any("a top-level step of its process" in p for p in _problems(tmp_path, nested))
    in_setup = GOOD.replace("    size: PAGE\n", "    size: PAGE\n  - power_cut: {after_ms: 0}\n")
    problems = _problems(tmp_path, in_setup)
    assert any("not of setup" in p for p in problems)
    assert any("cuts the power once" in p for p in problems)


def test_on_the_host_a_power_cut_case_is_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MMAPCONF_GUEST", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    runner = Runner(RunConfig(dirs=[str(tmp_path)]))
    items = runner.plan(load_suite([str(path)]))
    assert [i.name for i in items] == ["cut-good[disk]"]  # the disk only, not tmpfs or memfd
    result = runner.run_item(items[0])
    assert result.outcome == "skipped"
    assert "runs only under --kernel" in result.reason
    assert "provision.sysctls are set only in a disposable guest" in result.reason


def test_in_a_guest_the_ordinary_run_leaves_it_to_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMAPCONF_GUEST", "1")
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    assert Runner(RunConfig(dirs=[str(tmp_path)])).plan(load_suite([str(path)])) == []
