"""The guest's side of a power-cut case: ``python -m runner.vm.durability.guest cut|judge SPEC``.

cut: run the case's processes on the scratch disk (mounted by the guest's init) in a folder of a
fixed name, so the boot after the cut finds its files; the process that reaches ``power_cut``
says "stored" and waits for the host to kill the guest. The case's output is passed on to our
stderr (which the host watches), its "stored" only once the marker that places it in the write
log is on the disk (marker.py). A case that ends before that (a step failed) writes its result,
which the host reports.

judge: each disk of the spec (one per disk model or crash point, attached read-only to qemu's
snapshot) is mounted in turn, which replays its journal, and the case's ``after_reboot`` steps
run there as an ordinary case, judged with ``disk: MODEL`` among the facts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from runner.engine.backings import Backing
from runner.engine.native import server
from runner.lang.loader import load_suite
from runner.lang.model import Case
from runner.session.runner import Item, Result, RunConfig, Runner

from . import marker

DISK_DIR = "/run/mmapconf/disk"  # where the guest's init mounts /dev/vda (runner/vm/run.py)
JUDGE_DIR = "/run/mmapconf/judge"
FOLDER = "mmapconf-power-cut"  # the case's scratch folder on the disk, the same in both boots
CUT_RESULT = "cut-result.json"
JUDGE_RESULTS = "judge-results.json"
CUT_TIMEOUT = 3600.0  # the host cuts the power long before
STORED = b"MMAPCONF-STORED"  # what the executor's power_cut says on the case's stderr


@dataclasses.dataclass(frozen=True)
class _Folder(Backing):
    """A disk backing whose scratch folder has a fixed path (made in the cut boot, found in the
    judge boot)."""

    folder: str = ""
    make: bool = False

    def scratch(self) -> str | None:
        if self.make:
            os.mkdir(self.folder, 0o700)
        return self.folder


def load_case(spec: dict[str, Any]) -> Case:
    """The case from the text the host sent (the guest may not see the host's file: its /tmp
    is a tmpfs of its own), named by the host's file name."""
    folder = Path(tempfile.mkdtemp(prefix="mmapconf-case."))
    path = folder / Path(spec["file"]).name
    path.write_text(spec["source"])
    for case in load_suite([str(path)]).cases:
        if case.id == spec["id"]:
            return dataclasses.replace(case, file=spec["file"])
    raise SystemExit(f"mmapconf: no valid case {spec['id']} in {spec['file']}")


def cut(spec: dict[str, Any], job: Path) -> None:
    case = dataclasses.replace(load_case(spec), timeout=CUT_TIMEOUT, after_reboot=[])
    os.sync()  # what the mount wrote is on the disk before the case begins
    runner = Runner(RunConfig())
    server.relay_output(_Relay(spec["marker"]))  # the case's output is captured: pass it on
    backing = _Folder(
        "disk", "disk", DISK_DIR, spec["fs"], folder=f"{DISK_DIR}/{FOLDER}", make=True
    )
    result = runner.run_item(Item(f"{case.id}[disk]", backing, case=case))
    runner.close()
    (job / CUT_RESULT).write_text(json.dumps(result.to_json()))


class _Relay:
    """The case's output to our stderr, the marker written to the disk before "stored" passes
    (the text may come split over two reads: the tail of the last is kept)."""

    def __init__(self, mark: dict[str, Any], out: int = 2) -> None:
        self.mark, self.out, self.tail, self.marked = mark, out, b"", False

    def __call__(self, data: bytes) -> None:
        seen, self.tail = self.tail + data, (self.tail + data)[-len(STORED) :]
        if STORED in seen and not self.marked:
            self.marked = True
            try:
                marker.write(self.mark["device"], self.mark["offset"], self.mark["nonce"])
            except OSError as e:  # no "stored" then: the host reports the guest's stderr
                os.write(self.out, f"\nmmapconf: the marker write failed: {e}\n".encode())
                os._exit(3)
        os.write(self.out, data)


def judge(spec: dict[str, Any], job: Path) -> None:
    subprocess.run(["umount", DISK_DIR], check=False)  # init mounted /dev/vda: judged below
    os.makedirs(JUDGE_DIR, exist_ok=True)
    results = []
    for index, e in enumerate(spec["entries"]):
        results.append(_judge_disk(spec, job, index, e))
    (job / JUDGE_RESULTS).write_text(json.dumps(results))


def _judge_disk(spec: dict[str, Any], job: Path, index: int, e: dict[str, Any]) -> Any:
    """Mount one disk and judge it in a harness of its own: the confinement's read-only view is
    made once per harness, from the mounts it finds, so a disk mounted after it is not in it."""
    fs = spec["fs"]
    if fs == "btrfs":  # every disk has the same fsid: forget the one judged before
        subprocess.run(["btrfs", "device", "scan", "--forget"], check=False, capture_output=True)
    options = ["-o", "nouuid"] if fs == "xfs" else []
    mount = subprocess.run(
        ["mount", "-t", fs, *options, e["disk"], JUDGE_DIR], capture_output=True, text=True
    )
    if mount.returncode != 0:
        why = mount.stderr.strip() or f"mount exit status {mount.returncode}"
        name = f"{e['id']}[disk/{e['model']}]"
        return Result(name, e["id"], f"disk/{e['model']}", e["file"], 0, "error", why).to_json()
    try:
        out = job / f"judged-{index}.json"
        argv = [
            sys.executable,
            "-m",
            "runner.vm.durability.guest",
            "judge-one",
            str(out),
            str(index),
        ]
        subprocess.run([*argv, str(job / "spec.json")], check=True)
        return json.loads(out.read_text())
    finally:
        subprocess.run(["umount", JUDGE_DIR], check=False)


def judge_one(spec: dict[str, Any], out: Path, index: int) -> None:
    """The after_reboot steps of entry INDEX on the disk mounted at JUDGE_DIR."""
    e = spec["entries"][index]
    case = load_case(e)
    after = dataclasses.replace(
        case, setup=[], processes={"after_reboot": case.after_reboot}, after_reboot=[],
        provision=None,
    )  # fmt: skip
    runner = Runner(RunConfig())
    runner.facts = runner.facts.for_disk(e["model"])
    name = f"{case.id}[disk/{e['model']}]"
    backing = _Folder(
        f"disk/{e['model']}", "disk", JUDGE_DIR, spec["fs"], folder=f"{JUDGE_DIR}/{FOLDER}"
    )
    result = runner.run_item(Item(name, backing, case=after))
    runner.close()
    result.facts["disk"] = e["model"]
    out.write_text(json.dumps(result.to_json()))


def main(argv: list[str]) -> int:
    if argv[0] == "judge-one":
        _, out, index, spec_path = argv
        judge_one(json.loads(Path(spec_path).read_text()), Path(out), int(index))
        return 0
    phase, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    job = Path(spec_path).parent
    {"cut": cut, "judge": judge}[phase](spec, job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
