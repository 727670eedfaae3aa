"""--judge-boots N: the same disks judged in N boots; a disk replayed from the write log is the
same disk every time, so a result any boot judged otherwise is an error naming each boot's
judgement. Judgements made up here (the real ones: reports/reference/durability)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.cli.kernels import cut_options
from runner.lang.loader import load_suite
from runner.vm.durability import cut, writelog
from tests.durability.test_options import _args

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "cases/durability/durability-fdatasync-after-writeback.yaml"
STORED = "73746f72656421"  # "stored!"


def _judged(model: str, data: str = STORED, outcome: str = "passed") -> dict[str, Any]:
    read = {"process": "after_reboot", "step": "3.1", "op": "read", "ok": outcome == "passed"}
    read |= {"observed": f"success, value {{hex {data}}} (7 bytes)", "result": {"$bytes": data}}
    reason = "" if outcome == "passed" else "after_reboot step 3.1 (read): expected ..."
    return {"name": f"x[disk/{model}]", "outcome": outcome, "reason": reason, "steps": [read],
            "facts": {"disk": model}, "duration_s": 12.5}  # fmt: skip


def _cut(*judged: dict[str, dict[str, Any]]) -> cut.Cut:
    case = load_suite([str(CASE)]).cases[0]
    log = writelog.Log(512, [writelog.Entry(0, 0, 8, 0, 512, 4608)])
    models = {m: Path("/none") for m in judged[0]}
    spec = {"fs": "btrfs"}
    c = cut.Cut(case, spec, models, {}, log, 1, cut.Watch(stored_s=0.0), 6000)
    c.judged = [copy.deepcopy(j) for j in judged]
    return c


def test_the_same_judgement_twice_is_reported_so() -> None:
    once = {m: _judged(m) for m in ("submitted", "flushed")}
    again = copy.deepcopy(once)
    again["flushed"]["duration_s"] = 30.0  # the times may differ
    for r in cut._results(_cut(once, again), "writeback"):
        assert r["outcome"] == "passed"
        assert r["durability"]["judge_boots"] == {"boots": 2, "same": True}


def test_a_disk_judged_otherwise_is_an_error_naming_both_judgements() -> None:
    once = {m: _judged(m) for m in ("submitted", "flushed")}
    again = {"submitted": _judged("submitted"), "flushed": _judged("flushed", "00" * 7, "failed")}
    by = {r["facts"]["disk"]: r for r in cut._results(_cut(once, again), "writeback")}
    assert by["submitted"]["outcome"] == "passed"
    flushed = by["flushed"]
    assert flushed["outcome"] == "error"
    assert flushed["durability"]["judge_boots"] == {"boots": 2, "same": False}
    assert "judge boots judged this disk differently" in flushed["reason"]
    assert (
        f"boot 1: passed: as expected [step 3.1 (read): success, value {{hex {STORED}}}"
        in (flushed["reason"])
    )
    assert "boot 2: failed: after_reboot step 3.1 (read): expected" in flushed["reason"]


def test_a_judge_boot_that_brought_nothing_is_no_agreement() -> None:
    once = {m: _judged(m) for m in ("submitted", "flushed")}
    by = {r["facts"]["disk"]: r for r in cut._results(_cut(once, {}), "writeback")}
    assert by["submitted"]["outcome"] == "error"
    assert "boot 2: no result" in by["submitted"]["reason"]


def test_one_judge_boot_is_the_default_and_says_nothing() -> None:
    assert cut_options(_args()).judge_boots == 1
    assert cut_options(_args("--judge-boots", "2")).judge_boots == 2
    once = {m: _judged(m) for m in ("submitted", "flushed")}
    assert all("judge_boots" not in r["durability"] for r in cut._results(_cut(once), "x"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--kernel", "6.1", "--judge-boots", "0"], "--judge-boots"),
        (["--judge-boots", "2"], "go with --kernel"),
    ],
)
def test_bad_or_misplaced_judge_boots_are_refused(extra: list[str], message: str) -> None:
    code = "import sys; from runner.cli.main import main; sys.exit(main())"
    p = subprocess.run(
        [sys.executable, "-c", code, "run", "cases/durability", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
