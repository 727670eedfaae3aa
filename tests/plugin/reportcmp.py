"""Compare two report.json files as the plugin promises: the same results with the same outcomes.

Run as a script (``python tests/plugin/reportcmp.py A.json B.json``) it prints the differences
and exits 1 when there are any. What is compared leaves out what differs from run to run on
its own: durations, addresses and values that hold addresses, the order in which the processes
of one case happened to report their steps, and when and how the run was started.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: this tree's reader

from runner.report.model import load_report  # noqa: E402

# step fields that hold run-specific numbers (mapping addresses, pids)
VOLATILE_STEP_FIELDS = ("args", "result", "observed", "si_addr")
VOLATILE_ENV_FIELDS = ("started", "argv")


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r["outcome"] for r in report["results"]}


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    results = {}
    for r in report["results"]:
        r = dict(r, duration_s=None)
        steps = [{k: v for k, v in s.items() if k not in VOLATILE_STEP_FIELDS} for s in r["steps"]]
        r["steps"] = sorted(steps, key=lambda s: json.dumps(s, sort_keys=True))
        results[r["name"]] = r
    env = {k: v for k, v in report["environment"].items() if k not in VOLATILE_ENV_FIELDS}
    summary = dict(report["summary"], duration_s=None)
    return {
        "schema_version": report["schema_version"],
        "environment": env,
        "summary": summary,
        "results": results,
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    ca, cb = comparable(a), comparable(b)
    out = []
    for key in ("schema_version", "environment", "summary"):
        if ca[key] != cb[key]:
            out.append(f"{key}: {ca[key]!r} != {cb[key]!r}")
    ra, rb = ca["results"], cb["results"]
    for name in sorted(ra.keys() | rb.keys()):
        x, y = ra.get(name), rb.get(name)
        if x is None or y is None:
            out.append(f"{name}: only in {'second' if x is None else 'first'}")
        elif x != y:
            fields = [f for f in x if x[f] != y.get(f)]
            out.append(f"{name}: {', '.join(fields)} differ ({x['outcome']} vs {y['outcome']})")
    return out


def main(argv: list[str]) -> int:
    a, b = (load_report(Path(p)) for p in argv)
    diff = differences(a, b)
    print(f"{len(a['results'])} and {len(b['results'])} results; {len(diff)} difference(s)")
    for line in diff:
        print("  " + line)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
