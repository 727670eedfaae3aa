"""What a guest run adds to report.json, and merging the per-kernel reports.

- kernel_issues(): warnings, oopses and BUGs that the guest kernel logged
  while the cases ran (between our dmesg markers), and taint it gained;
- annotate(): environment.vm in the guest's report.json (kernel package,
  accelerator, filesystem, timings, issues, where the logs are);
- merge(): one summary of several reports, and the cases whose outcome
  differs between kernels for the same backing and filesystem.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from runner.report.atomic import write_text
from runner.report.model import load_report, write_report

START = "mmapconf: command start"
END = "mmapconf: command end"

# Kernel-side trouble.  "segfault at" / "traps:" lines are deliberately not
# here: the cases provoke SIGSEGV and SIGBUS on purpose.
_ISSUE = re.compile(
    r"WARNING:|\bBUG[: ]|Oops|general protection fault|Kernel panic|kernel BUG|"
    r"UBSAN:|KASAN:|INFO: task .* blocked|soft lockup|hard LOCKUP|rcu_sched self-detected|"
    r"rcu: INFO: rcu_.* stall|page allocation failure|Out of memory|invoked oom-killer|"
    r"I/O error|EXT4-fs error|XFS \(.*\): (Corruption|Internal error)|BTRFS (error|critical)"
)

TAINT_FLAGS = "PFSRMBUDAWCIOELKXTNJ"  # bit i of /proc/sys/kernel/tainted


def decode_taint(value: int) -> str:
    return "".join(f for i, f in enumerate(TAINT_FLAGS) if value >> i & 1)


def kernel_issues(dmesg: str, taint_before: int = 0, taint_after: int = 0) -> list[str]:
    """Problem lines the kernel logged while the command ran, plus new taint."""
    lines = dmesg.splitlines()
    start = next((i for i, s in enumerate(lines) if START in s), 0)
    end = next((i for i, s in enumerate(lines) if END in s), len(lines))
    issues = [s.strip() for s in lines[start:end] if _ISSUE.search(s)]
    gained = taint_after & ~taint_before
    if gained:
        issues.append(
            f"kernel taint gained during the run: {decode_taint(gained)} "
            f"(tainted {taint_before} -> {taint_after})"
        )
    return issues


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_float(path: Path) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def guest_facts(job: Path) -> dict[str, Any]:
    """Timings, taint and issues from the files the guest init left in JOB."""
    tb = _read_int(job / "tainted-before") or 0
    ta = _read_int(job / "tainted-after") or 0
    t0, t1 = _read_float(job / "uptime-start"), _read_float(job / "uptime-end")
    try:
        dmesg = (job / "dmesg.txt").read_text(errors="replace")
    except OSError:
        dmesg = ""
    return {
        "boot_s": t0,
        "run_s": round(t1 - t0, 2) if t0 is not None and t1 is not None else None,
        "tainted_before": tb,
        "tainted_after": ta,
        "kernel_issues": kernel_issues(dmesg, tb, ta),
    }


def write_json(path: Path, data: Any) -> None:
    """A JSON file beside the reports (vm-error.json, kernels.json), written atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def annotate(report_path: Path, vm: dict[str, Any]) -> dict[str, Any]:
    """Add environment.vm to the report at REPORT_PATH; returns the report."""
    report = load_report(report_path)
    report.setdefault("environment", {})["vm"] = vm
    write_report(report, report_path)
    return report


def _key(r: dict[str, Any], env: dict[str, Any]) -> tuple[str, str, str]:
    backing = str(r.get("backing") or "-")
    fs = (env.get("backings") or {}).get(backing, {}).get("fs") or "-"
    return str(r.get("id")), backing, str(fs)


def merge(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One view of several reports: per report its kernel, fs and summary;
    and `differences`: each (case, backing, fs) whose outcome is not the same
    under every kernel that ran it."""
    runs = []
    outcomes: dict[tuple[str, str, str], dict[str, str]] = {}
    for label, rep in reports:
        env = rep.get("environment", {})
        vm = env.get("vm", {})
        runs.append(
            {
                "label": label,
                "kernel_release": env.get("kernel_release"),
                "fs": vm.get("fs"),
                "accel": vm.get("accel"),
                "summary": rep.get("summary"),
                "wall_s": vm.get("wall_s"),
                "kernel_issues": vm.get("kernel_issues", []),
            }
        )
        for r in rep.get("results", []):
            k = _key(r, env)
            outcomes.setdefault(k, {})[str(env.get("kernel_release") or label)] = str(
                r.get("outcome")
            )
    differences = [
        {"id": k[0], "backing": k[1], "fs": k[2], "outcomes": by_kernel}
        for k, by_kernel in sorted(outcomes.items())
        if len(set(by_kernel.values())) > 1
    ]
    return {"runs": runs, "differences": differences}


def differences_markdown(merged: dict[str, Any]) -> str:
    diffs = merged["differences"]
    if not diffs:
        return "No case's outcome differs between the kernels.\n"
    kernels = sorted({k for d in diffs for k in d["outcomes"]})
    lines = [
        "| case | backing/fs | " + " | ".join(kernels) + " |",
        "|---|---|" + "---|" * len(kernels),
    ]
    for d in diffs:
        cells = [d["outcomes"].get(k, "·") for k in kernels]
        lines.append(f"| `{d['id']}` | {d['backing']}/{d['fs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
