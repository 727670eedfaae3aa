"""The forms added to existing operations for peer suites' behaviours (issue 18): each with a
right expectation that passes and a wrong one that fails naming process, step and both sides,
and its validation errors at file:line:column."""

from __future__ import annotations

import pytest
from native_util import problems, run_native

HEAD = "id: f\ntitle: t\nsteps:\n"
ANON = (
    "  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE|MAP_ANONYMOUS}\n"
    "    as: m\n"
)
MEMFD = "  - memfd_create: {name: m}\n    as: fd\n"
# form: (steps before, the step, a right expectation, a wrong one, the failure text)
FORMS = {
    "memfd_create name_addr": (
        "",
        "memfd_create: {name_addr: 0}",
        "{errno: EFAULT}",
        "{value: {ge: 0}}",
        "main step 1 (memfd_create): expected value {ge: 0}, got errno EFAULT",
    ),
    "memfd_create name_addr readable": (
        ANON + '  - store: {addr: m, hex: "6100"}\n',
        "memfd_create: {name_addr: m}",
        "{value: {ge: 0}}",
        "{errno: EFAULT}",
        "main step 3 (memfd_create): expected errno EFAULT, got success, value ",
    ),
    "reopen process": (
        MEMFD,
        "reopen: {fd: fd, process: main, flags: O_RDONLY}",
        "{value: {gt: 2}}",
        "{errno: ENOENT}",
        "main step 2 (reopen): expected errno ENOENT, got success, value ",
    ),
    "reopen process closed": (
        MEMFD + "  - dup: fd\n    as: copy\n  - close: fd\n",
        "reopen: {fd: fd, process: main, flags: O_RDONLY}",
        "{errno: ENOENT}",
        "{value: {gt: 2}}",
        "main step 4 (reopen): expected value {gt: 2}, got errno ENOENT",
    ),
    "load fill": (
        ANON,
        "load: {addr: m, length: PAGE}",
        "{value: {fill: '00'}}",
        "{value: {fill: '0001'}}",
        "main step 2 (load): expected value {fill: '0001'}, got success, value {hex 0000",
    ),
    "load fill last byte": (
        ANON + '  - store: {addr: m + PAGE - 1, data: "x"}\n',
        "load: {addr: m, length: PAGE}",
        "{value: {ne: 0}}",
        "{value: {fill: '00'}}",
        "main step 3 (load): expected value {fill: '00'}, got success, value {hex 0000",
    ),
    "proc_maps path": (
        "",
        'proc_maps: {path: "[stack]"}',
        "{value: {perms: rw-p, path: '[stack]'}}",
        "{value: {perms: r-xp}}",
        "main step 1 (proc_maps): expected value {perms: 'r-xp'}, got success, value {perms: 'rw-p'}",
    ),
    "proc_maps path vdso": (
        "",
        'proc_maps: {path: "[vdso]"}',
        "{value: {path: '[vdso]', perms: r-xp}}",
        "{errno: ENOENT}",
        "main step 1 (proc_maps): expected errno ENOENT, got success",
    ),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_right_expectation_passes(tmp_path, form):
    pre, step, good, _, _ = FORMS[form]
    result = run_native(tmp_path, f"{HEAD}{pre}  - {step}\n    expect: {good}\n")
    assert result.outcome == "passed", result.reason


@pytest.mark.parametrize("form", sorted(FORMS))
def test_wrong_expectation_fails_naming_both_sides(tmp_path, form):
    pre, step, _, bad, text = FORMS[form]
    result = run_native(tmp_path, f"{HEAD}{pre}  - {step}\n    expect: {bad}\n")
    assert result.outcome == "failed", result.reason
    assert text in result.reason


@pytest.mark.parametrize(
    "step, message",
    [
        ("memfd_create: {flags: 0}", "6:5: memfd_create: 'memfd_create' needs exactly one of"),
        (
            "memfd_create: {name: a, name_addr: 0}",
            "6:5: memfd_create: 'memfd_create' needs exactly one of 'name', 'name_addr'",
        ),
        ("proc_maps: {addr: 0, path: '[stack]'}", "6:5: proc_maps: 'proc_maps' needs exactly one"),
        ("proc_maps: {path: '/etc/passwd'}", "6:17: path: '/etc/passwd': a mapping without a file"),
        ("memfd_create: {name_addr: q}", "6:20: name_addr: 'q' is not bound before this step"),
        (
            "reopen: {fd: 3, process: nobody, flags: O_RDONLY}",
            "6:21: process: 'nobody' is not a process of this case (main)",
        ),
        ("reopen: {fd: 3, process: 'a b', flags: 0}", "6:21: process: a process name is"),
        ("load: m\n    expect: {value: {fill: zz}}", "7:22: fill: a fill is a pattern of hex"),
    ],
)
def test_malformed_forms_are_located(tmp_path, step, message):
    got = problems(tmp_path, f"{HEAD}{ANON}  - {step}\n")
    assert len(got) == 1 and got[0].startswith(message), got


@pytest.mark.parametrize(
    "value, message",
    [
        ("10", "1:1: address_space: 10: bytes from 1048576 to 68719476736"),
        ("PAGES * 2", "1:1: address_space: 'PAGES * 2': 'PAGES' is not bound"),
    ],
)
def test_a_bad_address_space_is_located(tmp_path, value, message):
    got = problems(tmp_path, f"address_space: {value}\n{HEAD}  - post: e\n")
    assert len(got) == 1 and got[0].startswith(message), got
