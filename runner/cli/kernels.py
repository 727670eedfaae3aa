"""Command line of the vm subpackage.

`add_kernels_cli(subparsers)` adds `kernels fetch|list` to the main CLI.
`python -m runner.cli.kernels` is a stand-alone entry with the same `kernels`
subcommand plus `run` (the --kernel path, usable before or without the main
CLI's wiring) and `reference` (regenerate reports/reference/).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.errors import UsageError
from runner.vm import kernels
from runner.vm.qemu import MACHINES
from runner.vm.reference import write_matrix

DEFAULT_SERIES = ["6.1", "6.12", "6.18", "7.3"]
EXIT_SKIP = 0  # a host without qemu skips, it does not fail (see cmd_run)


def cmd_fetch(args: argparse.Namespace) -> int:
    series = args.series or sorted(kernels.read_lock(args.lock)) or DEFAULT_SERIES
    paths = [s for s in series if "/" in s or Path(s).exists()]
    if paths:
        print(
            f"mmapconf kernels fetch: {', '.join(paths)}: a path, not a Debian series; "
            "a kernel of your own needs no fetch: `mmapconf run --kernel PATH`",
            file=sys.stderr,
        )
        return 2
    try:
        trees = kernels.fetch(series, args.lock, update_lock=args.update_lock)
    except (LookupError, RuntimeError, OSError) as e:
        print(f"mmapconf kernels fetch: {e}", file=sys.stderr)
        return 1
    for t in trees:
        print(f"{t.series}\t{t.abi}\t{t.root}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    pins = kernels.read_lock(args.lock)
    trees = kernels.cached()
    print(f"cache: {kernels.cache_root()}")
    print(f"lock:  {args.lock}")
    by_abi = {t.abi: t for t in trees}
    rows = []
    for s, p in sorted(pins.items(), key=lambda kv: kernels._series_key(kv[0])):
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
        print(f"{r[0]:<6} {r[1]:<26} {r[2]:<22} {r[3]}")
    return 0


def add_kernels_cli(subparsers: Any) -> None:
    """Add `kernels` (with `fetch` and `list`) to SUBPARSERS (what
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
        help="download, extract and prepare kernels by series (6.1, 6.12, ...)",
        description="Downloads generic amd64 Debian kernel packages with a private apt state "
        "(never /etc/apt, never /boot). A series in the lock file gets its pinned version.",
    )
    f.add_argument(
        "series", nargs="*", help="e.g. 6.1 6.12 6.18 7.3 (default: the lock file's, or those)"
    )
    f.add_argument(
        "--update-lock",
        action="store_true",
        help="re-resolve each series to the newest kernel in the archive and re-pin it",
    )
    f.set_defaults(func=cmd_fetch)
    ls = sub.add_parser("list", help="show pinned and cached kernels")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


def add_vm_run_options(p: argparse.ArgumentParser) -> None:
    """The options that `run --kernel` needs (for the main CLI's `run` too)."""
    p.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="K",
        help="boot this kernel and run inside it: a cached series or ABI (6.1, 6.1.0-56-amd64), "
        "or a path: a bzImage, a vmlinux (with CONFIG_PVH) or a kernel build folder "
        "(repeatable: series and paths mix in one matrix)",
    )
    p.add_argument(
        "--modules",
        type=Path,
        metavar="DIR",
        help="with --kernel PATH: its modules, a lib/modules/RELEASE folder or a "
        "`make modules_install INSTALL_MOD_PATH=` root (default: none; everything the guest "
        "needs must then be built in)",
    )
    p.add_argument(
        "--machine",
        choices=MACHINES,
        default="microvm",
        help="qemu machine for --kernel: microvm (virtio-mmio, fastest) or q35 (virtio-pci)",
    )
    p.add_argument(
        "--fs",
        metavar="LIST",
        help="comma-separated filesystems for the disk backing (ext4, xfs, btrfs; FS:OPTIONS "
        "for mount options, e.g. xfs:-o,dax=never). With --kernel: the guest's disk (default "
        "ext4); without: loop-mounted images on this host, one disk backing each",
    )
    p.add_argument("--accel", choices=("auto", "tcg", "kvm"), default=None)
    p.add_argument(
        "--vm-timeout", type=float, default=900.0, help="seconds per guest (default %(default)s)"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from runner.vm.run import VMUnavailable, run_under_kernels

    guest_argv = ["run", *args.guest_args]
    fs = guest_filesystems(args.fs)
    kern = args.kernel or DEFAULT_SERIES
    try:
        paths = run_under_kernels(
            kern,
            guest_argv,
            args.report_dir,
            fs,
            args.accel,
            args.vm_timeout,
            args.modules,
            args.machine,
        )
    except VMUnavailable as e:
        # tox envs on a machine without qemu must skip, not fail.
        print(f"SKIPPED: cannot boot kernels here: {e}")
        return EXIT_SKIP
    except (LookupError, FileNotFoundError, UsageError) as e:
        print(f"mmapconf run --kernel: {e}", file=sys.stderr)
        return 2
    if len(paths) > 1:
        write_matrix(paths, args.report_dir)
    if len(paths) < len(kern) * len(fs):
        return 1
    failed = 0
    for p in paths:
        s = json.loads(p.read_text()).get("summary", {})
        failed += sum(int(s.get(k, 0) or 0) for k in ("failed", "error", "timeout"))
    return 1 if failed and args.strict else 0


def guest_filesystems(text: str | None) -> list[str]:
    """The guest disks' filesystems from --fs (default ext4)."""
    return [f for f in (text or "ext4").split(",") if f]


def cmd_reference(args: argparse.Namespace) -> int:
    from runner.vm.reference import regenerate
    from runner.vm.run import VMUnavailable

    fs = guest_filesystems(args.fs)
    try:
        guest = ["run", *(args.cases or ["cases/article"]), "--backing", args.backing]
        paths = regenerate(
            args.report_dir,
            args.kernel or None,
            fs,
            args.accel,
            args.vm_timeout,
            guest,
            keep_reports=not args.summary_only,
        )
    except VMUnavailable as e:
        print(f"SKIPPED: cannot boot kernels here: {e}")
        return EXIT_SKIP
    expected = len(args.kernel or kernels.read_lock()) * len(fs)
    print(f"{len(paths)} of {expected} reports in {args.report_dir}")
    return 0 if len(paths) == expected else 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m runner.cli.kernels`: kernels fetch|list, and run --kernel."""
    parser = argparse.ArgumentParser(prog="python -m runner.cli.kernels")
    sub = parser.add_subparsers(dest="command", required=True)
    add_kernels_cli(sub)
    r = sub.add_parser(
        "run",
        help="boot kernels and run `mmapconf run GUEST_ARGS` inside each",
        description="Example: python -m runner.cli.kernels run --kernel 6.1 --fs ext4 "
        "--report-dir reports/kernels -- cases/article --backing disk,tmpfs",
    )
    add_vm_run_options(r)
    r.add_argument("--report-dir", type=Path, default=Path("reports/kernels"))
    r.add_argument(
        "--strict", action="store_true", help="exit 1 when a case failed, errored or timed out"
    )
    r.add_argument("guest_args", nargs=argparse.REMAINDER, help="after --: `mmapconf run` args")
    r.set_defaults(func=cmd_run)
    ref = sub.add_parser(
        "reference",
        help="regenerate reports/reference/: article cases under the pinned kernels",
    )
    add_vm_run_options(ref)
    ref.add_argument("--report-dir", type=Path, default=Path("reports/reference"))
    ref.add_argument(
        "--cases", action="append", default=[], help="case paths (default: cases/article)"
    )
    ref.add_argument("--backing", default="disk,tmpfs", help="default: %(default)s")
    ref.add_argument(
        "--summary-only",
        action="store_true",
        help="keep only README.md, matrix.* and kernels.json (not the per-kernel reports)",
    )
    ref.set_defaults(func=cmd_reference)
    args = parser.parse_args(argv)
    if getattr(args, "guest_args", None) and args.guest_args[0] == "--":
        args.guest_args = args.guest_args[1:]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
