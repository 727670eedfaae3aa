"""The cut and judge boots without a kernel: qemu replaced by a process that never says "stored"
or tells its facts (a hung guest). It is booted once more, then its results are errors; nothing
it made stays behind, after that or after an interrupt."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.lang.loader import load_suite
from runner.vm import guestrun, qemu, run
from runner.vm.arch import ARM64
from runner.vm.durability import cut, writelog
from runner.vm.target import KernelRefused, Target

needs_mkfs = pytest.mark.skipif(shutil.which("mkfs.ext4") is None, reason="no mkfs.ext4")
pytestmark = needs_mkfs
ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "cases/durability/durability-ms-sync-cut-now.yaml"
HUNG = "1000.25"  # the fake qemu: `sleep HUNG`, found again by its argument
HUNG_TOO = "1000.5"  # the interrupted one's: the tests may run at once (-n 2)
HUNG_JUDGE = "1000.125"  # the hung judge boot's


def _boots(tmp: Path, timeout: float) -> cut.Boots:
    def spec(job: Path, fs: str, **disks: object) -> qemu.GuestSpec:
        return qemu.GuestSpec(Path("/none"), Path("/none"), job, fs=fs, **disks)  # type: ignore[arg-type]

    return cut.Boots(spec, lambda job: None, tmp / "keep", timeout, log=lambda s: None)


def _sleepers(mark: str = HUNG) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"sleep {mark}"], capture_output=True, text=True)
    return out.stdout.split()


def test_a_hung_guest_is_booted_again_then_its_results_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    real = qemu.command

    def fake(gs: qemu.GuestSpec) -> list[str]:
        argv = real(gs)  # the real command line: a logged disk, a cache mode
        started.append(argv)
        return ["sleep", HUNG]

    monkeypatch.setattr(cut.qemu, "command", fake)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    case = next(iter(load_suite([str(CASE)]).cases))
    results = cut.run_case(_boots(tmp_path, 1.0), case, "ext4")
    assert len(started) == 2  # retried once
    assert "driver=blklogwrites,cache=writeback" in " ".join(started[0])
    assert [r["name"] for r in results] == [
        f"{case.id}[disk/submitted]",
        f"{case.id}[disk/flushed]",
    ]
    assert {r["outcome"] for r in results} == {"error"}
    assert all("hung twice before 'stored'" in r["reason"] for r in results)
    assert [r["facts"]["disk"] for r in results] == ["submitted", "flushed"]
    kept = sorted(p.name for p in (tmp_path / "keep").iterdir())
    assert kept == [
        f"{case.id}-ext4-cut.attempt1.console.log",
        f"{case.id}-ext4-cut.attempt2.console.log",
    ]
    assert list((tmp_path / "tmp").iterdir()) == []  # no disk, no log, no job folder
    assert _sleepers() == []  # no "qemu"


def test_cache_unsafe_is_refused(tmp_path: Path) -> None:
    gs = qemu.GuestSpec(
        Path("/k"), Path("/i"), tmp_path, disk=tmp_path / "d", disk_log=tmp_path / "l"
    )
    gs.disk_cache = "unsafe"
    with pytest.raises(ValueError, match="unsafe"):
        qemu.command(gs)


def test_nothing_stays_after_an_interrupt(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from tests.durability.test_boots import _boots
        from runner.lang.loader import load_suite
        from runner.vm.durability import cut, writelog
        cut.qemu.command = lambda gs: ["sleep", {HUNG_TOO!r}]
        case = load_suite([{str(CASE)!r}]).cases[0]
        try:
            cut.run_case(_boots(Path({str(tmp_path)!r}), 300.0), case, "ext4")
        except KeyboardInterrupt:
            sys.exit(130)
        """
    )
    env = {**os.environ, "TMPDIR": str(tmp)}
    p = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not _sleepers(HUNG_TOO) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sleepers(HUNG_TOO), "the fake guest never started"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    assert _sleepers(HUNG_TOO) == []
    assert list(tmp.iterdir()) == []


def test_a_hung_judge_boot_is_booted_again_then_its_results_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    def fake(gs: qemu.GuestSpec, *rest: object) -> list[str]:
        started.append(qemu.kernel_append(gs))
        return ["sleep", HUNG_JUDGE]

    monkeypatch.setattr(cut.qemu, "command", fake)
    case = next(iter(load_suite([str(CASE)]).cases))
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    c = cut.Cut(case, {"id": case.id, "fs": "ext4"}, {"submitted": disk}, {}, writelog.Log(512, []),
                0, cut.Watch(), 0)  # fmt: skip
    work = tmp_path / "work"
    cut._judge_boot(_boots(tmp_path, 1.0), [c], work, "ext4")
    assert len(started) == 2  # retried once
    assert "mmapconf.mount=0" in started[0]  # the batch mounts each disk it judges
    [r] = cut._results(c, "writeback")
    assert r["name"] == f"{case.id}[disk/submitted]"
    assert r["outcome"] == "error" and r["reason"] == "the judge boot brought no result"
    kept = sorted(p.name for p in (tmp_path / "keep").iterdir())
    assert kept == [
        f"{case.id}-ext4-judge1.attempt1.console.log",
        f"{case.id}-ext4-judge1.attempt2.console.log",
    ]
    assert _sleepers(HUNG_JUDGE) == []


SILENT = "1000.0625"  # the fake qemu of the guests that never tell their facts
LONG = 120.0  # their boots' timeout: never reached when their silence ends them


def _silent_guests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """qemu replaced by a sleeper, and the host's wait for a guest's facts cut to 0.3 s."""
    started: list[str] = []

    def fake(gs: qemu.GuestSpec, *rest: object) -> list[str]:
        started.append(qemu.kernel_append(gs))
        return ["sleep", SILENT]

    monkeypatch.setattr(cut.qemu, "command", fake)
    monkeypatch.setattr(guestrun, "FACTS_WAIT_S", 0.3)
    return started


def test_a_cut_boot_whose_guest_never_tells_its_facts_is_ended_then_booted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An early hang (about 1 boot in 180): ended when the facts do not come, not at the
    boot's timeout, and booted once more."""
    started = _silent_guests(monkeypatch)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    case = next(iter(load_suite([str(CASE)]).cases))
    t0 = time.monotonic()
    results = cut.run_case(_boots(tmp_path, LONG), case, "ext4")
    assert time.monotonic() - t0 < LONG  # two boots waited for by their timeout: 2 x LONG
    assert len(started) == 2
    assert all("hung twice before 'stored'" in r["reason"] for r in results)
    assert list((tmp_path / "tmp").iterdir()) == [] and _sleepers(SILENT) == []


def test_a_judge_boot_whose_guest_never_tells_its_facts_is_ended_then_booted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = _silent_guests(monkeypatch)
    case = next(iter(load_suite([str(CASE)]).cases))
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    c = cut.Cut(case, {"id": case.id, "fs": "ext4"}, {"submitted": disk}, {}, writelog.Log(512, []),
                0, cut.Watch(), 0)  # fmt: skip
    t0 = time.monotonic()
    cut._judge_boot(_boots(tmp_path, LONG), [c], tmp_path / "work", "ext4")
    assert time.monotonic() - t0 < LONG
    assert len(started) == 2
    [r] = cut._results(c, "writeback")
    assert r["outcome"] == "error" and r["reason"] == "the judge boot brought no result"
    assert _sleepers(SILENT) == []


def test_a_kernel_of_another_architecture_is_refused_for_power_cuts_before_any_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guest's batch runs programs compiled here: an arm64 kernel is refused for power-cut
    cases, with the reason, before anything boots."""
    arm = Target("arm", "6.1.0-arm64", tmp_path / "Image", tmp_path, None, None, False, arch=ARM64)
    monkeypatch.setattr(run, "missing_tools", lambda arch=None: [])
    monkeypatch.setattr(run, "resolve", lambda spec, modules: arm)
    monkeypatch.setattr(run, "check", lambda target, board, fs: None)
    booted: list[object] = []
    monkeypatch.setattr(run, "run_one", lambda *a, **k: booted.append(a))
    case = next(iter(load_suite([str(CASE)]).cases))
    with pytest.raises(KernelRefused, match="power-cut cases run in guests of this host's arch"):
        run.run_under_kernels(["arm"], ["run"], tmp_path, ["ext4"], "tcg", 60, power_cuts=[case])
    assert booted == []
