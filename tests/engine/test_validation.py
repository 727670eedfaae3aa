"""Validation: every problem at once, each at file:line:column with its key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.lang.expr import ExprError, parse
from runner.lang.loader import load_suite

BAD = """\
id: bad_id
title: t
steps:
  - mmap: {length: 2 * PAGE, prot: PROT_RED, flags: MAP_SHARED|MADV_FREE, fd: q}
    as: m
  - load: {addr: m}
    expect: {signal: SIGBUS, si_code: SEGV_MAPERR}
  - munmap: {addr: m, length: 1, bogus: 1}
  - frob: 1
  - wait: m
    expect: {errno: ENOTANERRNO}
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return [str(p).split("c.yaml:", 1)[1] for p in load_suite([str(path)]).problems]


def test_all_problems_with_positions(tmp_path):
    assert problems(tmp_path, BAD) == [
        "1:1: id: 'bad_id' is not kebab-case (a-z, 0-9, single hyphens)",
        "4:30: prot: unknown PROT_ flag 'PROT_RED' (did you mean 'PROT_READ'?)",
        "4:46: flags: unknown MAP_ flag 'MADV_FREE' (a MADV_ name)",
        "4:75: fd: 'q' is not bound before this step",
        "7:30: si_code: 'SEGV_MAPERR' is not an si_code of SIGBUS (BUS_ADRALN, BUS_ADRERR, "
        "BUS_OBJERR, BUS_MCEERR_AR, BUS_MCEERR_AO)",
        "8:5: step 3: comes after a step that expects the process to die",
        "8:34: bogus: unknown argument of 'munmap'; it takes addr, length",
        "9:5: step 4: a step needs exactly one operation (unknown: frob)",
        "11:14: errno: unknown errno name 'ENOTANERRNO'",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("id: a\ntitle: t\nsteps: [{load: {addr: x}}]\n", "'x' is not bound before this step"),
        ("id: a\ntitle: t\n", "a case needs exactly one of 'steps' and 'processes'"),
        ("title: t\nsteps: [{post: e}]\n", "missing required key 'id'"),
        ("id: a\ntitle: t\ncolour: red\nsteps: [{post: e}]\n", "colour: unknown key"),
        ("id: a\ntitle: t\nsteps: [{file: ../etc/passwd}]\n", "no '/', not '..'"),
        (
            "id: a\ntitle: t\nsteps: [{open: {file: g, flags: O_RDONLY}}]\n",
            "'g' is not a file made by a 'file' step before",
        ),
        ("id: a\ntitle: t\nsteps: [{kill: {pid: 1, signal: SIGFOO}}]\n", "unknown signal 'SIGFOO'"),
        (
            "id: a\ntitle: t\nrequires: {kernel: new}\nsteps: [{post: e}]\n",
            "expected comparisons like '>=4.17'",
        ),
        ("id: a\ntitle: t\nsteps: [{load: {addr: ().__class__}}]\n", "is not allowed"),
        (
            "id: a\ntitle: t\nsteps: [{load: {addr: '__import__(\"os\")'}}]\n",
            "only min, max, align_up, align_down and pick may be called",
        ),
        (
            "id: a\ntitle: t\nsteps:\n  - load: 0\n    expect: [{errno: EINVAL}, {value: 1}]\n",
            "only the last entry of the list may go without 'when'",
        ),
        (
            "id: a\ntitle: t\nsteps: [{store: {addr: 0, format: '<ii', values: [1]}}]\n",
            "the format has 2 fields, 1 values given",
        ),
        ("a: [\n", "YAML:"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
    ],
)
def test_one_problem(tmp_path, text, expected):
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text("id: same\ntitle: t\nsteps: [{post: e}]\n")
    (tmp_path / "b.yaml").write_text("id: same\ntitle: t\nsteps: [{post: e}]\n")
    suite = load_suite([str(tmp_path)])
    assert len(suite.cases) == 1
    assert "duplicate id 'same', first at" in str(suite.problems[0])
    assert "b.yaml:1:1" in str(suite.problems[0])


@pytest.mark.parametrize(
    "expr",
    [
        "().__class__",
        "__import__('os')",
        "lambda: 1",
        "[x for x in y]",
        "a.__dict__",
        "a.b.c",
        "x[0]",
        "2 ** 8",
        "open('f')",
        "1 if x else 2",
        "'text'",
        "1.5",
    ],
)
def test_expressions_refuse_everything_but_integer_arithmetic(expr):
    with pytest.raises(ExprError):
        parse(expr)


def test_expressions_compute():
    env = {"m": 4096, "PAGE": 4096}
    assert parse("align_up(m + 1, PAGE) + max(1, 2) * 3 - (PAGE >> 12)").eval(env) == 8197


def test_validate_command_exits_2_without_a_traceback(tmp_path):
    (tmp_path / "c.yaml").write_text(BAD)
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "validate", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "c.yaml:4:30: prot: unknown PROT_ flag 'PROT_RED'" in proc.stderr
