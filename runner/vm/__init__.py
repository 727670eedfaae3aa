"""Run the cases under other Linux kernels: stock Debian kernels booted with qemu (microvm, PVH
entry, TCG unless a KVM probe boot works), the host root shared read-only over 9p, a scratch block
device formatted with the filesystem under test for the `disk` backing.

`run.run_under_kernels` boots and runs; `kernels` fetches and pins; `reference` regenerates the
committed reference reports. The command line is `mmapconf run --kernel` and `mmapconf kernels`
(runner.cli.kernels). System packages: scripts/install-vm-deps.sh.
"""
