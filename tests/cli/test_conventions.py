"""What people who run kernel and LTP suites expect: flag, errno and event names in ``explain``,
kselftest's totals in KTAP, reports on stdout, an LTP/kirk-style JSON export, --accel help."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import main as cli
from runner.lang.names import flag_text

EVENTS = """\
id: explain-names
title: two processes hand over through an event
processes:
  writer:
    steps:
      - mmap: {length: PAGE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS}
        as: m
      - madvise: {addr: m, length: PAGE, advice: MADV_DONTNEED}
      - post: handed_over
  reader:
    steps:
      - wait_for: handed_over
      - munmap: {addr: 1, length: PAGE}
        expect: {errno: EINVAL}
"""


@pytest.mark.parametrize(
    "family, value, text",
    [
        ("PROT", 3, "PROT_READ|PROT_WRITE"),
        ("PROT", 0, "PROT_NONE"),
        ("MAP", 0x22, "MAP_PRIVATE|MAP_ANONYMOUS"),
        ("MAP", 0x80000001, "MAP_SHARED|0x80000000"),
        ("MADV", 4, "MADV_DONTNEED"),
        ("MADV", 999, "999"),
        ("O", 0, "O_RDONLY"),
        ("O", 0o102, "O_RDWR|O_CREAT"),
    ],
)
def test_flag_text(family: str, value: int, text: str) -> None:
    assert flag_text(family, value) == text


def test_explain_shows_flag_errno_and_event_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "case.yaml").write_text(EVENTS)
    assert cli.main(["explain", "explain-names", str(tmp_path / "case.yaml")]) == 0
    out = capsys.readouterr().out
    assert "prot=PROT_READ|PROT_WRITE, flags=MAP_PRIVATE|MAP_ANONYMOUS" in out
    assert "advice=MADV_DONTNEED" in out
    assert "post(event=handed_over)" in out and "wait_for(event=handed_over)" in out
    assert "expected errno EINVAL; observed errno EINVAL" in out
    assert "prot=3" not in out and "event=0" not in out


def test_accel_has_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    described = out.split("--accel {auto,tcg,kvm} ")[-1].split(" --vm-timeout")[0]
    assert "kvm (" in described and "tcg (" in described and "auto (" in described
