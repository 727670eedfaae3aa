"""Regenerate the published per-kernel reports: `mmapconf kernels reference`.

Runs the article cases on the disk (ext4 block device) and tmpfs backings
under each pinned kernel, then writes matrix.md/.txt, kernels.json and a
README.md listing the cases whose outcome differs between kernels.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from runner.report import matrix as mx
from runner.report.atomic import write_text
from runner.report.model import counts_text, load_report

from . import kernels
from .run import run_under_kernels
from .vmreport import differences_markdown, merge, write_json

DEFAULT_DIR = Path("reports/reference")
GUEST_ARGV = ["run", "cases/article", "--backing", "disk,tmpfs"]
# Files of a job dir that are worth publishing (cmd.sh and the timing files are for
# debugging a boot).
PUBLISH = ("report.json", "dmesg.txt", "console.log", "stdout.txt", "stderr.txt")
# A README's section from this heading on is written by hand (what the differences mean) and
# carried over when the rest is regenerated.
HAND_HEADING = "## What the differences mean"


def regenerate(
    report_dir: Path = DEFAULT_DIR,
    series: list[str] | None = None,
    fs: list[str] | None = None,
    accel: str | None = None,
    timeout: float = 900.0,
    guest_argv: list[str] | None = None,
    keep_reports: bool = True,
    add: bool = False,
) -> list[Path]:
    """Run, write matrix/README into REPORT_DIR; without KEEP_REPORTS only the
    README, matrix and kernels.json stay (a whole-suite report is ~4 MB per
    kernel: too much to commit at every regeneration). ADD: the matrix and README also take
    the reports already in REPORT_DIR's folders (a kernel's column redone, the others kept).
    Returns the reports of this run."""
    series = series or sorted(kernels.read_lock(), key=kernels._series_key)
    kernels.fetch(series)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = run_under_kernels(
        series, guest_argv or GUEST_ARGV, report_dir, fs or ["ext4"], accel, timeout
    )
    for p in paths:
        for f in p.parent.iterdir():
            if f.is_file() and f.name not in PUBLISH:
                f.unlink()
    kept = set(report_dir.resolve().glob("*/report.json")) if add else set()
    shown = sorted(set(paths) | kept)
    if shown:
        write_matrix(shown, report_dir)
        text = readme(shown, report_dir, guest_argv or GUEST_ARGV, keep_reports)
        write_text(report_dir / "README.md", text + hand_section(report_dir / "README.md"))
    if not keep_reports:
        for p in paths:
            shutil.rmtree(p.parent)
    return paths


def hand_section(readme_path: Path) -> str:
    """The README's hand-written part (from HAND_HEADING on), kept across regenerations."""
    text = readme_path.read_text() if readme_path.is_file() else ""
    at = text.find(HAND_HEADING)
    return "\n" + text[at:] if at >= 0 else ""


def readme(
    paths: list[Path], report_dir: Path, guest_argv: list[str] = GUEST_ARGV, links: bool = True
) -> str:
    report_dir = report_dir.resolve()
    reports = [(str(p.parent.relative_to(report_dir)), load_report(p)) for p in paths]
    merged = merge(reports)
    accels = "/".join(
        sorted({str(r["environment"].get("vm", {}).get("accel")) for _, r in reports})
    )
    lines = [
        "# Reference reports: the cases under stock Debian kernels",
        "",
        f"Guest command: `mmapconf {' '.join(guest_argv)}`.",
        "Regenerate with `mmapconf kernels reference` (see its --help;",
        "`tox -e kernels` writes to reports/kernels/). Each kernel was booted under qemu"
        " (x86-64: microvm, PVH, host root over 9p; arm64: virt, the Image, an arm64 guest"
        " root over 9p with the project as a second share);",
        "the `disk` backing is a scratch block device formatted as shown, `tmpfs` is the"
        " guest's /dev/shm.",
        "Kernel versions are pinned in `runner/vm/kernels.lock`.",
        "",
        "| dir | kernel | arch | page | Debian package | fs | accel | outcomes | boot s | run s"
        " | wall s | kernel issues |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, rep in reports:
        env = rep["environment"]
        vm = env.get("vm", {})
        lines.append(
            f"| {f'[{label}]({label}/report.json)' if links else label} "
            f"| {env.get('kernel_release')} | {env.get('machine')} | {env.get('page_size')} "
            f"| {vm.get('debian_version')} | {vm.get('fs')} | {vm.get('accel')} "
            f"| {counts_text(rep)} | {vm.get('boot_s')} | {vm.get('run_s')} "
            f"| {vm.get('wall_s')} | {len(vm.get('kernel_issues', []))} |"
        )
    lines += [
        "",
        f"Timings are under {accels} and depend on host load"
        + (" (TCG: no usable KVM on the machine that made them):" if accels == "tcg" else ":"),
        "boot s = guest uptime when the command started; run s = the command's own time.",
        "",
        "## Cases whose outcome differs between kernels",
        "",
    ]
    ran = [d for d in merged["differences"] if _behaviour_change(d)]
    skipped = [d for d in merged["differences"] if not _behaviour_change(d)]
    lines += [
        "### Behaviour differences (kernels that ran the case disagree)",
        "",
        differences_markdown({"differences": ran}).rstrip(),
        "",
    ]
    reasons = _difference_reasons(reports, {"differences": ran})
    if reasons:
        lines += ["Why, per the reports:", ""] + reasons + [""]
    lines += [
        "### Skipped on some kernels only (a `requires` unmet: kernel version, syscall, sysctl)",
        "",
        differences_markdown({"differences": skipped}).rstrip(),
        "",
    ]
    reasons = _difference_reasons(reports, {"differences": skipped})
    if reasons:
        # One line per distinct reason: the table already says where.
        distinct = sorted({r.split(": skipped: ", 1)[-1] for r in reasons})
        lines += ["Reasons given:", ""] + [f"- {r}" for r in distinct] + [""]
    lines += ["The full table is in [matrix.md](matrix.md).", ""]
    return "\n".join(lines)


def _behaviour_change(d: dict[str, Any]) -> bool:
    return len({o for o in d["outcomes"].values() if o != "skipped"}) > 1


def _difference_reasons(reports: list[tuple[str, dict]], merged: dict[str, Any]) -> list[str]:
    out = []
    wanted = {(d["id"], d["backing"]) for d in merged["differences"]}
    for _, rep in reports:
        rel = rep["environment"].get("kernel_release")
        for r in rep.get("results", []):
            if (r.get("id"), r.get("backing")) in wanted and r.get("outcome") != "passed":
                reason = str(r.get("reason") or "").replace("\n", " ")[:200]
                out.append(f"- `{r['id']}[{r['backing']}]` on {rel}: {r['outcome']}: {reason}")
    return out


def write_matrix(paths: list[Path], out_dir: Path) -> None:
    """matrix.md / matrix.txt / kernels.json (merged runs and the cases that
    differ between kernels) in OUT_DIR; prints the text matrix."""
    out_dir = out_dir.resolve()
    reports = [(str(p.parent.relative_to(out_dir)), load_report(p)) for p in paths]
    m = mx.build_matrix(reports)
    text = mx.render_matrix_text(m)
    write_text(out_dir / "matrix.txt", text)
    merged = merge(reports)
    md = mx.render_matrix_markdown(m)
    md += "\n## Differences between kernels\n\n" + differences_markdown(merged)
    write_text(out_dir / "matrix.md", md)
    write_json(out_dir / "kernels.json", merged)
    print(text)
