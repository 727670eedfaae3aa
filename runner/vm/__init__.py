"""Run the cases under other Linux kernels: stock Debian kernels booted with
qemu (microvm, PVH entry, TCG unless a KVM probe boot works), the host root
shared read-only over 9p, a scratch block device formatted with the
filesystem under test for the `disk` backing.

Entry points for the main CLI (runner/cli.py):

    from runner.vm import add_kernels_cli, add_vm_run_options, run_under_kernels, VMUnavailable

    add_kernels_cli(subparsers) -> None
        Adds `kernels fetch [SERIES...] [--update-lock]` and `kernels list
        [--json]` (global option `kernels --lock PATH`); each sets
        func(args) -> int.

    add_vm_run_options(run_parser) -> None   (optional helper)
        Adds --kernel K (append), --fs LIST (default "ext4"),
        --accel {auto,tcg,kvm}, --vm-timeout SECONDS (default 900).

    run_under_kernels(kernels: list[str], guest_argv: list[str], report_dir: Path,
                      fs: list[str], accel: str | None, timeout: float) -> list[Path]
        kernels: series ("6.1"), ABI ("6.1.0-56-amd64") or tree paths; a
          series pinned in the lock file but not cached is fetched first.
        guest_argv: the `mmapconf` arguments for the guest, starting with
          "run" (e.g. ["run", "cases/article", "--backing", "disk,tmpfs"]);
          --dir/--report-dir/--kernel/--fs/--accel are stripped and set per
          guest (--dir = the mounted scratch disk, --report-dir = job dir).
        fs: filesystems for the disk backing ("ext4", "xfs", "btrfs").
        accel: "tcg", "kvm", or None/"auto" (KVM only if a probe boot works).
        timeout: seconds per boot; a hung guest is killed then.
        Writes report_dir/<series>/report.json (report_dir/<series>-<fs>/
        when several fs) with console.log, dmesg.txt, stdout.txt,
        stderr.txt beside it, and environment.vm added to the report.
        Returns the reports that came back; a kernel x fs that failed twice
        (infrastructure error) is printed and left out.  Raises
        VMUnavailable (message says what is missing) when this host cannot
        boot guests: treat as a skip.  Raises LookupError for an unknown
        kernel.

    runner.vm.cli.write_matrix(paths, out_dir) writes matrix.txt/.md and
    kernels.json (the cases whose outcome differs between kernels).

Stand-alone: `python -m runner.vm kernels fetch|list`, `python -m runner.vm
run --kernel 6.1 --fs ext4 --report-dir DIR -- cases/article --backing
disk,tmpfs`.  System packages: scripts/install-vm-deps.sh.
"""

from .cli import add_kernels_cli, add_vm_run_options
from .run import VMUnavailable, run_under_kernels

__all__ = ["VMUnavailable", "add_kernels_cli", "add_vm_run_options", "run_under_kernels"]
