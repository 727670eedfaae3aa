"""Compile and run generated reproducers, cached by the hash of their source.

The cache is a folder under the temp folder shared by every test worker (and by later runs on
the same machine): an unchanged reproducer is compiled once.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from runner.engine import libc
from runner.engine.backings import Backing
from runner.lang.conditions import Facts
from runner.lang.model import Case
from runner.repro.program import Target, generate

CC = shutil.which("cc")
COMMAND = ["-O2", "-static"]  # what the reproducer's header promises is enough
CACHE = Path(tempfile.gettempdir()) / "mmapconf-repro-cache"
FAIL_RE = re.compile(r"^FAIL (\S+) step (\S+) \(", re.M)
OUTCOMES = {0: "passed", 1: "failed", 2: "error"}


def static_libc_missing() -> str:
    """Why `cc -O2 -static` cannot build here ("" when it can)."""
    if CC is None:
        return "no C compiler: scripts/install-cc.sh"
    try:
        compile_source("int main(void) { return 0; }\n")
    except subprocess.CalledProcessError as e:
        return f"cc -static fails ({e.stderr.strip()[-200:]}): scripts/install-cc.sh"
    return ""


def compile_source(source: str) -> Path:
    """The executable of ``source``; CalledProcessError (with the compiler's words) if it
    does not build."""
    key = hashlib.sha256(" ".join([*COMMAND, source]).encode()).hexdigest()[:20]
    exe = CACHE / key
    if exe.exists():
        return exe
    CACHE.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=CACHE))
    try:
        (work / "repro.c").write_text(source)
        subprocess.run(
            [CC or "cc", *COMMAND, "repro.c", "-o", "repro"],
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        )
        os.replace(work / "repro", exe)  # atomic: a worker never runs a half-written file
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return exe


@dataclass
class Run:
    outcome: str
    failing: list[str]  # "PROCESS step LABEL", as FAIL lines name them
    stdout: str


def run_executable(exe: Path, timeout: float = 120) -> Run:
    p = subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout)
    outcome = OUTCOMES.get(p.returncode, f"exit {p.returncode}")
    if "\nTIMEOUT" in "\n" + p.stdout:
        outcome = "timeout"
    failing = sorted({f"{m.group(1)} step {m.group(2)}" for m in FAIL_RE.finditer(p.stdout)})
    return Run(outcome, failing, p.stdout + p.stderr)


def target_for(backing: Backing) -> Target:
    facts = Facts(syscall_probe=libc.syscall_exists).for_backing(backing.kind, backing.fs)
    return Target(backing.kind, backing.dir, facts)


def reproduce(case: Case, backing: Backing) -> Run:
    return run_executable(compile_source(generate(case, target_for(backing))))


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
