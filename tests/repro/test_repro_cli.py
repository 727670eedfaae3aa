"""`mmapconf repro`: the file it writes builds with `cc -O2 -static` alone and reproduces; what
it cannot reproduce faithfully, or what is skipped here, it refuses in one line with exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from repro_util import CC, static_libc_missing

from runner.cli.main import main

MISSING = static_libc_missing()
OLD_KERNEL = """\
id: old-kernel
title: only for kernels before 2.0
requires: {kernel: "<2.0"}
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
"""
TWO_BINDINGS = """\
id: two-kinds
title: one name bound as an address and as bytes
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: x
  - load: {addr: x, length: 1}
    as: x
"""


@pytest.mark.skipif(bool(MISSING), reason=MISSING)
def test_written_file_builds_with_cc_static_alone_and_reproduces(tmp_path, capsys) -> None:
    out = tmp_path / "repro.c"
    assert main(["repro", "article-sigbus-past-eof[tmpfs]", "-o", str(out)]) == 0
    source = out.read_text()
    assert "cases/article/02-sigbus-past-eof.yaml:23" in source  # each step cites its line
    assert "0x1 /* MAP_SHARED */" in source  # names resolved, the name kept in a comment
    exe = tmp_path / "repro"
    subprocess.run([CC or "cc", "-O2", "-static", str(out), "-o", str(exe)], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout
    assert "main step 5 (load): SIGBUS/BUS_ADRERR at 0x" in run.stdout
    assert run.stdout.splitlines()[-1] == "PASS"


def test_stdout_without_o(capsys) -> None:
    assert main(["repro", "mmap-anon-fd-ignored"]) == 0
    assert "int main(int argc, char **argv)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["article-sigbus-past-eof[anon]"], "runs on disk, tmpfs, memfd, not on anon"),
        (["no-such-case"], "no case with id 'no-such-case'"),
    ],
)
def test_refusals_are_one_line_and_exit_2(capsys, argv, words) -> None:
    assert main(["repro", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_an_item_skipped_here_is_refused(tmp_path, capsys) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(OLD_KERNEL)
    assert main(["repro", "old-kernel", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "old-kernel[anon] is skipped here (kernel <2.0 required" in out.err
    assert out.err.count("\n") == 1


def test_no_faithful_c_form_is_said_not_guessed(tmp_path, capsys) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(TWO_BINDINGS)
    assert main(["repro", "two-kinds", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "two-kinds[anon] has no faithful C form" in out.err
    assert "'x' is bound as addr and as bytes" in out.err and out.err.count("\n") == 1


def test_help_names_the_command() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "runner", "repro", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0 and "cc -O2 -static" in run.stdout
