"""Misspelt keys, operations, flag and errno names get a suggestion; an unknown key beside an
operation lists what a step takes too; a wait_for nobody posts is a warning, not a problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.cli import main as cli
from runner.lang.loader import load_suite

TYPOS = """\
id: typos
title: t
reqiures: {kernel: ">=5.0"}
steps:
  - mmap: {lenght: PAGE, prot: PROT_READ, flags: MAP_SHRED | MAP_ANONYMOUS}
    expcet: {errno: EINVALL}
  - mmpa: {length: PAGE}
  - munmap: {addr: 0, length: PAGE}
    expect: {ernno: EINVAL}
  - munmap: {addr: 0, length: PAGE}
    expect: {errno: EINVALL}
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "case.yaml"
    path.write_text(textwrap.dedent(text))
    return [str(p) for p in load_suite([str(path)]).problems]


@pytest.mark.parametrize(
    "line",
    [
        "case.yaml:3:1: reqiures: unknown key (did you mean 'requires'?)",
        "case.yaml:6:5: expcet: unknown key for 'mmap' (did you mean 'expect'?); it takes "
        "length, prot, flags, fd, offset, addr; a step also takes as, expect, note",
        "case.yaml:5:12: lenght: unknown argument of 'mmap' (did you mean 'length'?)",
        "case.yaml:5:43: flags: unknown MAP_ flag 'MAP_SHRED' (did you mean 'MAP_SHARED'?)",
        "case.yaml:7:5: step 2: a step needs exactly one operation (unknown: mmpa (did you mean 'mmap'?))",
        "case.yaml:9:14: ernno: unknown expectation key (did you mean 'errno'?)",
        "case.yaml:11:14: errno: unknown errno name 'EINVALL' (did you mean 'EINVAL'?)",
    ],
)
def test_a_misspelling_gets_a_suggestion(tmp_path: Path, line: str) -> None:
    found = [p for p in _problems(tmp_path, TYPOS) if p.split("/")[-1].startswith(line)]
    assert found, _problems(tmp_path, TYPOS)


def test_no_suggestion_for_what_resembles_nothing(tmp_path: Path) -> None:
    text = TYPOS.replace("reqiures", "zzzzqq")
    assert any(
        p.endswith("zzzzqq: unknown key; expected one of id, title, claim, refs, tags, requires, "
                   "backings, timeout, setup, steps, processes, provision, address_space, "
                   "after_reboot")
        for p in _problems(tmp_path, text)
    )  # fmt: skip


WAITS = """\
id: waits-for-nobody
title: a wait nobody ends
timeout: 1
processes:
  a:
    steps:
      - post: ready
      - wait_for: ready
  b:
    steps:
      - wait_for: never
"""


def test_a_wait_for_nobody_posts_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(WAITS)
    suite = load_suite([str(path)])
    assert not suite.problems and len(suite.cases) == 1
    assert [str(w).split("/")[-1] for w in suite.warnings] == [
        "case.yaml:11:1: wait_for: no step posts 'never': this waits until the case's timeout"
    ]
    assert cli.main(["validate", str(path)]) == 0  # a warning does not fail validation
    captured = capsys.readouterr()
    assert "'never': this waits until the case's timeout (warning)" in captured.err
    assert "1 cases valid" in captured.out
