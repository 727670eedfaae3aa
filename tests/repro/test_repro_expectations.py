"""Each kind of expectation, judged by the generated C in each process context: the right one
passes, a wrong one fails with a line naming process, step, operation and both sides. The engine
runs the same case and must end alike (the C is not the engine's code: this is a second judge).
"""

from __future__ import annotations

import textwrap

import pytest
from repro_util import reproduce, static_libc_missing

from runner.lang.loader import load_suite
from runner.session.runner import RunConfig, Runner

pytestmark = pytest.mark.skipif(bool(static_libc_missing()), reason=static_libc_missing())

PREFIX = [
    "mmap: {length: 2 * PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED, fd: f}\n  as: m",
    'store: {addr: m, data: "hi"}',
]
# kind: (steps before, the judged step, the right expectation, a wrong one, what the failure
# line says it expected, what it says it got)
KINDS = {
    "value": (
        "",
        "write: {fd: f, offset: 8, data: abc}",
        "{value: 3}",
        "{value: 4}",
        "value 4",
        "success, value 3",
    ),
    "comparator": (
        "",
        "write: {fd: f, offset: 8, data: abc}",
        "{value: {gt: 2, le: 3}}",
        "{value: {lt: 3}}",
        "value {lt: 3}",
        "success, value 3",
    ),
    "hex": (
        "",
        "load: {addr: m, length: 2}",
        "{value: {hex: '6869'}}",
        "{value: {hex: '6868'}}",
        "value {hex: 6868}",
        "{hex 6869} (2 bytes)",
    ),
    "data": (
        "",
        "load: {addr: m, length: 2}",
        "{value: {data: hi}}",
        "{value: {data: ho}}",
        "value {data: ho}",
        "{hex 6869}",
    ),
    "format": (
        "",
        "load: {addr: m, format: '<2sB'}",
        "{value: [hi, 0]}",
        "{value: [ho, 0]}",
        "value [ho, 0]",
        "{hex 686900}",
    ),
    "fields": (
        "",
        "fstat: f",
        "{value: {size: PAGE}}",
        "{value: {size: PAGE + 1}}",
        "value {size: PAGE + 1}",
        "size: 4096",
    ),
    "smaps": (
        "",
        "smaps: m",
        "{value: {Size: 2 * PAGE // 1024}}",
        "{value: {Size: 1}}",
        "value {Size: 1}",
        "Size: 8 kB",
    ),
    "maps": (
        "",
        "proc_maps: m",
        "{value: {perms: rw-s}}",
        "{value: {perms: r--p}}",
        "value {perms: r--p}",
        "perms: rw-s",
    ),
    "contains-smaps": (
        "",
        "smaps: m",
        "{value: {VmFlags: {contains: ' sh'}}}",
        "{value: {VmFlags: {contains: ' ex'}}}",
        'value {VmFlags: {contains: " ex"}}',
        "success, value {",
    ),
    "contains-maps": (
        "",
        "proc_maps: m",
        "{value: {path: {contains: 'memfd:f'}}}",
        "{value: {path: {contains: 'memfd:g'}}}",
        'value {path: {contains: "memfd:g"}}',
        "path: ",
    ),
    "list": (
        "",
        "mincore: {addr: m, length: 2 * PAGE}",
        "{value: [1, 0]}",
        "{value: [1, 1]}",
        "value [1, 1]",
        "value [1, 0]",
    ),
    "errno": (
        "",
        "munmap: {addr: m + 1, length: PAGE}",
        "{errno: EINVAL}",
        "{errno: [ENOMEM, EBADF]}",
        "errno ENOMEM or EBADF",
        "errno EINVAL",
    ),
    "exit": (
        "fork: {steps: [{store: {addr: m, hex: '00'}}]}\n  as: k",
        "wait: k",
        "{value: {exit: 0}}",
        "{value: {exit: 1}}",
        "value {exit: 1}",
        "{exit: 0}",
    ),
    "wait-signal": (
        "fork: {steps: [{load: {addr: m + PAGE}, expect: {signal: SIGBUS}}]}\n  as: k",
        "wait: k",
        "{value: {signal: SIGBUS, si_code: BUS_ADRERR}}",
        "{value: {signal: SIGSEGV}}",
        "value {signal: SIGSEGV}",
        "{signal: SIGBUS, si_code: BUS_ADRERR, si_addr: 0x",
    ),
    "signal": (
        "",
        "load: {addr: m + PAGE}",
        "{signal: SIGBUS}",
        "{signal: SIGSEGV}",
        "SIGSEGV",
        "SIGBUS/BUS_ADRERR at 0x",
    ),
    "si_code": (
        "",
        "load: {addr: m + PAGE}",
        "{signal: SIGBUS, si_code: BUS_ADRERR}",
        "{signal: SIGBUS, si_code: BUS_ADRALN}",
        "SIGBUS/BUS_ADRALN",
        "SIGBUS/BUS_ADRERR at 0x",
    ),
    "si_addr": (
        "",
        "load: {addr: m + PAGE}",
        "{signal: SIGBUS, si_addr: m + PAGE}",
        "{signal: SIGBUS, si_addr: m}",
        "SIGBUS at m",
        "SIGBUS/BUS_ADRERR at 0x",
    ),
    "success": (
        "",
        "load: {addr: m + PAGE}",
        "{signal: SIGBUS}",
        "{}",
        "success",
        "SIGBUS/BUS_ADRERR at 0x",
    ),
}


def _steps(lines: list[str], indent: int) -> str:
    return "".join(textwrap.indent(f"- {s}\n", " " * indent) for s in lines)


def _case(context: str, kind: str, right: bool) -> tuple[str, str, str]:
    """The case text, the failing process's name and the judged step's label."""
    before, step, good, bad, _, _ = KINDS[kind]
    body = [*PREFIX, *([before] if before else []), f"{step}\n  expect: {good if right else bad}"]
    head = "id: t\ntitle: t\nbackings: [memfd]\nsetup:\n  - file: f\n    size: PAGE\n"
    n = len(body)
    if context == "main":
        return head + "steps:\n" + _steps(body, 2), "main", str(n)
    if context == "process":
        return head + "processes:\n  p:\n    steps:\n" + _steps(body, 6), "p", str(n)
    # a fork child that nobody waits for: the top process reaps and judges it
    text = head + "steps:\n  - fork:\n      steps:\n" + _steps(body, 8) + "    as: c\n"
    return text, "c", f"1.{n}"


@pytest.mark.parametrize("context", ["main", "process", "fork"])
@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_expectation_kind(tmp_path, kind: str, right: bool, context: str) -> None:
    text, process, label = _case(context, kind, right)
    path = tmp_path / "case.yaml"
    path.write_text(text)
    suite = load_suite([str(path)])
    assert not suite.invalid, suite.problems
    runner = Runner(RunConfig())
    (item,) = runner.plan(suite)
    engine = runner.run_item(item)
    assert item.case is not None and item.backing is not None
    repro = reproduce(item.case, item.backing)
    assert repro.outcome == engine.outcome == ("passed" if right else "failed"), (
        engine.reason,
        repro.stdout,
    )
    if right:
        assert repro.stdout.rstrip().endswith("PASS")
        return
    _, step, _, _, expected, got = KINDS[kind]
    op = step.split(":")[0]
    line = next(x for x in repro.stdout.splitlines() if x.startswith("FAIL "))
    assert line.startswith(f"FAIL {process} step {label} ({op}): expected {expected}, got "), line
    assert got in line, line
    assert repro.failing == [f"{process} step {label}"]
