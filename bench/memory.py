"""Resident memory of this process, from /proc/self/status (VmHWM is the peak)."""

from __future__ import annotations


def rss_kib() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out
