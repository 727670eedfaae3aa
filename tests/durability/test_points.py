"""Which crash points a case with ``at:`` is judged at, from a write log made up here: the disk
at "stored" in each model, then after each flush (every_flush) or each completed write too
(every_write); past MAX_POINTS the flushes are kept first and the rest counted as left out."""

from __future__ import annotations

from runner.vm.durability import cut, writelog


def _log(kinds: str) -> writelog.Log:
    """W: a write, F: a flush, in this order."""
    flags = {"W": 0, "F": writelog.FLUSH}
    entries = [writelog.Entry(i, i, 1, flags[k], 0, i + 1) for i, k in enumerate(kinds)]
    return writelog.Log(512, entries)


def test_every_flush_after_stored() -> None:
    log = _log("WFW" + "WWFWF")  # "stored" after entry 3
    points, left_out = cut._points(log, 3, "every_flush")
    assert points == {"point-2": 2, "point-3": 3, "point-6": 6, "point-8": 8}
    assert left_out == 0


def test_every_write_adds_the_writes() -> None:
    log = _log("WFW" + "WWFWF")
    points, left_out = cut._points(log, 3, "every_write")
    assert sorted(points.values()) == [2, 3, 4, 5, 6, 7, 8]
    assert left_out == 0


def test_past_the_most_the_flushes_are_kept_first() -> None:
    log = _log("F" + "W" * 20 + "F")
    points, left_out = cut._points(log, 1, "every_write")
    assert 22 in points.values()  # the flush at the end, the flushed model's only point
    assert len(points) == 2 + cut.MAX_POINTS - 1  # at "stored" (0 and 1 are one here: 1)
    assert left_out == 21 - cut.MAX_POINTS


def test_no_at_no_points() -> None:
    assert cut._points(_log("WF"), 1, None) == ({}, 0)
