"""``mmapconf kernels fetch|list|reference`` and ``mmapconf run --kernel`` (``run_kernels``)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from runner.engine import interrupt
from runner.errors import EXIT_FAILED, EXIT_OK, MmapconfError, UsageError
from runner.lang.loader import Suite
from runner.lang.powercut import is_power_cut
from runner.report.model import counts_text, gate_exit_code, gate_failures, load_report
from runner.session.filesystems import parse_fs_list
from runner.session.options import OPTIONS
from runner.vm import kernels
from runner.vm.arch import parse_spec, unknown_spec_message
from runner.vm.durability.cut import Options

DEFAULT_SERIES = ["6.1", "6.12", "6.18", "7.3"]


def cmd_fetch(args: argparse.Namespace) -> int:
    """`kernels fetch` and `kernels build` (which takes only the flavours that are built)."""
    specs = args.series or sorted(kernels.read_lock(args.lock)) or DEFAULT_SERIES
    paths = [s for s in specs if "/" in s or Path(s).exists()]
    if paths:
        raise UsageError(
            f"{', '.join(paths)}: a path, not a Debian series; "
            "a kernel of your own needs no fetch: `mmapconf run --kernel PATH`"
        )
    problem = _spec_problem(specs, args.kernels_command == "build")
    if problem:
        raise UsageError(problem)
    try:
        trees = kernels.fetch(specs, args.lock, update_lock=args.update_lock)
    except (LookupError, RuntimeError, OSError) as e:
        raise MmapconfError(str(e)) from e
    for t in trees:
        print(f"{t.label}\t{t.abi}\t{t.root}")
    return 0


def _spec_problem(specs: list[str], build: bool) -> str:
    for s in specs:
        parsed = parse_spec(s)
        if parsed is None:
            return unknown_spec_message(s)
        if build and not parsed[0].built:
            return f"{s} is a Debian kernel: `mmapconf kernels fetch {s}`"
    return ""


def cmd_list(args: argparse.Namespace) -> int:
    pins = kernels.read_lock(args.lock)
    trees = kernels.cached()
    print(f"cache: {kernels.cache_root()}")
    print(f"lock:  {args.lock}")
    by_abi = {t.abi: t for t in trees}
    rows = []
    for s, p in sorted(pins.items(), key=lambda kv: kernels._spec_order(kv[0])):
        t = by_abi.pop(p.abi, None)
        rows.append((s, p.abi, p.version, "cached" if t else "not fetched"))
    for t in by_abi.values():
        rows.append((t.series or "-", t.abi, t.version, "cached (not in lock)"))
    if args.json:
        keys = ("series", "abi", "version", "state")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return 0
    if not rows:
        print("no kernels pinned or cached; `mmapconf kernels fetch 6.1 6.12 6.18 7.3`")
    for r in rows:
        print(f"{r[0]:<15} {r[1]:<26} {r[2]:<22} {r[3]}")
    return 0


def add_kernels_cli(subparsers: Any) -> None:
    """Add `kernels` (with `fetch`, `list` and `reference`) to SUBPARSERS (what
    ArgumentParser.add_subparsers() returns); each sets func(args) -> int."""
    p = subparsers.add_parser(
        "kernels",
        help="fetch and list the Debian kernels that `run --kernel` boots",
        description="Kernels are kept in $XDG_CACHE_HOME/mmapconf/kernels "
        "(or $MMAPCONF_KERNEL_CACHE); a lock file pins exact package versions.",
    )
    p.add_argument(
        "--lock", type=Path, default=kernels.DEFAULT_LOCK, help="lock file (default: %(default)s)"
    )
    sub = p.add_subparsers(dest="kernels_command", required=True)
    f = sub.add_parser(
        "fetch",
        help="download, extract (or build) and prepare kernels by spec (6.1, arm64-16k:6.12)",
        description="Downloads generic Debian kernel packages (amd64, arm64, arm64-16k) with a "
        "private apt state per architecture, and the guest root of an architecture not the "
        "host's (never /etc/apt, never /boot); builds arm64-64k. A spec in the lock file gets "
        "its pinned version.",
    )
    f.add_argument(
        "series",
        nargs="*",
        metavar="SPEC",
        help="SERIES (amd64) or FLAVOUR:SERIES, e.g. 6.1 7.3 arm64:6.12 arm64-16k:6.12 "
        "arm64-64k:6.1 (default: the lock file's, or 6.1 6.12 6.18 7.3)",
    )
    f.add_argument(
        "--update-lock",
        action="store_true",
        help="re-resolve each series to the newest kernel in the archive and re-pin it",
    )
    f.set_defaults(func=cmd_fetch)
    b = sub.add_parser(
        "build",
        help="build a kernel no distribution ships (arm64-64k:6.1), cached like a fetched one",
        description="Cross-builds Debian's linux-source-SERIES (pinned in the lock file) with "
        "the config fragment shipped in runner/vm/configs/ on top of allnoconfig; about 10 "
        "CPU-minutes, once (the build tree is kept in the kernel cache).",
    )
    b.add_argument("series", nargs="+", metavar="SPEC", help="e.g. arm64-64k:6.1")
    b.add_argument("--update-lock", action="store_true", help="re-pin to the newest source")
    b.set_defaults(func=cmd_fetch)
    ls = sub.add_parser("list", help="show pinned and cached kernels")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    _add_reference(sub)


def run_kernels(args: argparse.Namespace, suite: Suite | None = None) -> int:
    """``mmapconf run --kernel K``: the same run inside each kernel x filesystem, each guest's
    report gated as ``mmapconf run`` gates its own; then one summary and a matrix. The power-cut
    cases of SUITE run from here, each alone in its boots (runner/vm/durability)."""
    # imported here, not at the top: `mmapconf run` without --kernel never needs them
    from runner.vm.reference import write_matrix
    from runner.vm.run import run_under_kernels

    fs = guest_filesystems(args.fs)
    cuts = [c for c in suite.cases if is_power_cut(c)] if suite else []
    ordinary = suite is None or bool(suite.invalid) or len(cuts) < len(suite.cases)
    report_dir = Path(args.report_dir)
    # SIGTERM too unwinds through qemu.boot, which kills the guest (its own session, so it
    # would outlive us otherwise) and removes its disk image.
    previous = interrupt.install()
    try:
        paths = run_under_kernels(
            args.kernel,
            args.argv,
            report_dir,
            fs,
            args.accel,
            args.vm_timeout,
            args.modules,
            args.machine,
            args.guest_runner,
            power_cuts=cuts,
            ordinary=ordinary,
            cut_options=cut_options(args),
        )
    except (LookupError, FileNotFoundError) as e:
        raise UsageError(str(e)) from None
    except KeyboardInterrupt as e:
        print("mmapconf: interrupted; the guest was stopped", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
    finally:
        interrupt.restore(previous)
    if len(paths) > 1:
        write_matrix(paths, report_dir)
    status = EXIT_OK
    for path in paths:
        report = load_report(path)
        failed = ": gate failed" if gate_failures(report) else ""
        print(f"{path.parent.name}: {counts_text(report)}{failed}")
        status = max(status, gate_exit_code(report))
    missing = len(args.kernel) * len(fs) - len(paths)
    if missing:
        print(f"{missing} kernel x filesystem run(s) came back without a report", file=sys.stderr)
    return EXIT_FAILED if missing else status


def cut_options(args: argparse.Namespace) -> Options:
    """The power cut's disk models, qemu cache mode and judge boots, from --cut-model,
    --disk-cache and --judge-boots."""
    default = Options()
    models = tuple(m for m in default.models if m in (args.cut_model or default.models))
    return Options(models, args.disk_cache or default.cache, args.judge_boots or 1)


def guest_filesystems(text: str | None) -> list[str]:
    """The guest disks' filesystems from --fs (default ext4)."""
    specs = parse_fs_list(text or "ext4")
    if any(s.options for s in specs):
        raise UsageError("--fs FS:OPTIONS is for this host's filesystems; with --kernel give names")
    return [s.fstype for s in specs]


def cmd_reference(args: argparse.Namespace) -> int:
    from runner.vm.reference import regenerate  # as in run_kernels

    fs = guest_filesystems(args.fs)
    guest = ["run", *(args.cases or ["cases/article"]), "--backing", args.backing]
    guest += ["--baseline", str(args.baseline)] if args.baseline else []
    paths = regenerate(
        args.report_dir,
        args.kernel or None,
        fs,
        args.accel,
        args.vm_timeout,
        guest,
        keep_reports=not args.summary_only,
        add=args.add,
    )
    expected = len(args.kernel or kernels.read_lock()) * len(fs)
    print(f"{len(paths)} of {expected} reports in {args.report_dir}")
    return EXIT_OK if len(paths) == expected else EXIT_FAILED


def _add_reference(sub: Any) -> None:
    ref = sub.add_parser(
        "reference",
        help="regenerate reports/reference/: article cases under the pinned kernels",
        description="Boot every pinned kernel (or each --kernel), run the article cases in "
        "it, and write per-kernel reports, matrix.md/.txt, kernels.json and README.md.",
    )
    for o in OPTIONS:
        if o.name in ("kernel", "fs", "accel", "vm-timeout"):
            ref.add_argument(*o.flags, **o.kwargs)
    ref.add_argument("--report-dir", type=Path, default=Path("reports/reference"))
    ref.add_argument(
        "--cases", action="append", default=[], help="case paths (default: cases/article)"
    )
    ref.add_argument("--backing", default="disk,tmpfs", help="default: %(default)s")
    ref.add_argument(
        "--baseline",
        type=Path,
        help="gate each guest's run with this baseline (known deviations show as known)",
    )
    ref.add_argument(
        "--summary-only",
        action="store_true",
        help="keep only README.md, matrix.* and kernels.json (not the per-kernel reports)",
    )
    ref.add_argument(
        "--add",
        action="store_true",
        help="keep the other kernels' reports in --report-dir: the matrix and README cover "
        "them and this run's (redo one kernel's column, or run the kernels one at a time)",
    )
    ref.set_defaults(func=cmd_reference)
