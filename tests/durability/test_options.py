"""--cut-model and --disk-cache: parsed once (runner/session/options.py), refused without
--kernel and with a bad value (exit 2, no traceback), and carried to the cut boot: the qemu
command line's cache mode, and only the chosen models' results."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli.kernels import cut_options
from runner.cli.main import build_parser
from runner.lang.loader import load_suite
from runner.vm import qemu
from runner.vm.durability import cut
from tests.durability.test_boots import CASE, _boots, _sleepers, needs_mkfs

ROOT = Path(__file__).resolve().parents[2]
HUNG = "1000.75"  # this fake guest's `sleep`, apart from test_boots' (-n 2)


def _args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", "cases/durability", "--kernel", "6.1", *extra])


def test_the_defaults_are_both_models_and_writeback() -> None:
    assert cut_options(_args()) == cut.Options(("submitted", "flushed"), "writeback")


def test_the_chosen_models_in_their_order_and_the_cache() -> None:
    got = cut_options(_args("--cut-model", "flushed,submitted,flushed", "--disk-cache", "none"))
    assert got == cut.Options(("submitted", "flushed"), "none")
    assert cut_options(_args("--cut-model", "flushed")).models == ("flushed",)


def _mmapconf(*argv: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from runner.cli.main import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--kernel", "6.1", "--cut-model", "cached"], "unknown disk model cached"),
        (["--kernel", "6.1", "--disk-cache", "unsafe"], "invalid choice: 'unsafe'"),
        (["--cut-model", "flushed"], "go with --kernel"),
        (["--disk-cache", "none"], "go with --kernel"),
    ],
)
def test_bad_or_misplaced_options_are_refused(extra: list[str], message: str) -> None:
    p = _mmapconf("run", "cases/durability", *extra)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr


@needs_mkfs
def test_the_options_reach_the_cut_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    real = qemu.command

    def fake(gs: qemu.GuestSpec) -> list[str]:
        started.append(" ".join(real(gs)))
        return ["sleep", HUNG]

    monkeypatch.setattr(cut.qemu, "command", fake)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    boots = _boots(tmp_path, 1.0)
    boots.options = cut.Options(("flushed",), "directsync")
    case = load_suite([str(CASE)]).cases[0]
    results = cut.run_case(boots, case, "ext4")
    assert "driver=blklogwrites,cache=directsync" in started[0]
    assert [r["name"] for r in results] == [f"{case.id}[disk/flushed]"]
    assert list((tmp_path / "tmp").iterdir()) == [] and _sleepers(HUNG) == []
