"""`ip` in a signal expectation: the faulting instruction's address. Its truth comes from a C
probe compiled here (tests/lang/probes/fault_ip.c, no harness involved); then a right `ip`
passes and a wrong one fails naming process, step and both sides, in every process context, on
the native executor and in the C reproducer."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from native_util import problems, run_native

from runner.engine import libc
from runner.lang.conditions import Facts
from runner.lang.loader import load_suite
from runner.repro.program import Target, generate

PROBE = Path(__file__).parent / "probes" / "fault_ip.c"
CC = shutil.which("cc")
X86 = platform.machine() == "x86_64"
pytestmark = pytest.mark.skipif(not (CC and X86), reason="needs cc and x86-64 machine code")

CODE = """\
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: code
  - store: {addr: code, hex: "90909090c704250000000000000000c3"}
  - mprotect: {addr: code, length: PAGE, prot: PROT_READ|PROT_EXEC}
"""


def probe(tmp_path: Path) -> dict[str, dict[str, str]]:
    exe = tmp_path / "fault_ip"
    subprocess.run([CC or "cc", "-O2", str(PROBE), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: dict(re.findall(r"(\w+)=(\S+)", line)) for line in out.splitlines()}


def test_the_probe_says_where_the_kernel_puts_the_ip(tmp_path):
    got = probe(tmp_path)
    assert got["fetch"] == {"si_addr": "+0", "ip": "+0"}
    assert got["store"] == {"si_addr": "0", "ip": "+4"}


def test_the_catalogue_states_what_the_probe_shows(tmp_path):
    """The two catalogue cases expect what the probe printed, and pass."""
    got = probe(tmp_path)
    assert (got["store"]["ip"], got["fetch"]["ip"]) == ("+4", "+0")
    suite = load_suite(["cases/signal/peer-gaps-fault-ip.yaml"])
    signals = [s.expect[0] for c in suite.cases for s in c.processes["main"] if s.op == "call"]
    assert [e.ip for e in signals] == [{"ge": "code", "lt": "code + 64"}, "m"]


def contexts(expect: str) -> dict[str, str]:
    """The faulting call in each process context: main, a fork child its parent waits for,
    one it does not wait for, and a member of `processes`."""
    call = f"  - call: code\n    expect: {expect}\n"
    indented = "".join("    " + x + "\n" for x in (CODE + call).splitlines())
    return {
        "main": f"id: c\ntitle: t\nsteps:\n{CODE}{call}",
        "fork-waited": (
            "id: c\ntitle: t\nsteps:\n  - fork:\n      steps:\n"
            + "".join("    " + x + "\n" for x in (CODE + call).splitlines())
            + "    as: child\n  - wait: child\n    expect: {value: {signal: SIGSEGV}}\n"
        ),
        "fork-unwaited": (
            "id: c\ntitle: t\nsteps:\n  - fork:\n      steps:\n"
            + "".join("    " + x + "\n" for x in (CODE + call).splitlines())
            + "    as: child\n"
        ),
        "member": f"id: c\ntitle: t\nprocesses:\n  worker:\n    steps:\n{indented}",
    }


RIGHT = "{signal: SIGSEGV, si_code: SEGV_MAPERR, si_addr: 0, ip: code + 4}"
RIGHT_RANGE = "{signal: SIGSEGV, ip: {ge: code, lt: code + 64}}"
WRONG = "{signal: SIGSEGV, si_code: SEGV_MAPERR, si_addr: 0, ip: code + 8}"
WRONG_RANGE = "{signal: SIGSEGV, ip: {ge: code + 5}}"
WHO = {"main": "main step 4", "member": "worker step 4"}


@pytest.mark.parametrize("expect", [RIGHT, RIGHT_RANGE])
@pytest.mark.parametrize("where", sorted(contexts("")))
def test_a_right_ip_passes(tmp_path, where, expect):
    result = run_native(tmp_path, contexts(expect)[where])
    assert result.outcome == "passed", result.reason


@pytest.mark.parametrize(
    "expect, said",
    [
        (
            WRONG,
            "expected SIGSEGV/SEGV_MAPERR at 0x0, ip code+8, got SIGSEGV/SEGV_MAPERR at 0x0, ip code+4",
        ),
        (WRONG_RANGE, "expected SIGSEGV, ip ge code+5, got SIGSEGV/SEGV_MAPERR at 0x0, ip code+4"),
    ],
)
@pytest.mark.parametrize("where", sorted(contexts("")))
def test_a_wrong_ip_fails_naming_process_step_and_both_sides(tmp_path, where, expect, said):
    result = run_native(tmp_path, contexts(expect)[where])
    assert result.outcome == "failed", result.reason
    who = WHO.get(where, "child step 1.4")
    assert f"{who} (call): {said}" in result.reason


@pytest.mark.parametrize("expect, outcome", [(RIGHT, "passed"), (WRONG, "failed")])
def test_the_reproducer_judges_ip_as_the_engine_does(tmp_path, expect, outcome):
    path = tmp_path / "c.yaml"
    path.write_text(contexts(expect)["main"])
    (case,) = load_suite([str(path)]).cases
    facts = Facts(syscall_probe=libc.syscall_exists)
    source = generate(case, Target("anon", None, facts))
    (tmp_path / "r.c").write_text(source)
    subprocess.run([CC or "cc", "-O2", "r.c", "-o", "r"], cwd=tmp_path, check=True)
    run = subprocess.run([str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert {0: "passed", 1: "failed"}.get(run.returncode) == outcome, run.stdout
    if outcome == "failed":
        assert (
            "FAIL main step 4 (call): expected SIGSEGV/SEGV_MAPERR at 0, ip code + 8" in run.stdout
        )
        assert ", ip 0x" in run.stdout


@pytest.mark.parametrize(
    "expect, message",
    [
        ("{errno: EFAULT, ip: 0}", "si_code, si_addr and ip go with signal"),
        ("{signal: SIGSEGV, ip: {near: 0}}", "ip is an address expression or comparators"),
        ("{signal: SIGSEGV, ip: nowhere}", "'nowhere' is not bound before this step"),
    ],
)
def test_a_malformed_ip_is_located(tmp_path, expect, message):
    got = problems(
        tmp_path, f"id: c\ntitle: t\nsteps:\n{CODE}  - call: code\n    expect: {expect}\n"
    )
    assert len(got) == 1 and message in got[0] and got[0].startswith("9:"), got
