"""Nothing reaches Python or leaves the scratch folder.

Expressions are a whitelisted AST; file names are single path components; and, below the
language, Landlock has the kernel refuse what even arbitrary machine code in a case must not do.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
from hostile_util import children, run_text

from runner.engine import confine, sandbox
from runner.lang.loader import load_file

ESCAPES = [
    "__import__('os').system('touch /tmp/pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "PAGE.__class__",
    "(lambda: 1)()",
    "[x for x in (1, 2)][0]",
    "{x: 1 for x in (1,)}",
    "(x for x in ())",
    "open('/etc/passwd')",
    "globals()",
    "eval('1')",
    "exec('1')",
    "getattr(PAGE, 'real')",
    "min.__self__",
    "min(*[1, 2])",
    "max(key=1)",
    "PAGE[0]",
    "f'{PAGE}'",
    "'a' * 3",
    "b'x'",
    "1.5",
    "True",
    "None",
    "...",
    "1 if PAGE else 2",
    "PAGE and 1",
    "PAGE < 1",
    "2 ** 4096",
    "PAGE := 3",
    "__builtins__",
    "_ _",
    "1; import os",
    "x" * 2000,
]


def _case_with(value: str, where: str) -> str:
    """A case that uses ``value`` as an expression in one of several places."""
    quoted = "'" + value.replace("'", "''") + "'"
    steps = {
        "length": f"  - mmap: {{length: {quoted}, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}}",
        "flags": f"  - mmap: {{length: PAGE, prot: {quoted}, flags: MAP_PRIVATE|MAP_ANONYMOUS}}",
        "si_addr": "  - mmap: {length: PAGE, prot: PROT_NONE, flags: MAP_PRIVATE|MAP_ANONYMOUS}\n"
        "    as: m\n"
        f"  - load: m\n    expect: {{signal: SIGSEGV, si_addr: {quoted}}}",
        "times": f"  - repeat: {{times: {quoted}, steps: [{{sleep: 1}}]}}",
    }[where]
    return f"id: escape\ntitle: t\nsteps:\n{steps}\n"


@pytest.mark.parametrize("where", ["length", "flags", "si_addr", "times"])
@pytest.mark.parametrize("value", ESCAPES, ids=range(len(ESCAPES)))
def test_an_expression_escape_is_a_validation_error(tmp_path, value, where):
    path = tmp_path / "escape.yaml"
    path.write_text(_case_with(value, where))
    suite = load_file(path)
    assert not suite.cases, f"{value!r} in {where} validated"
    (invalid,) = suite.invalid
    problem = invalid.problems[0]
    assert problem.file.endswith("escape.yaml") and problem.line >= 3 and problem.column >= 1
    assert not os.path.exists("/tmp/pwned")


BAD_FILE_NAMES = [
    "/etc/passwd",
    "/",
    "../x",
    "..",
    ".",
    "a/b",
    "a\\0b",  # YAML's escape: a real NUL in the name
    "a\\x00",
    "~root",
    "x" * 65,
    "",
    " f",
    "-rf",
    ".hidden",
]


@pytest.mark.parametrize("name", BAD_FILE_NAMES, ids=range(len(BAD_FILE_NAMES)))
@pytest.mark.parametrize("op", ["file", "open", "unlink"])
def test_a_file_name_outside_the_scratch_folder_is_refused(tmp_path, name, op):
    quoted = '"' + name + '"'
    if op == "file":
        step = f"  - file: {quoted}"
    else:
        step = f"  - file: f\n  - {op}: {{file: {quoted}" + (
            ", flags: O_RDONLY}" if op == "open" else "}"
        )
    path = tmp_path / "names.yaml"
    path.write_text(f"id: names\ntitle: t\nsteps:\n{step}\n")
    suite = load_file(path)
    assert not suite.cases, f"{name!r} for {op} validated"
    assert all(p.line >= 1 and p.column >= 1 for p in suite.invalid[0].problems)


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "/dev/zero/../../etc/passwd", "/dev/../etc/shadow", "..", "/tmp", "/dev/sda"],
)
def test_an_open_path_outside_the_allow_list_is_refused(tmp_path, path):
    (tmp_path / "p.yaml").write_text(
        f'id: p\ntitle: t\nsteps:\n  - open: {{path: "{path}", flags: O_RDONLY}}\n'
    )
    suite = load_file(tmp_path / "p.yaml")
    assert not suite.cases
    assert "a path is one of" in str(suite.invalid[0].problems[0])


needs_landlock = pytest.mark.skipif(sandbox.abi() < 1, reason="the kernel has no Landlock")

# x86-64 machine code: open(path, O_WRONLY|O_CREAT, 0644) by raw syscall; returns what it got.
_OPEN_CREAT = "488d3d12000000be41000000baa4010000b8020000000f05c3"


@needs_landlock
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the machine code is x86-64")
def test_machine_code_run_by_call_cannot_create_a_file_outside_the_scratch_folder(tmp_path):
    target = tmp_path / "escaped"
    code = _OPEN_CREAT + (str(target).encode() + b"\0").hex()
    text = f"""
id: shellcode
title: stores machine code that creates a file by raw syscall, and calls it
steps:
  - mmap: {{length: PAGE, prot: PROT_READ|PROT_WRITE|PROT_EXEC, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
    as: m
  - store: {{addr: m, hex: "{code}"}}
  - call: m
    as: rc
"""
    result = run_text(tmp_path, text)["shellcode[anon]"]
    assert not target.exists(), "a case created a file outside its scratch folder"
    # -ENOENT: the case's root has no such folder; -EROFS: a bare folder on the way to a scratch
    # folder, read-only; -EACCES from Landlock where there is no mount namespace
    assert result.steps[-1]["result"] in (-2, -30, -13)


@needs_landlock
def test_what_a_case_may_touch_still_works_under_confinement(tmp_path):
    """Scratch files, the allow-listed devices, /proc/self, pipes and memfds: all as before."""
    text = """
id: confined-ok
title: everything the language offers still works under Landlock
steps:
  - file: f
    size: PAGE
  - open: {file: f, flags: O_RDWR|O_TRUNC}
    as: fd
  - ftruncate: {fd: fd, length: 2 * PAGE}
  - open: {path: /dev/zero, flags: O_RDWR}
    as: z
  - mmap: {length: PAGE, prot: PROT_READ|PROT_WRITE, flags: MAP_PRIVATE, fd: z}
    as: m
  - smaps: m
  - open: {path: /dev/null, flags: O_WRONLY}
  - open: {path: /, flags: O_RDONLY|O_DIRECTORY}
  - open: {path: ., flags: O_RDONLY|O_DIRECTORY}
  - unlink: f
"""
    results = run_text(tmp_path, text, backings=["disk", "tmpfs"])
    assert {r.outcome for r in results.values()} == {"passed"}, results


@needs_landlock
def test_a_case_cannot_make_a_file_outside_by_o_tmpfile_on_an_allowed_folder(tmp_path):
    text = """
id: tmpfile
title: an unnamed file on the root filesystem through the allow-listed '/'
steps:
  - open: {path: /, flags: O_TMPFILE|O_RDWR}
"""
    # refused by the open op on any kernel; Landlock would refuse it again with EACCES
    result = run_text(tmp_path, text)["tmpfile[anon]"]
    assert result.outcome == "error", result
    assert "/ may only be opened for reading" in result.reason


@pytest.mark.skipif(sandbox.abi() < 6, reason="Landlock signal scoping needs ABI 6 (Linux 6.12)")
def test_a_case_cannot_signal_a_process_outside_itself(tmp_path):
    victim = subprocess.Popen(["sleep", "60"])
    try:
        text = f"""
id: kill-out
title: a case tries to kill a process that is not its own, then everything it can reach
steps:
  - kill: {{pid: {victim.pid}, signal: SIGKILL}}
    expect: {{errno: EPERM}}
  - kill: {{pid: {os.getpid()}, signal: SIGSTOP}}
    expect: {{errno: EPERM}}
"""
        result = run_text(tmp_path, text)["kill-out[anon]"]
        # In the case's own PID namespace no pid outside it exists (ESRCH); without one, the
        # kill op refuses pids outside the case's process group, and Landlock's signal scope
        # (6.12+) would refuse it again with EPERM.
        if confine.current().pid_ns:
            assert result.outcome == "failed", result
            assert "got errno ESRCH" in result.reason
        else:
            assert result.outcome == "error", result
            assert f"pid {victim.pid} is not a process of this case" in result.reason
        assert victim.poll() is None, "the case killed a process outside itself"
        # With that proven, pid -1 ("every process I may signal") reaches only the case itself.
        text = textwrap.dedent("""
            id: kill-all
            title: kill(-1, SIGKILL) from inside a case
            steps:
              - fork: {steps: [{wait_for: never}]}
              - kill: {pid: -1, signal: SIGKILL}
            """)
        before = children()
        result = run_text(tmp_path, text, name="all.yaml")["kill-all[anon]"]
        assert victim.poll() is None, "kill(-1) in a case reached outside it"
        assert result.outcome == "error", result
        assert "pid -1 is not a process of this case" in result.reason
        assert children() == before
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


# unshare(0) is a no-op that root may always make; `int 0x80` getpid goes through the i386 ABI;
# without the filter each of these succeeds (a socket would be an fd, not -1).
MACHINE_CALLS = {
    "unshare": "31ffb8100100000f05c3",  # xor edi,edi; mov eax,272; syscall; ret
    "i386-abi": "b814000000cd80c3",  # mov eax,20 (i386 getpid); int 0x80; ret
    "x32-abi": "b8270000400f05c3",  # mov eax,0x40000027 (x32 getpid); syscall; ret
    # socket(AF_INET, SOCK_DGRAM, 0): Landlock covers TCP only; UDP is refused by the filter
    "udp-socket": "bf02000000be0200000031d2b8290000000f05c3",
    # io_uring_setup(1, NULL): a ring of its own would run operations the filter never sees
    # (IORING_OP_SOCKET); without the filter this is -EFAULT, not -EPERM
    "io_uring_setup": "bf0100000031f6b8a90100000f05c3",
    # prctl(PR_SET_DUMPABLE, 1): a dumpable process's crash reaches a core_pattern pipe helper
    "set-dumpable": "bf04000000be01000000b89d0000000f05c3",
    # execve("", NULL, NULL) (rdi points at the ret's 0xc3 0x00...: any path): makes the process
    # dumpable again; without the filter ENOENT (-2), not -EPERM
    "execve": "488d3d0b00000031f631d2b83b0000000f05c3",
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the machine code is x86-64")
@pytest.mark.parametrize("name", sorted(MACHINE_CALLS))
def test_machine_code_cannot_make_a_denied_or_foreign_abi_system_call(tmp_path, name):
    text = f"""
id: machine-call
title: machine code that makes a system call the seccomp list refuses
steps:
  - mmap: {{length: PAGE, prot: PROT_READ|PROT_WRITE|PROT_EXEC, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
    as: m
  - store: {{addr: m, hex: "{MACHINE_CALLS[name]}"}}
  - call: m
"""
    result = run_text(tmp_path, text)["machine-call[anon]"]
    assert result.outcome == "passed", result
    assert result.steps[-1]["result"] == -1  # -EPERM from the filter (0 or a pid without it)


# The same filter on arm64 (an arm64 guest: `mmapconf run --kernel arm64:6.1`, or an arm64 host).
# movn x0,#99 (AT_FDCWD); adr x1,path; movz w2,#0o20666; movz x3,#0x10b; movz x8,#33 (mknodat);
# svc #0; ret; path: "kmsg"   /   movz x0,#0x20000 (CLONE_NEWNS); movz x8,#97 (unshare); svc; ret
# movz x0,#0; movz x1,#88; movz x8,#435 (clone3); svc; ret   /   movz x8,#172 (getpid); svc; ret
ARM64_CALLS = {
    "mknodat": ("600c8092c1000010c2368452632180d2280480d2010000d4c0035fd66b6d736700", -1),
    "unshare": ("4000a0d2280c80d2010000d4c0035fd6", -1),
    "clone3": ("000080d2010b80d2683680d2010000d4c0035fd6", -38),
    "getpid": ("881580d2010000d4c0035fd6", 2),  # let through: pid 2, the case's init is 1
}


@pytest.mark.skipif(os.uname().machine != "aarch64", reason="the machine code is arm64")
@pytest.mark.parametrize("name", sorted(ARM64_CALLS))
def test_arm64_machine_code_cannot_make_a_denied_system_call(tmp_path, name):
    code, want = ARM64_CALLS[name]
    text = f"""
id: machine-call
title: arm64 machine code that makes a system call the seccomp list refuses
steps:
  - file: f
  - mmap: {{length: PAGE, prot: PROT_READ|PROT_WRITE|PROT_EXEC, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
    as: m
  - store: {{addr: m, hex: "{code}"}}
  - call: m
"""
    result = run_text(tmp_path, text, backings=["disk"])["machine-call[disk]"]
    assert result.steps[-1]["result"] == want, result  # without the filter: 0, or EFAULT


_HEADERS = {  # the kernel's own numbers (linux-libc-dev), independent of sandbox.py's tables
    "x86_64": "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    "aarch64": "/usr/include/asm-generic/unistd.h",
}


@pytest.mark.parametrize("machine", sorted(sandbox.SECCOMP_ARCHES))
def test_the_seccomp_lists_hold_the_kernel_s_numbers(machine):
    header = Path(_HEADERS[machine])
    if not header.exists():
        pytest.skip(f"no {header} (linux-libc-dev) on this machine")
    numbers = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)\s*$", header.read_text(), re.M)
    }
    arch = sandbox.SECCOMP_ARCHES[machine]
    wanted = {
        **arch.denied, "socket": arch.socket, "clone": arch.clone, "clone3": arch.clone3,
        "prctl": arch.prctl, "ioctl": arch.ioctl,
    }  # fmt: skip
    assert {name: numbers.get(name) for name in wanted} == wanted


def _bpf(
    prog: list[tuple[int, int, int, int]], arch: int, nr: int, arg0: int = 0, arg1: int = 0
) -> int:
    """Run a classic-BPF seccomp filter of sandbox's few opcodes on one seccomp_data."""
    return _bpf_run(prog, arch, nr, arg0, arg1)[0]


def _bpf_run(
    prog: list[tuple[int, int, int, int]], arch: int, nr: int, arg0: int = 0, arg1: int = 0
) -> tuple[int, int]:
    """The filter's return value, and how many instructions it ran to get there."""
    data = {0: nr, 4: arch, 16: arg0, 24: arg1}
    acc, pc, ran = 0, 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        ran += 1
        if code == 0x06:  # ret k
            return k, ran
        if code == 0x20:  # ld [k]
            acc = data[k]
        elif code == 0x05:  # ja k
            pc += k
        else:
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if hit else jf
        pc += 1


@pytest.mark.parametrize("machine", sorted(sandbox.SECCOMP_ARCHES))
def test_the_seccomp_filter_of_each_machine_refuses_what_its_list_says(machine):
    arch = sandbox.SECCOMP_ARCHES[machine]
    prog = sandbox.program(machine)
    eperm, enosys, allow = 0x00050001, 0x00050026, 0x7FFF0000
    for nr in arch.denied.values():
        assert _bpf(prog, arch.audit, nr) == eperm, nr
    assert _bpf(prog, arch.audit, arch.clone3) == enosys
    assert _bpf(prog, arch.audit, arch.clone, 0x00020000 | 17) == eperm  # CLONE_NEWNS
    assert _bpf(prog, arch.audit, arch.clone, 17) == allow  # a plain fork
    assert _bpf(prog, arch.audit, arch.socket, 2) == eperm  # AF_INET
    assert _bpf(prog, arch.audit, arch.socket, 1) == allow  # AF_UNIX
    assert _bpf(prog, arch.audit, arch.prctl, 4) == eperm  # PR_SET_DUMPABLE
    assert _bpf(prog, arch.audit, arch.prctl, 41) == allow  # PR_SET_THP_DISABLE (the prctl op)
    for request in sandbox.FS_WIDE_IOCTLS.values():
        assert _bpf(prog, arch.audit, arch.ioctl, 5, request) == eperm, hex(request)
    assert _bpf(prog, arch.audit, arch.ioctl, 5, 0xC018AA3F) == allow  # UFFDIO_API (a uffd op)
    assert _bpf(prog, arch.audit, arch.ioctl, 5, 0x40049409) == allow  # FICLONE
    assert _bpf(prog, arch.audit ^ 1, 0) == eperm  # another ABI of the machine
    read = {"x86_64": 0, "aarch64": 63}[machine]
    assert _bpf(prog, arch.audit, read) == allow


@pytest.mark.parametrize("machine", sorted(sandbox.SECCOMP_ARCHES))
def test_the_seccomp_filter_allows_every_other_call_and_decides_in_a_few_steps(machine):
    """Every call number up to 1100 (with first arguments that matter to socket, clone and
    prctl; an ioctl's request the second: none of FS_WIDE_IOCTLS here): the verdict its list
    says, found in at most 16 instructions (the filter is a tree of comparisons, which the
    kernel runs for every number when a case process installs it)."""
    arch = sandbox.SECCOMP_ARCHES[machine]
    prog = sandbox.program(machine)
    eperm, enosys, allow = 0x00050001, 0x00050026, 0x7FFF0000
    namespaces = 0x00020000 | 0x7E000000
    for nr in range(1100):
        for arg in (0, 1, 2, 4, 17, 41, 0x00020000 | 17, 0x10000000):
            if nr in arch.denied.values():
                want = eperm
            elif nr == arch.clone3:
                want = enosys
            elif nr == arch.socket:
                want = allow if arg == 1 else eperm
            elif nr == arch.clone:
                want = eperm if arg & namespaces else allow
            elif nr == arch.prctl:
                want = eperm if arg == 4 else allow
            else:
                want = allow
            got, ran = _bpf_run(prog, arch.audit, nr, arg)
            assert (got, nr, arg) == (want, nr, arg) and ran <= 16


def test_a_restricted_ring_refuses_what_an_open_one_does_around_the_filter(tmp_path):
    """Why io_uring_setup is refused and the case's ring restricted (sandbox.py, executor.c
    ring_setup): an independent C probe, outside any case, makes a UDP socket through an open
    ring and is refused (-EACCES) through a ring restricted to fixed reads and writes."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "uring_socket"
    source = Path(__file__).with_name("probes") / "uring_socket.c"
    subprocess.run([cc, "-O2", "-o", str(exe), str(source)], check=True, capture_output=True)
    out = dict(
        line.split()
        for line in subprocess.run(
            [str(exe)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    if out["open"] in ("1000", "-22"):  # no io_uring, or a kernel without IORING_OP_SOCKET
        pytest.skip(f"io_uring or its socket operation is not here (open ring: {out['open']})")
    assert int(out["open"]) >= 0, out  # a socket the filter never saw
    assert out["restricted"] == "-13", out  # -EACCES
