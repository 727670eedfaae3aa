"""The native executor against the recorded run of the Python step executor (removed since):
every item's outcome and normalised reason, side by side.

parity-record.json holds the Python executor's outcomes for the catalogue and the
expectation-by-context matrix as they were when both executors existed (554 of 554 identical
then). It is the independent check of the native executor's observations and judging: written
by other code, it cannot agree with the native executor by sharing its mistakes.
``python tests/native/native_parity.py`` prints the differences on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script too

from runner.lang.loader import load_suite  # noqa: E402
from runner.session.runner import RunConfig, Runner  # noqa: E402

RECORD = Path(__file__).with_name("parity-record.json")
CORPUS = [ROOT / "cases", ROOT / "tests" / "matrix" / "generated"]


def corpus() -> list[str]:
    return [str(p) for p in CORPUS if p.exists()]


def normalise(reason: str) -> str:
    """A reason without what differs from run to run: addresses no mapping names, times, pids."""
    reason = re.sub(r"0x[0-9a-f]{5,}", "0xADDR", reason)
    reason = re.sub(r"\b\d{9,}\b", "N", reason)
    return re.sub(r"\bpid \d+", "pid N", reason)


def outcomes(paths: list[str] | None = None) -> dict[str, list[str]]:
    """Every item of ``paths``, run: name -> [outcome, normalised reason]."""
    runner = Runner(RunConfig())
    try:
        items = runner.plan(load_suite(paths or corpus()))
        return {r.name: [r.outcome, normalise(r.reason)] for r in map(runner.run_item, items)}
    finally:
        runner.close()


def differences(a: dict[str, list[str]], b: dict[str, list[str]]) -> list[str]:
    return [
        f"{name}: {a.get(name)} != {b.get(name)}"
        for name in sorted(set(a) | set(b))
        if a.get(name) != b.get(name)
    ]


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    record = json.loads(RECORD.read_text())
    native = outcomes()
    shared = {name: native.get(name, ["not run", ""]) for name in record["python"]}
    diff = differences(record["python"], shared)
    print(f"recorded on {record['kernel']}, this kernel {os.uname().release}")
    print(f"parity: {len(shared) - len(diff)} of {len(shared)} recorded items identical")
    for line in diff:
        print("  " + line)
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
