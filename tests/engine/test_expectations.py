"""Each kind of expectation: the right one passes, a wrong one fails and says why."""

from __future__ import annotations

import pytest

EOF_CASE = """
id: t
title: t
backings: [{backing}]
steps:
  - file: f
    data: "hello, world"
  - open: {{file: f, flags: O_RDONLY}}
    as: ro
  - mmap: {{length: 2 * PAGE, prot: PROT_READ, flags: MAP_SHARED, fd: ro}}
    as: m
  - {step}
"""


@pytest.mark.parametrize("backing", ["disk", "tmpfs", "memfd"])
@pytest.mark.parametrize(
    "step, outcome, message",
    [
        (
            "load: {addr: m + PAGE}\n    expect: {signal: SIGBUS, si_code: BUS_ADRERR, si_addr: m + PAGE}",
            "passed",
            "",
        ),
        (
            "load: {addr: m + PAGE}\n    expect: {signal: SIGSEGV, si_code: SEGV_ACCERR, si_addr: m + 8}",
            "failed",
            "main step 4 (load): expected SIGSEGV/SEGV_ACCERR at m+8, got SIGBUS/BUS_ADRERR at m+4096",
        ),
        (
            "load: {addr: m + PAGE}\n    expect: {signal: SIGBUS, si_code: BUS_ADRALN}",
            "failed",
            "expected SIGBUS/BUS_ADRALN, got SIGBUS/BUS_ADRERR at m+4096",
        ),
        (
            "load: {addr: m + PAGE}\n    expect: {signal: SIGBUS, si_addr: m}",
            "failed",
            "expected SIGBUS at m, got SIGBUS/BUS_ADRERR at m+4096",
        ),
        (
            "load: {addr: m + PAGE}",
            "failed",
            "main step 4 (load): expected success, got SIGBUS/BUS_ADRERR at m+4096",
        ),
        (
            "load: {addr: m + 1}\n    expect: {signal: SIGBUS}",
            "failed",
            "main step 4 (load): expected SIGBUS, got success, value {hex 65}",
        ),
        ("load: {addr: m, length: 5}\n    expect: {value: {data: hello}}", "passed", ""),
        ("load: {addr: m, length: 5}\n    expect: {value: {hex: '68656c6c6f'}}", "passed", ""),
        (
            "load: {addr: m, length: 5}\n    expect: {value: {data: jello}}",
            "failed",
            "expected value {data: 'jello'}, got success, value {hex 68656c6c6f}",
        ),
        ("load: {addr: m + PAGE - 1}\n    expect: {value: {hex: '00'}}", "passed", ""),
        ("load: {addr: m, format: '<5s'}\n    expect: {value: hello}", "passed", ""),
        ("load: {addr: m, format: '<B'}\n    expect: {value: {gt: 100, lt: 105}}", "passed", ""),
        (
            "load: {addr: m, format: '<B'}\n    expect: {value: {lt: 100}}",
            "failed",
            "expected value {lt: 100}, got success, value 104",
        ),
        (
            "mprotect: {addr: m, length: PAGE, prot: PROT_READ|PROT_WRITE}\n    expect: {errno: EACCES}",
            "passed",
            "",
        ),
        (
            "mprotect: {addr: m, length: PAGE, prot: PROT_READ|PROT_WRITE}\n    expect: {errno: EINVAL}",
            "failed",
            "expected errno EINVAL, got errno EACCES",
        ),
        (
            "mprotect: {addr: m, length: PAGE, prot: PROT_READ|PROT_WRITE}",
            "failed",
            "expected success, got errno EACCES",
        ),
        (
            "munmap: {addr: m, length: PAGE}\n    expect: {errno: [EINVAL, EACCES]}",
            "failed",
            "expected errno EINVAL or EACCES, got success",
        ),
        ("fstat: f\n    expect: {value: {size: 12}}", "passed", ""),
        (
            "fstat: f\n    expect: {value: {size: {ge: PAGE}}}",
            "failed",
            "expected value {size: {ge: 4096}}",
        ),
    ],
)
def test_expectation(run_yaml, backing, step, outcome, message):
    result = run_yaml(EOF_CASE.format(backing=backing, step=step))[backing]
    assert result.outcome == outcome, result.reason
    assert message in result.reason


CONDITIONAL = """
id: t
title: t
steps:
  - file: f
    size: 10
  - fstat: f
    expect:
      - when: {backing: tmpfs}
        value: {size: 10}
      - value: {size: 11}
"""


SYSTEM_OBJECT = """
id: t
title: t
steps:
  - open: {path: /dev/zero, flags: O_RDWR}
    as: z
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_SHARED, fd: z}
    as: m
  - load: {addr: m, length: 2}
    expect: {value: {hex: "0000"}}
  - pipe: {read: r, write: w}
  - write: {fd: w, addr: m + PAGE * 1000000, length: 1}
    expect: {errno: EFAULT}
  - fstat: z
    as: st
  - load: {addr: m + st.size, format: "<H"}
    expect: {value: "st.size"}
"""


def test_system_paths_raw_memory_io_and_field_access(run_yaml):
    result = run_yaml(SYSTEM_OBJECT)["anon"]
    assert result.outcome == "passed", result.reason


def test_errno_names_compare_by_number(run_yaml):
    text = "id: t\ntitle: t\nsteps:\n  - mmap: {length: PAGE, prot: 0, flags: MAP_SHARED_VALIDATE|0x800000, fd: f}\n    expect: {errno: ENOTSUP}\n"
    text = text.replace("steps:\n", "steps:\n  - file: f\n    size: 1\n")
    result = run_yaml(text, backings=["disk"])["disk"]
    assert result.outcome == "passed", result.reason


def test_when_picks_the_first_entry_that_holds(run_yaml):
    results = run_yaml(CONDITIONAL)
    assert results["tmpfs"].outcome == "passed"
    assert results["disk"].outcome == "failed"
    assert "expected value {size: 11}" in results["disk"].reason


TIMES = """
id: t
title: t
steps:
  - file: f
  - fstat: f
    as: t0
  - sleep: 20
  - write: {fd: f, data: x}
  - fstat: f
    expect: {value: {mtime_ns: {gt: t0.mtime_ns}, size: 1}}
"""


def test_fstat_times_and_field_access(run_yaml):
    result = run_yaml(TIMES, backings=["tmpfs"])["tmpfs"]
    assert result.outcome == "passed", result.reason


UNTIL = """
id: t
title: t
steps:
  - mmap: {length: 4 * PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}
    as: a
  - munmap: {addr: a + 2 * PAGE, length: 2 * PAGE}
  - repeat:
      times: %d
      var: i
      until: {errno: ENOMEM}
      steps:
        - mincore: {addr: a + i * PAGE, length: PAGE}
    as: n
  - load: {addr: a + (n - 1) * PAGE}
"""


def test_repeat_until_stops_at_the_errno_and_binds_the_iteration(run_yaml):
    result = run_yaml(UNTIL % 10)["anon"]
    assert result.outcome == "passed", result.reason


def test_repeat_until_fails_when_the_errno_never_comes(run_yaml):
    result = run_yaml(UNTIL % 2)["anon"]
    assert result.outcome == "failed"
    assert "main step 3 (repeat): expected errno ENOMEM, got success" in result.reason
