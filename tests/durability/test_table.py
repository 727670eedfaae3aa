"""The durability tables from reports made up here: S/L per model, and for a case judged at its
crash points the first point from which the data survives in each model, with the operation
and its time after "stored", and the write log."""

from __future__ import annotations

from typing import Any

from runner.vm.durability import table


def _result(disk: str, data: str, **durability: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "name": f"c[disk/{disk}]",
        "outcome": "passed",
        "facts": {"backing": "disk", "fs": "ext4", "disk": disk},
        "durability": {"data": data, **durability},
    }


def _point(n: int, data: str, op: str, t: float, before: bool) -> dict[str, Any]:
    point = {"entries_replayed": n, "last_op": op, "t_s": t, "before_stored": before}
    return _result(f"point-{n}", data, point=point)


TIMELINE = [
    {"t_s": 1.02, "op": "writes", "count": 3, "bytes": 65536},
    {"t_s": 5.1, "op": "flush", "count": 1, "bytes": 0},
]


def _report() -> dict[str, Any]:
    first = {"point": "point-4", "t_s": 1.02, "made_by": "a write"}
    results = [
        _result("submitted", "survived", first_survived=first, points_judged=3, timeline=TIMELINE),
        _result("flushed", "lost", first_survived=None, points_judged=3, points_left_out=2),
        _point(2, "lost", "flush", 0.0, True),
        _point(4, "survived", "write", 1.02, False),
        _point(5, "lost", "flush", 5.1, False),
    ]
    return {"environment": {"kernel_release": "6.1.0"}, "results": results}


def test_the_models_table() -> None:
    assert "| 6.1.0 | `c` | S/L |" in table.render([_report()])


def test_the_crash_points_table() -> None:
    report = _report()
    text = table.render_timelines([report])
    row = (
        "| 6.1.0 | ext4 | `c` | write at +1.02 s | never (3 points, 2 left out) | "
        "3 writes (64 KiB) +1.02, flush +5.10 |"
    )
    assert row.replace("`c`", "`c` (by size)") in text, text  # a report from before the marker
    assert "CLOCK_MONOTONIC" in text
    for r in report["results"]:
        r["durability"]["stored_at"] = {"by": "marker", "entry": 2, "disk_offset": 1 << 20}
    assert row in table.render_timelines([report])


def test_no_crash_points_no_table() -> None:
    report = _report()
    report["results"] = report["results"][:1]
    del report["results"][0]["durability"]["points_judged"]
    assert table.render_timelines([report]) == ""


def test_a_case_re_run_since_the_marker_replaces_its_cells_and_rows_from_before() -> None:
    old, new = _report(), _report()
    for r in new["results"]:
        r["durability"]["stored_at"] = {"by": "marker", "entry": 2, "disk_offset": 1 << 20}
    new["results"][0]["durability"]["data"] = "lost"  # the re-run's submitted disk: L
    new["results"][0]["durability"]["timeline"] = TIMELINE[1:]
    for reports in ([old, new], [new, old]):  # whichever order they are given in
        assert "| 6.1.0 | `c` | L/L |" in table.render(reports)
        rows = [line for line in table.render_timelines(reports).splitlines() if "`c`" in line]
        assert rows == [
            "| 6.1.0 | ext4 | `c` | write at +1.02 s | never (3 points, 2 left out) | flush +5.10 |"
        ], rows
