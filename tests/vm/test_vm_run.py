"""The orchestration around a boot, with qemu.boot replaced (no VM needed):
retry of an infrastructure error, kept console logs, the CLI wiring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from runner.cli.kernels import add_kernels_cli
from runner.cli.main import main
from runner.vm import guestrun, initramfs, kernels, qemu, reference, run
from runner.vm.arch import AMD64, ARM64
from runner.vm.target import Target, stock


@pytest.fixture
def fake_tree(tmp_path: Path, monkeypatch) -> Target:
    monkeypatch.setattr(initramfs, "ensure", lambda t, fs="none", m="", b=None: tmp_path / "initrd")
    monkeypatch.setattr(run, "make_disk", lambda fs, d: d / "disk.img")
    return stock(kernels.KernelTree(tmp_path / "tree", "6.1.0-99-amd64", "6.1", "6.1.999-1"))


def fake_boot(outcomes: list[str]):
    """A qemu.boot that, per call, leaves a report ("ok") or nothing ("lost")."""
    calls: list[qemu.GuestSpec] = []

    def boot(spec: qemu.GuestSpec, timeout: float) -> qemu.BootResult:
        calls.append(spec)
        what = outcomes[len(calls) - 1]
        console = spec.job / "console.log"
        console.write_text(f"boot {len(calls)}\n")
        if what == "ok":
            rep = {"environment": {"kernel_release": "6.1.0-99-amd64"}, "results": []}
            (spec.job / "report.json").write_text(json.dumps(rep))
            (spec.job / "exit-status").write_text("0\n")
            (spec.job / "dmesg.txt").write_text("[1.0] mmapconf: command start\n")
        return qemu.BootResult(0 if what == "ok" else None, 1.0, False, console, 0)

    return boot, calls


def test_lost_report_is_retried_once_and_the_console_kept(
    tmp_path: Path, fake_tree, monkeypatch
) -> None:
    boot, calls = fake_boot(["lost", "ok"])
    monkeypatch.setattr(qemu, "boot", boot)
    job = tmp_path / "out" / "6.1"
    argv = ["run", "cases/article"]
    path = run.run_one(fake_tree, argv, job, "ext4", "tcg", 30, log=print, runner="python")
    assert path == job / "report.json" and len(calls) == 2
    assert (job / "console.attempt1.log").read_text() == "boot 1\n"
    assert (job / "console.log").read_text() == "boot 2\n"
    vm = json.loads(path.read_text())["environment"]["vm"]
    assert vm["fs"] == "ext4" and vm["accel"] == "tcg" and vm["kernel_abi"] == "6.1.0-99-amd64"
    assert [a["exit_status"] for a in vm["attempts"]] == [None, 0]
    assert calls[0].disk is not None and calls[0].fs == "ext4"
    assert "--dir /run/mmapconf/disk" in (job / "cmd.sh").read_text()


def test_the_batch_runs_the_executor_alone_and_is_retried_like_the_harness(
    tmp_path: Path, fake_tree, monkeypatch
) -> None:
    """By default the guest's cmd.sh execs the native executor's batch mode, no interpreter;
    a boot that brings no report back is retried once, as the harness's is."""
    boot, calls = fake_boot(["lost", "ok"])
    runs: list[list[str]] = []

    def run_batch(spec: qemu.GuestSpec, argv: list[str], timeout: float):
        runs.append(argv)
        r = boot(spec, timeout)
        return r, (spec.job / "report.json") if r.exit_status == 0 else None

    monkeypatch.setattr(guestrun, "run_batch", run_batch)
    job = tmp_path / "out" / "6.1"
    path = run.run_one(fake_tree, ["run", "cases/article", "-k", "eof"], job, "ext4", "tcg", 30)
    assert path == job / "report.json" and len(calls) == 2
    cmd = (job / "cmd.sh").read_text()
    assert f"exec {job}/mmapconf-exec --batch {job}/batch.in {job}/batch.out" in cmd
    assert "python" not in cmd
    # the run the guest's harness would have had: its report's argv
    assert runs[0] == [
        "run",
        "cases/article",
        "-k",
        "eof",
        "--dir",
        run.GUEST_DISK_DIR,
        "--report-dir",
        str(job),
    ]
    assert (job / "console.attempt1.log").read_text() == "boot 1\n"


def test_the_python_guest_runner_or_another_arch_runs_the_harness_in_the_guest() -> None:
    assert run.runs_batch(AMD64, "native")
    assert not run.runs_batch(AMD64, "python")
    assert not run.runs_batch(ARM64, "native")


def test_two_lost_reports_are_an_infrastructure_error(
    tmp_path: Path, fake_tree, monkeypatch
) -> None:
    boot, calls = fake_boot(["lost", "lost"])
    monkeypatch.setattr(qemu, "boot", boot)
    job = tmp_path / "6.1"
    assert (
        run.run_one(fake_tree, ["run"], job, "ext4", "tcg", 30, log=print, runner="python") is None
    )
    assert len(calls) == 2
    assert (job / "console.attempt1.log").is_file() and (job / "console.attempt2.log").is_file()
    assert len(json.loads((job / "vm-error.json").read_text())["attempts"]) == 2


def test_a_host_without_qemu_is_exit_2_with_the_reason(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(qemu, "qemu_binary", lambda arch: None)
    with pytest.raises(run.VMUnavailable, match="qemu-system-x86_64.*install-vm-deps"):
        run.run_under_kernels(["6.1"], ["run"], tmp_path, ["ext4"], None, 10)
    assert main(["run", "--kernel", "6.1", "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmapconf run: cannot boot kernels here: missing qemu-system-x86_64")
    assert main(["kernels", "reference", "--kernel", "6.1", "--report-dir", str(tmp_path)]) == 2


def test_each_guest_report_is_gated_as_mmapconf_run_gates(monkeypatch, tmp_path: Path, capsys):
    """run --kernel: a guest report with a flaky or timed-out result fails, as on the host."""
    reports = []
    for label, outcome in (("6.1", "passed"), ("7.3", "flaky")):
        path = tmp_path / label / "report.json"
        path.parent.mkdir()
        result = {"name": "c[anon]", "id": "c", "backing": "anon", "outcome": outcome}
        path.write_text(json.dumps({"environment": {}, "results": [result]}))
        reports.append(path)
    monkeypatch.setattr(run, "run_under_kernels", lambda *a, **k: reports[:1])
    monkeypatch.setattr(reference, "write_matrix", lambda paths, out: None)
    argv = ["run", "--kernel", "6.1", "--report-dir", str(tmp_path)]
    assert main(argv) == 0
    monkeypatch.setattr(run, "run_under_kernels", lambda *a, **k: reports)
    assert main([*argv, "--kernel", "7.3"]) == 1
    assert "7.3: 1 flaky: gate failed" in capsys.readouterr().out


def test_kernels_cli_wires_into_a_parent_parser(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MMAPCONF_KERNEL_CACHE", str(tmp_path))
    parser = argparse.ArgumentParser(prog="mmapconf")
    add_kernels_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["kernels", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "6.12" in out and "not fetched" in out  # the shipped lock, empty cache
    args = parser.parse_args(["kernels", "fetch", "--update-lock", "6.1"])
    assert args.series == ["6.1"] and args.update_lock


def test_unknown_fs_and_accel_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown filesystem"):
        run.make_disk("zfs", tmp_path)
    tree = stock(kernels.KernelTree(tmp_path, "x"))
    with pytest.raises(ValueError, match="--accel"):
        run.resolve_accel("hvf", tree, tmp_path)
    assert run.resolve_accel("tcg", tree, tmp_path) == "tcg"
