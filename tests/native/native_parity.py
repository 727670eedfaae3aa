"""Parity of the two executors: every item's outcome and normalised reason, side by side.

``python tests/native/native_parity.py --write`` records the Python executor's outcomes for the
catalogue (and the expectation-by-context matrix where it exists) in parity-record.json; the
tests compare the native executor with a live Python run and with that record.
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


def outcomes(executor: str, paths: list[str] | None = None) -> dict[str, list[str]]:
    """Every item of ``paths`` run on ``executor``: name -> [outcome, normalised reason]."""
    runner = Runner(RunConfig(executor=executor))
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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="record the Python executor's outcomes")
    args = p.parse_args(argv)
    python = outcomes("python")
    native = outcomes("native")
    diff = differences(python, native)
    print(f"parity: {len(python) - len(diff)} of {len(python)} items identical")
    for line in diff:
        print("  " + line)
    if args.write:
        record = {"kernel": os.uname().release, "python": python}
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"recorded {RECORD}")
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
