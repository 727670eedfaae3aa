"""The default ``disk`` backing's cap (issue 11, finding 6: "4 GiB fallocate in one call"): each
process that runs cases writes in an image of its own of the temp folder's filesystem
(runner/engine/mounts.py ``own_instance``), so a case gets ENOSPC at the image's size, the host's
free space is not what it takes, the case beside it keeps its room, and nothing is left after
the run however its cases and workers end. Every run here has a temp folder of its own (TMPDIR),
so what it leaves is seen in that folder alone."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from hostile_util import mmapconf, run_text, wait_until
from test_hostile_trust import call_steps
from test_hostile_walls import FILL

from runner.engine import mounts
from runner.engine.backings import mount_fstype, name_disks, temp_place

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30


def _temp(tmp_path: Path) -> Path:
    temp = tmp_path / "temp"
    temp.mkdir(exist_ok=True)
    fstype = mount_fstype(str(temp))
    why = mounts.why_cannot_mount(fstype) if fstype else "no filesystem found"
    if why:
        pytest.skip(f"the temp folder's filesystem cannot be capped here: {why}")
    return temp


def _start(tmp_path: Path, temp: Path, text: str, *args: str) -> subprocess.Popen[str]:
    """``mmapconf run`` of TEXT with TEMP as its temp folder and no --dir: the default disk."""
    (tmp_path / "case.yaml").write_text(text)
    return subprocess.Popen(
        mmapconf("run", str(tmp_path / "case.yaml"), "--backing", "disk", *args,
                 "--report-dir", str(tmp_path / "r")),  # fmt: skip
        cwd=ROOT, env={**os.environ, "TMPDIR": str(temp)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finish(tmp_path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> dict:
    _, stderr = proc.communicate(timeout=timeout)
    assert "Traceback" not in stderr, stderr
    return json.loads((tmp_path / "r" / "report.json").read_text())


def _outcomes(report: dict) -> dict[str, str]:
    return {r["name"]: r["outcome"] for r in report["results"]}


def _instances(temp: Path) -> list[Path]:
    """The folders of the disk instances mounted in TEMP's run folders."""
    found = sorted(temp.glob(f"mmapconf-scratch/run-*/{mounts.INSTANCE_PREFIX}*"))
    mounted = mounts.mounts_under(temp)
    return [p for p in found if str(p / "fs") in mounted]


def _left(temp: Path) -> list[str]:
    """What a run left in its temp folder: mounts, loop devices, run folders, scratch folders."""
    runs = [str(p) for p in temp.glob("mmapconf-scratch/*")]
    scratch = [str(p) for p in temp.glob("mmapconf-*") if p.name != "mmapconf-scratch"]
    return mounts.mounts_under(temp) + mounts.loops_backed_under(temp) + runs + scratch


class _LowestFree:
    """The least free space the temp folder's filesystem had while the block ran, sampled."""

    def __init__(self, path: Path):
        self.path, self.lowest, self.done = path, _free(path), threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            self.lowest = min(self.lowest, _free(self.path))

    def __enter__(self) -> _LowestFree:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_a_4_gib_fallocate_on_the_default_disk_gets_enospc_and_takes_nothing_from_the_host(
    tmp_path,
):
    """The cases of the --fs cap's test (test_hostile_walls), on the default disk backing. On
    main the fallocate took 4 GiB of the host's disk (``fill`` failed: no ENOSPC); capped, it
    gets ENOSPC, the host's free space does not drop by what the case holds (an allocation in
    the image writes only its metadata to the host), and the case beside it in the other -n
    worker keeps its 300 MiB."""
    temp = _temp(tmp_path)
    with _LowestFree(temp) as free:
        before = free.lowest
        report = _finish(tmp_path, _start(tmp_path, temp, FILL, "-n", "2"))
    assert _outcomes(report) == {"fill[disk]": "passed", "beside[disk]": "passed"}, report
    disk = report["environment"]["backings"]["disk"]
    assert disk["fs"] == mount_fstype(str(temp)) and "image of 1024 MiB" in disk["cap"], disk
    assert report["environment"]["confinement"]["disk_cap"] == f"disk: {disk['cap']}"
    assert before - free.lowest < 512 << 20, f"the host lost {(before - free.lowest) >> 20} MiB"
    assert _left(temp) == []


WRITE = """
id: write-past
title: writes into a file stop at the cap with ENOSPC
backings: [disk]
timeout: 120
steps:
  - file: f
  # 1,100 MiB: a loop that ends without ENOSPC fails the case (so it does uncapped)
  - repeat:
      times: 1100
      var: i
      until: {errno: ENOSPC}
      steps:
        - write: {fd: f, offset: i << 20, length: 1 << 20}
  - fsync: f
  - write: {fd: f, offset: 1100 << 20, length: 1 << 20}
    expect: {errno: ENOSPC}
"""


def test_writes_past_the_cap_get_enospc_and_the_host_loses_at_most_the_cap(tmp_path):
    """Data written through write(2), 1 MiB a call: ENOSPC comes before 1,100 MiB, and stays
    after an fsync; the host's free space drops by no more than the image holds while it
    runs, and the image is gone when the run ends."""
    temp = _temp(tmp_path)
    with _LowestFree(temp) as free:
        before = free.lowest
        report = _finish(tmp_path, _start(tmp_path, temp, WRITE, "-n", "1"))
    result = report["results"][0]
    assert result["outcome"] == "passed", result
    assert before - free.lowest < GIB + (128 << 20), f"took {(before - free.lowest) >> 20} MiB"
    assert _left(temp) == []


ENDINGS = """
id: ends-passed
title: passes on the disk
backings: [disk]
steps:
  - file: f
  - fallocate: {fd: f, length: 64 << 20}
---
id: ends-failed
title: fails on the disk
backings: [disk]
steps:
  - file: f
  - fallocate: {fd: f, length: 64 << 20}
  - fstat: f
    expect: {value: {size: 1}}
---
id: ends-timeout
title: times out on the disk
backings: [disk]
timeout: 1
steps:
  - file: f
  - fallocate: {fd: f, length: 64 << 20}
  - sleep: {ms: 10000}
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_nothing_is_left_in_the_temp_folder_after_pass_fail_and_timeout(tmp_path, jobs):
    temp = _temp(tmp_path)
    report = _finish(tmp_path, _start(tmp_path, temp, ENDINGS, "-n", jobs))
    assert _outcomes(report) == {
        "ends-passed[disk]": "passed",
        "ends-failed[disk]": "failed",
        "ends-timeout[disk]": "timeout",
    }, report
    assert _left(temp) == []


HOLD = """
id: held
title: holds its image until its worker is killed
backings: [disk]
timeout: 60
steps:
  - file: f
  - fallocate: {fd: f, length: 200 << 20}
  - sleep: {ms: 40000}
---
id: beside
title: runs on in the other worker meanwhile
backings: [disk]
timeout: 60
steps:
  - file: g
  - fallocate: {fd: g, length: 200 << 20}
  - sleep: {ms: 6000}
"""


def test_a_sigkilled_worker_s_image_is_swept_while_the_run_goes_on(tmp_path):
    """SIGKILL of the -n worker holding ``held``: its item ends as error, the harness's sweep
    undoes that worker's image at once (its owner tag names a dead process), the other worker's
    case keeps its outcome, and the run's end leaves nothing."""
    temp = _temp(tmp_path)
    proc = _start(tmp_path, temp, HOLD, "-n", "2")
    try:
        assert wait_until(lambda: len(_instances(temp)) == 2, 30), "no two images were made"
        victim = _instances(temp)[0]
        os.kill(int(victim.name.split("-")[1].split(".")[0]), signal.SIGKILL)
        assert wait_until(lambda: not victim.exists(), 10), f"{victim} was not swept"
        assert str(victim / "fs") not in mounts.mounts_under(temp)
        assert proc.poll() is None, "the run ended before the sweep could be seen"
    finally:
        report = _finish(tmp_path, proc)
    got = _outcomes(report)
    assert sorted(got.values()) == ["error", "passed"], got
    lost = next(r for r in report["results"] if r["outcome"] == "error")
    assert "worker process running it" in lost["reason"], lost
    assert _left(temp) == []


def test_what_a_sigkilled_run_left_the_next_run_undoes(tmp_path):
    """SIGKILL of the harness (its workers die with it: PR_SET_PDEATHSIG) leaves the images
    mounted; the next run in the same temp folder undoes them before it starts."""
    temp = _temp(tmp_path)
    proc = _start(tmp_path, temp, HOLD, "-n", "2")
    try:
        assert wait_until(lambda: len(_instances(temp)) == 2, 30), "no two images were made"
    finally:
        proc.kill()
        proc.communicate()
    assert len(_instances(temp)) == 2, "the killed run left no mount: nothing to show"
    after = _start(tmp_path, temp, "id: quick\ntitle: anything\nsteps:\n  - sleep: {ms: 1}\n")
    after.communicate(timeout=120)
    assert _left(temp) == []


def test_a_temp_folder_that_cannot_be_capped_is_used_as_it_is_and_the_run_says_so(tmp_path):
    """A temp folder on ramfs (no image of it can be made): the disk backing is the folder
    itself, and the report's environment and the run's stderr say it is not capped."""
    temp = tmp_path / "ramfs"
    temp.mkdir()
    if subprocess.run(["mount", "-t", "ramfs", "mmapconf-test", str(temp)]).returncode != 0:
        pytest.skip("cannot mount a ramfs here")
    try:
        proc = _start(tmp_path, temp, "id: small\ntitle: one file\nsteps:\n  - file: f\n")
        _, stderr = proc.communicate(timeout=120)
        report = json.loads((tmp_path / "r" / "report.json").read_text())
    finally:
        subprocess.run(["umount", str(temp)])
    assert _outcomes(report) == {"small[disk]": "passed"}, report
    disk = report["environment"]["backings"]["disk"]
    assert disk["fs"] == "ramfs" and disk["cap"].startswith("none: unknown filesystem 'ramfs'")
    assert "disk backing" in stderr and "is not capped: unknown filesystem 'ramfs'" in stderr
    assert report["environment"]["confinement"]["disk_cap"] == f"disk: {disk['cap']}"


# ioctl(4, REQUEST, &word) from machine code, fd 4 the case's file ``f``:
# mov edi,4; mov esi,REQUEST; lea rdx,[rip+8]; mov eax,16 (ioctl); syscall; ret; word: .long
FS_WIDE = {"EXT4_IOC_SHUTDOWN": (0x8004587D, 2), "FIFREEZE": (0xC0045877, 0)}


def _ioctl_code(request: int, word: int) -> str:
    le = lambda v: v.to_bytes(4, "little").hex()  # noqa: E731
    return f"bf04000000be{le(request)}488d1508000000b8100000000f05c3{le(word)}"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the machine code is x86-64")
@pytest.mark.parametrize("name", sorted(FS_WIDE))
def test_machine_code_cannot_shut_down_or_freeze_the_disk_s_filesystem(tmp_path, name):
    """A root case has CAP_SYS_ADMIN over the filesystem of its disk backing: without the
    filter EXT4_IOC_SHUTDOWN from machine code returns 0 and leaves that filesystem giving EIO
    (seen on an ext4 image; under main's uncapped default it is the temp folder's, the host's
    root here), and FIFREEZE would stop every writer on it. seccomp refuses the
    filesystem-wide ioctls (EPERM). Run on an ext4 of the test's own as --dir, so that a filter
    that let it through would shut down only that."""
    why = mounts.why_cannot_mount("ext4")
    if why:
        pytest.skip(why)
    request, word = FS_WIDE[name]
    text = f"""
id: fs-wide
title: machine code that freezes or shuts down the filesystem its file is on
backings: [disk]
steps:
  - file: f
  - fstat: f
{call_steps(_ioctl_code(request, word))}"""
    with mounts.mounted("ext4", "") as guard:
        result = run_text(guard, text)["fs-wide[disk]"]
        assert next(s for s in result.steps if s["op"] == "fstat")["args"]["fd"] == 4, result
        assert result.steps[-1]["result"] == -1, result  # -EPERM (0 without the filter)
        (guard / "still-writable").write_text("x")  # neither shut down (EIO) nor frozen


def test_an_instance_a_case_broke_is_replaced_by_a_fresh_one(tmp_path, monkeypatch):
    """Should a case still break its worker's filesystem (shut down: EIO ever after), the next
    scratch folder comes from a fresh instance, not an error for every later case (before, the
    EIO of mkdtemp ended the run with a traceback)."""
    temp = _temp(tmp_path)
    monkeypatch.setenv("MMAPCONF_SCRATCH_ROOT", str(temp / "scratch-root"))
    monkeypatch.setattr(mounts, "_run_dir", None)
    (disk,) = name_disks([temp_place(str(temp))])
    try:
        first = disk.scratch()
        fd = os.open(first, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, 0x8004587D, (2).to_bytes(4, "little"))  # EXT4_IOC_SHUTDOWN
        except OSError as e:
            pytest.skip(f"{disk.fs} has no EXT4_IOC_SHUTDOWN: {e}")
        finally:
            os.close(fd)
        with pytest.raises(OSError):
            tempfile.mkdtemp(dir=os.path.dirname(first))  # broken: EIO
        second = disk.scratch()
        assert os.path.dirname(second) != os.path.dirname(first)
        Path(second, "f").write_text("x")
    finally:
        mounts.finish_run()
    assert mounts.mounts_under(temp) == mounts.loops_backed_under(temp) == []
    assert list((temp / "scratch-root").iterdir()) == []
