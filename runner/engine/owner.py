"""Names for what a process leaves on the host (cgroup and scratch folders): ``pid.starttime``.

A pid alone is reused; with the process's start time (field 22 of /proc/PID/stat) the name is
unique for the machine's uptime, so a later run can tell a dead owner's leftovers from a live one's.
"""

from __future__ import annotations

import re

OWNER_RE = re.compile(r"^(\d+)\.(\d+)$")


def owner_tag(pid: int = 0) -> str:
    """This process's tag (or ``pid``'s); empty when that process does not exist."""
    try:
        with open(f"/proc/{pid or 'self'}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    pid = pid or int(stat.split(b" ", 1)[0])
    return f"{pid}.{int(stat.rsplit(b')', 1)[1].split()[19])}"


def owner_alive(tag: str) -> bool:
    """False only for a well-formed tag whose process is gone, is another process now, or is a
    zombie (dead: where init does not reap, it may stay one for good)."""
    m = OWNER_RE.match(tag)
    if m is None:
        return True
    try:
        with open(f"/proc/{m.group(1)}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in (b"Z", b"X") and f"{m.group(1)}.{int(fields[19])}" == tag
