"""The environment a report was made in: kernel, machine, libc, backings."""

from __future__ import annotations

import datetime
import os
import platform
import resource
from typing import Any

from runner.engine import confine
from runner.engine.backings import Backing


def capture(
    backings: list[Backing], argv: list[str], confinement: dict[str, str] | None = None
) -> dict[str, Any]:
    """CONFINEMENT: what confines the cases, when not this process's (a qemu guest's run)."""
    uname = os.uname()
    libc_name, libc_version = platform.libc_ver()
    return {
        "kernel_release": uname.release,
        "kernel_version": uname.version,
        "machine": uname.machine,
        "page_size": resource.getpagesize(),
        "python": platform.python_version(),
        "libc": f"{libc_name} {libc_version}".strip(),
        "uid": os.geteuid(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": argv,
        "backings": {b.name: b.to_json() for b in backings},
        "confinement": {
            **(confine.current().status() if confinement is None else confinement),
            **disk_caps(backings),
        },
    }


def disk_caps(backings: list[Backing]) -> dict[str, str]:
    """What bounds what one case writes on each disk backing (none, and why, said as well)."""
    caps = [f"{b.name}: {b.cap}" for b in backings if b.kind == "disk" and b.cap]
    return {"disk_cap": "; ".join(caps)} if caps else {}
