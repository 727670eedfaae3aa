"""The JSON that LTP's runner kirk writes (``kirk --json-report``), for labs that aggregate LTP
runs: ``results[]`` with ``test_fqn``, ``status`` and ``test`` details, ``stats`` and
``environment``, with kirk's field names and status words.

Status: a pass is ``pass``; a skip (an unmet requirement) is LTP's TCONF, ``conf``; a case that
could not be carried out or ran out of time is LTP's TBROK, ``brok``; a failure is ``fail`` - a
known deviation too, since LTP has no baseline (labs keep their own known-issue lists; its
``log`` names the baseline entry), and a flaky result, which fails the gate.
"""

from __future__ import annotations

import json
from typing import Any

from runner.report import model
from runner.report.trace import steps_of, trace_lines

STATUS = {"passed": "pass", "skipped": "conf", "error": "brok", "timeout": "brok"}
# what an LTP test's exit status says for each (TFAIL 1, TBROK 2, TCONF 32)
RETVAL = {"pass": "0", "fail": "1", "brok": "2", "conf": "32"}
_COUNTER = {"pass": "passed", "fail": "failed", "brok": "broken", "conf": "skipped"}


def status(r: dict[str, Any]) -> str:
    return STATUS.get(model.outcome(r), "fail")


def _log(r: dict[str, Any]) -> str:
    lines = [f"{model.result_name(r)}: {model.outcome(r)}"]
    if r.get("reason"):
        lines.append(str(r["reason"]))
    base = r.get("baseline")
    if isinstance(base, dict):
        lines.append(f"baseline {base.get('status')}: {base.get('file')}:{base.get('line')}")
    trace = trace_lines(steps_of(r)) if model.outcome(r) != "passed" else []
    return "\n".join([*lines, *trace]) + "\n"


def _test(r: dict[str, Any]) -> dict[str, Any]:
    word = status(r)
    test: dict[str, Any] = {
        "command": "mmapconf",
        "arguments": ["run", str(r.get("file") or ""), "-k", model.result_id(r)],
        "log": _log(r),
        "retval": [RETVAL[word]],
        "duration": r.get("duration_s") or 0,
    }
    test.update({counter: int(word == w) for w, counter in _COUNTER.items()})
    test.update(warnings=0, result=word)
    return {"test_fqn": model.result_name(r), "status": word, "test": test}


def render_ltp(report: dict[str, Any]) -> str:
    """kirk's JSON report for ``report``."""
    results = [_test(r) for r in model.results(report)]
    stats = {"runtime": model.total_duration(report)}
    for counter in (*_COUNTER.values(), "warnings"):
        stats[counter] = sum(t["test"][counter] for t in results)
    env = model.environment(report)
    environment = {
        "distribution": env.get("distribution") or "",
        "distribution_version": env.get("distribution_version") or "",
        "kernel": f"Linux {env.get('kernel_release') or ''} {env.get('kernel_version') or ''}",
        "cmdline": " ".join(map(str, env.get("argv") or [])),
        "arch": env.get("machine") or "",
        "cpu": env.get("cpu") or "",
        "swap": env.get("swap") or "",
        "RAM": env.get("ram") or "",
    }
    data = {"results": results, "stats": stats, "environment": environment}
    return json.dumps(data, indent=1) + "\n"
