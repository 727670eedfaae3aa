"""Walls a case meets in the host's filesystem (issue 11's last open points): the host's names
cannot be listed from a case, and a disk-backed case cannot write more than its cap."""

from __future__ import annotations

import os

import pytest
from hostile_util import run_text
from test_hostile_trust import call_case, path_call, run_cli

from runner.engine import confine, mounts

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 machine code")
O_DIRECTORY = 0o200000
OPEN = 2  # x86-64 open(2)


def _needs_template() -> None:
    if confine.current().template < 0:
        pytest.skip("no mount namespace on this machine")


@pytest.mark.parametrize("folder", ["/etc", "/usr", "/root", "/home", "/tmp", "/var"])
def test_no_host_folder_outside_scratch_can_be_opened_for_listing(tmp_path, folder):
    """open(FOLDER, O_DIRECTORY) from machine code: Landlock's READ_DIR on / allowed it for
    every folder of the host; the case's root holds no such folder (a scratch folder's parents
    are bare folders on the way to it)."""
    _needs_template()
    if not os.path.isdir(folder):
        pytest.skip(f"no {folder} here")
    result = run_text(tmp_path, call_case(path_call(OPEN, folder, O_DIRECTORY)))["hostile[anon]"]
    # ENOENT: an anon case has no scratch folder, so not even the way to one is there
    assert result.steps[-1]["result"] == -2, f"{folder} opened for listing: {result.steps[-1]}"


def test_the_case_s_root_lists_only_what_cases_use(tmp_path):
    """getdents64 of / from machine code: its entries are ., .., dev and proc (an anon case)."""
    _needs_template()
    # open("/", O_DIRECTORY) -> fd; getdents64(fd, rsp-4096, 4096) -> bytes; ret
    # 488d3d23000000 lea rdi,[rip+0x23]; be00000100 mov esi,0x10000; b802000000 mov eax,2;
    # 0f05 syscall; 89c7 mov edi,eax; 488db424 00f0ffff lea rsi,[rsp-0x1000];
    # ba00100000 mov edx,0x1000; b8d9000000 mov eax,217; 0f05 syscall; c3 ret; "/\0"
    code = (
        "488d3d23000000be00000100b8020000000f0589c7488db42400f0ffffba00100000"
        "b8d90000000f05c3" + "2f00"
    )
    result = run_text(tmp_path, call_case(code))["hostile[anon]"]
    size = result.steps[-1]["result"]
    # each linux_dirent64 is 19 bytes + name, 8-aligned: ".", "..", "dev", "proc" take 24 each
    assert 0 < size <= 4 * 24, f"/ lists {size} bytes of entries: {result.steps[-1]}"


FILL = """
id: fill
title: a disk case takes all it can, then holds it
backings: [disk]
timeout: 30
steps:
  - file: f
  - fallocate: {fd: f, length: 4 << 30}
    expect: {errno: ENOSPC}
  - fallocate: {fd: f, length: 900 << 20}
  - sleep: {ms: 5000}
---
id: beside
title: a disk case running beside it writes what it needs
backings: [disk]
timeout: 30
steps:
  - sleep: {ms: 1500}
  - file: g
  - fallocate: {fd: g, length: 300 << 20}
"""


def test_a_disk_case_writes_at_most_its_cap_and_takes_no_other_case_s_space(tmp_path):
    """--fs ext4 -n 2: each worker writes in an image of its own (mounts.IMAGE_SIZE): a case
    cannot allocate more than that (ENOSPC), and one that fills its image leaves the case
    running beside it, in the other worker, the room it needs (before, both shared one image)."""
    why = mounts.why_cannot_mount("ext4")
    if why:
        pytest.skip(why)
    report, stderr = run_cli(tmp_path, FILL, "--fs", "ext4", "-n", "2", "--backing", "disk")
    got = {r["name"]: (r["outcome"], r["reason"]) for r in report["results"]}
    assert got == {"fill[disk]": ("passed", ""), "beside[disk]": ("passed", "")}, got
