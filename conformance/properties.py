"""Per-item JUnit properties, carried in ``report.user_properties``: pytest copies those into
every report, and xdist sends reports (unlike ``item.stash``) from the workers to the controller
that writes ``--junitxml``."""

from __future__ import annotations

import os
from typing import Any

from runner.engine.backings import Backing


def junit_properties(result: dict[str, Any], backing: Backing | None) -> list[tuple[str, str]]:
    props = [
        ("kernel_release", os.uname().release),
        ("backing", result["backing"]),
        ("filesystem", (backing.fs if backing else None) or ""),
        ("outcome", result["outcome"]),
    ]
    # what the system did, whether or not it was expected: the point of a conformance run
    for key in ("signal", "si_code", "errno"):
        seen = _unique(s.get(key) for s in result.get("steps") or [])
        if seen:
            props.append((key, ",".join(seen)))
    return props


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v))
