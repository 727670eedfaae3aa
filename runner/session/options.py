"""The options of a run, specified once: ``mmapconf run`` (and ``run --kernel``), ``mmapconf
explain`` and the pytest plugin add them from here (Tavern's ``add_parser_options`` pattern:
one list of specs, handed to argparse's ``add_argument`` or to pytest's ``addoption``).

A new option of a run goes here, and every front end that takes it has it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import MmapconfError
from runner.lang.ops import BACKINGS, DISK_CACHES, DISK_MODELS
from runner.report.formats import parse_formats

DEFAULT_REPORT_DIR = "reports/latest"
RUN, EXPLAIN, PYTEST = "run", "explain", "pytest"
MACHINES = ("microvm", "q35", "virt")  # the qemu machines of run --kernel (virt: arm64's)


def _list_of(what: str, choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    """A parser of a comma-separated list of CHOICES."""

    def parse(text: str) -> list[str]:
        items = [k.strip() for k in text.split(",") if k.strip()]
        bad = [k for k in items if k not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(choices)}"
            )
        return items

    return parse


def _formats(text: str) -> list[str]:
    try:
        return parse_formats(text)
    except MmapconfError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"takes a number of {what}, 1 or more: {text!r}")
        return value

    return parse


@dataclass(frozen=True)
class OptionSpec:
    flags: tuple[str, ...]
    commands: frozenset[str]
    kwargs: dict[str, Any] = field(default_factory=dict)
    # the host's own option under ``run --kernel``: not passed on to the guest's run
    host_only: bool = False
    # what differs in the pytest plugin (a default, the help)
    pytest_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The long name without dashes (``report-dir``)."""
        return next((f for f in self.flags if f.startswith("--")), self.flags[0]).lstrip("-")


def _spec(
    *flags: str,
    on: tuple[str, ...],
    host_only: bool = False,
    pytest: dict[str, Any] | None = None,
    **kwargs: Any,
) -> OptionSpec:
    return OptionSpec(flags, frozenset(on), kwargs, host_only, pytest or {})


OPTIONS: tuple[OptionSpec, ...] = (
    _spec(
        "--backing",
        on=(RUN, EXPLAIN, PYTEST),
        type=_list_of("backing", BACKINGS),
        metavar="LIST",
        help=f"comma-separated backings to run on ({', '.join(BACKINGS)}); "
        "default: disk, tmpfs and memfd for file cases, anon for the rest",
    ),
    _spec(
        "--dir",
        on=(RUN, EXPLAIN, PYTEST),
        host_only=True,
        action="append",
        default=[],
        metavar="DIR",
        help="folder on the filesystem under test for the disk backing (repeatable; "
        "default: the temp folder)",
    ),
    _spec(
        "-n",
        on=(RUN,),
        dest="jobs",
        type=_positive("jobs"),
        default=1,
        metavar="N",
        help="run N cases at once (default 1)",
    ),
    _spec(
        "--report-dir",
        on=(RUN, PYTEST),
        host_only=True,
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where report.json goes (default {DEFAULT_REPORT_DIR}, relative to the folder "
        "the run was started in)",
        # the plugin runs inside other projects' sessions: no report unless asked for
        pytest={
            "default": None,
            "help": "write the merged report.json into DIR (relative to the folder pytest was "
            f"started in; e.g. {DEFAULT_REPORT_DIR}); default: the mmapconf_report_dir ini "
            "value, else none",
        },
    ),
    _spec(
        "--repeat",
        on=(RUN,),
        type=_positive("runs"),
        default=1,
        metavar="N",
        help="run each case N times; one whose outcome differs between runs is reported as "
        "flaky, with the outcomes seen",
    ),
    _spec(
        "--format",
        on=(RUN,),
        type=_formats,
        default=["json"],
        metavar="LIST",
        help="report formats beside report.json: json, junit, html, md, ktap, ltp (kirk's "
        "JSON), or all",
    ),
    _spec(
        "--baseline",
        on=(RUN, PYTEST),
        type=Path,
        default=None,
        metavar="FILE",
        help="known deviations: a failure an entry covers counts as known (pytest: a known "
        "deviation); default, when the shipped catalogue runs: its shipped baselines/linux.yaml",
        pytest={"help": "known deviations, as for mmapconf run --baseline"},
    ),
    _spec(
        "--no-baseline",
        on=(RUN,),
        action="store_true",
        help="no baseline, not even the shipped one",
    ),
    _spec(
        "--strict",
        on=(RUN, PYTEST),
        action="store_true",
        help="with --baseline: a known deviation that passes fails the gate",
    ),
    _spec(
        "--full-traces",
        on=(RUN, PYTEST),
        action="store_true",
        help="keep every step of a passed result in the report (default: its first and last "
        "steps; what did not pass always keeps its whole trace)",
    ),
    _spec("-v", "--verbose", on=(RUN,), action="store_true", help="a line per result"),
    _spec(
        "--kernel",
        on=(RUN,),
        host_only=True,
        action="append",
        default=[],
        metavar="K",
        help="boot this kernel and run inside it: a spec (6.1, arm64:6.12, arm64-16k:6.12, "
        "arm64-64k:6.1) or ABI (6.1.0-56-amd64) of the cache or the lock file, or a path: a "
        "bzImage, a vmlinux (with CONFIG_PVH), an arm64 Image or a kernel build folder "
        "(repeatable: kernels of several architectures and paths mix in one matrix)",
    ),
    _spec(
        "--modules",
        on=(RUN,),
        host_only=True,
        type=Path,
        metavar="DIR",
        help="with --kernel PATH: its modules, a lib/modules/RELEASE folder or a "
        "`make modules_install INSTALL_MOD_PATH=` root (default: none; everything the guest "
        "needs must then be built in)",
    ),
    _spec(
        "--machine",
        on=(RUN,),
        host_only=True,
        choices=MACHINES,
        default=None,
        help="qemu machine for --kernel: on x86-64 microvm (virtio-mmio, fastest; the default) "
        "or q35 (virtio-pci); arm64 kernels boot on virt",
    ),
    _spec(
        "--fs",
        on=(RUN,),
        host_only=True,
        metavar="LIST",
        help="comma-separated filesystems for the disk backing (ext4, xfs, btrfs; FS:OPTIONS "
        "for mount options, e.g. xfs:-o,dax=never). With --kernel: the guest's disk (default "
        "ext4); without: loop-mounted images on this host, one disk backing each",
    ),
    _spec(
        "--accel",
        on=(RUN,),
        host_only=True,
        choices=("auto", "tcg", "kvm"),
        default=None,
        help="with --kernel, qemu's accelerator: kvm (hardware, fast; needs a usable /dev/kvm), "
        "tcg (software emulation, several times slower, works anywhere), auto (default: kvm "
        "when a test boot with it works, else tcg)",
    ),
    _spec(
        "--guest-runner",
        on=(RUN,),
        host_only=True,
        choices=("native", "python"),
        default="native",
        help="with --kernel, what runs in a guest of this host's architecture: native (the "
        "default: the native executor alone, the cases planned and judged here) or python (the "
        "whole harness, which drives the native executor there; a guest of another architecture "
        "always runs it); a power cut's boots always run native",
    ),
    _spec(
        "--cut-model",
        on=(RUN,),
        host_only=True,
        type=_list_of("disk model", DISK_MODELS),
        default=None,
        metavar="LIST",
        help="with --kernel, the disk models a power-cut case is judged in (docs/durability.md): "
        "submitted (everything the guest's disk completed: a disk without a volatile write "
        "cache), flushed (only what a flush made durable: the cut empties the disk's cache); "
        f"default {','.join(DISK_MODELS)}",
    ),
    _spec(
        "--disk-cache",
        on=(RUN,),
        host_only=True,
        choices=DISK_CACHES,
        default=None,
        help="with --kernel, qemu's cache mode for a power-cut case's logged disk (default "
        "writeback; writethrough and directsync flush every write, so both models agree; "
        "unsafe is refused: it drops the guest's flushes)",
    ),
    _spec(
        "--judge-boots",
        on=(RUN,),
        host_only=True,
        type=_positive("judge boots"),
        default=None,
        metavar="N",
        help="with --kernel, judge each power-cut case's disks (its models and crash points) in "
        "N boots (default 1): a disk replayed from the write log must give the same result "
        "every time, and a result judged otherwise in any of them is an error",
    ),
    _spec(
        "--vm-timeout",
        on=(RUN,),
        host_only=True,
        type=float,
        default=900.0,
        help="with --kernel: seconds per guest (default %(default)s)",
    ),
)


PATHS_HELP = (
    "case files or folders (default: ./cases, or the catalogue shipped with mmapconf when there "
    "is none)"
)


def add_selection(p: argparse.ArgumentParser) -> None:
    """Which cases: the paths, and ``-k``."""
    p.add_argument("paths", nargs="*", metavar="PATH", help=PATHS_HELP)
    p.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        help="only cases whose id, title or tags match (pytest-style: 'sigbus and not eof')",
    )


def options_for(command: str) -> Iterator[OptionSpec]:
    return (o for o in OPTIONS if command in o.commands)


def add_parser_options(add: Callable[..., Any], command: str) -> None:
    """Add the options of ``command`` through ``add`` (``ArgumentParser.add_argument``)."""
    for o in options_for(command):
        add(*o.flags, **o.kwargs)


def host_only_flags() -> tuple[str, ...]:
    return tuple(f for o in OPTIONS if o.host_only for f in o.flags)
