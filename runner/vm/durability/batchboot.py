"""The guest's side of a power cut's boots, run by the native executor's batch mode
(executor.c ``--batch``, runner/vm/batch.py): no Python in the guest. The host plans, compiles
and judges, as for every other case in a guest of its architecture (runner/vm/guestrun.py).

cut: the case's processes (not ``after_reboot``) in a folder of a fixed name on the logged disk,
which the init mounted, so that the judge boot finds its files. The batch syncs before the case
(what the mount wrote is on the disk), passes the case's output on to its stderr (a file of the
job folder, which the host watches) and, when it says "stored", first writes the marker that
places "stored" in the write log (marker.py's layout, written by executor.c). The process at
``power_cut`` never ends: the host cuts the power. A case that ends before it sends its result,
judged here like any other.

judge: one case per disk (each disk model or crash point, attached read-only to qemu's
snapshot): the batch mounts the disk, which replays its journal (xfs with ``nouuid``, every
unmounted btrfs device forgotten first: the disks are copies of one filesystem), and runs the
case's ``after_reboot`` steps in the folder the cut boot left, judged here with ``disk: MODEL``
among the facts; then unmounts it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

from runner.engine.backings import Backing
from runner.lang.conditions import Facts
from runner.lang.model import Case
from runner.session.runner import Item, Result, RunConfig
from runner.vm import batch, guestrun, qemu
from runner.vm.batch import BatchWriter, MarkerEntry, MountEntry, OutputReader

DISK_DIR = "/run/mmapconf/disk"  # where the guest's init mounts the logged disk (/dev/vda)
FOLDER = "mmapconf-power-cut"  # the case's folder on the disk, the same in both boots
CUT_TIMEOUT = 3600.0  # the host cuts the power long before
STORED = b"MMAPCONF-STORED"  # what the executor's power_cut says on the case's stderr
JOIN_S = 30.0  # the host's part of a boot, once qemu is gone: it reads what is left and ends
SILENT_POLL_S = 0.05  # how often a judge boot's wait looks whether its guest went silent


@dataclasses.dataclass(frozen=True)
class JudgedDisk(Backing):
    """A disk of the judge boot: the guest's DEVICE, holding disk model MODEL."""

    device: str = ""
    model: str = ""


class PowerCutRunner(guestrun.GuestRunner):
    """GuestRunner for a power cut's cases: the cut boot's in FOLDER on the logged disk, with
    MARKER; a judge boot's each on the disk of its backing (a JudgedDisk)."""

    def __init__(
        self,
        guest: guestrun.GuestFacts,
        job: Path,
        reader: OutputReader,
        alive: Callable[[], bool],
        marker: MarkerEntry | None = None,
        disk_dir: str = DISK_DIR,
    ):
        super().__init__(RunConfig(), guest, disk_dir, job, reader, alive)
        self.marker, self.disk_dir = marker, disk_dir

    def new_result(self, item: Item) -> tuple[Result, Facts]:
        result, facts = super().new_result(item)
        if isinstance(item.backing, JudgedDisk):
            facts.disk = result.facts["disk"] = item.backing.model
        return result, facts

    def place(self, index: int, case: Case, backing: Backing) -> tuple[str, MountEntry | None, str]:
        if isinstance(backing, JudgedDisk):
            point = f"{self.provision_dir}/judge-{index}"
            data = "nouuid" if backing.fs == "xfs" else ""  # the disks share one uuid
            fs, device = backing.fs or "", backing.device
            mount = MountEntry(fs, point, 0, data, device=device, within=FOLDER)
            return "", mount, f"{point}/{FOLDER}"
        folder = f"{self.disk_dir}/{FOLDER}"
        return folder, None, folder

    def _entry(self, index: int, case: Case, backing: Backing) -> batch.CaseEntry:
        entry = super()._entry(index, case, backing)
        entry.marker = self.marker
        return entry


def cut_case(case: Case) -> Case:
    """The cut boot's part of CASE: its processes, up to the power cut."""
    return dataclasses.replace(case, timeout=CUT_TIMEOUT, after_reboot=[])


def judge_case(case: Case) -> Case:
    """The judge boot's part of CASE: its ``after_reboot`` steps, as a process of their own."""
    return dataclasses.replace(
        case, setup=[], processes={"after_reboot": case.after_reboot}, after_reboot=[],
        provision=None,
    )  # fmt: skip


class Driver:
    """The host's part of one boot, in a thread of its own while the caller watches the guest
    (the cut boot: the host polls the guest's stderr and the write log, and cuts the power): the
    facts, then the items made from them compiled, sent to the batch and judged. DISK_DIR and
    WALLS: where the cut boot's folder is, and whether the batch makes the case cgroups (a
    guest's; a batch on this host, in a test, makes none)."""

    def __init__(
        self,
        job: Path,
        items: Callable[[guestrun.GuestFacts], list[Item]],
        marker: MarkerEntry | None = None,
        disk_dir: str = DISK_DIR,
        walls: bool = True,
    ):
        self.job, self.items, self.marker = job, items, marker
        self.disk_dir, self.walls = disk_dir, walls
        self.results: list[Result] = []
        self.thread: threading.Thread | None = None
        # set when the guest never told its facts (FACTS_WAIT_S): a boot that hung early, which
        # the caller ends at once rather than at its timeout, and boots again
        self.silent = threading.Event()
        # made before qemu starts: the guest's batch opens both as it begins
        self.writer = BatchWriter(job / batch.IN_NAME)
        self.reader = OutputReader(job / batch.OUT_NAME)

    def start(self, alive: Callable[[], bool]) -> None:
        """Drive the batch that runs while ALIVE() says so."""
        self.thread = threading.Thread(
            target=self._run, args=(alive,), name="mmapconf-power-cut-boot", daemon=True
        )
        self.thread.start()

    def join(self) -> list[Result]:
        """Once qemu is gone: what the boot brought back (no result of a case whose power was
        cut; nothing when the guest never told its facts)."""
        if self.thread is None:
            self._close()
        else:
            self.thread.join(JOIN_S)
        return self.results

    def _run(self, alive: Callable[[], bool]) -> None:
        try:
            facts = guestrun.handshake(
                self.writer, self.reader, alive, [], [self.disk_dir], walls=self.walls
            )
            if facts is None:
                self.silent.set()
                return
            runner = PowerCutRunner(facts, self.job, self.reader, alive, self.marker, self.disk_dir)
            todo = self.items(facts)
            runner.gone = guestrun.plannable(facts.page_size)
            try:
                runner.submit([] if runner.gone else todo, self.writer)
            finally:
                self.writer.end()
            self.results = [runner.run_item(item) for item in todo]
            runner.close()
        finally:
            self._close()

    def _close(self) -> None:
        self.writer.close()
        self.reader.close()


def wait_for_guest(guest: qemu.Guest, driver: Driver, timeout: float) -> qemu.BootResult:
    """GUEST's end within TIMEOUT, or its kill as soon as DRIVER has given up on its facts."""
    end = guest.t0 + timeout  # as guest.wait counts it: from qemu's start
    while guest.alive() and time.monotonic() < end and not driver.silent.wait(SILENT_POLL_S):
        pass
    if driver.silent.is_set():
        guest.kill()
    return guest.wait(timeout)
