"""``-n N``: run items in N forked worker processes; results come back as they finish."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

from runner.session import Item, Result, Runner

_runner: Runner | None = None
_items: list[Item] = []


def _run_one(index: int) -> tuple[int, Result]:
    assert _runner is not None
    return index, _runner.run_item(_items[index])


def run_parallel(runner: Runner, items: list[Item], jobs: int) -> Iterator[Result]:
    """Yield each item's result in completion order (workers inherit runner and items)."""
    global _runner, _items
    _runner, _items = runner, items
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(jobs) as pool:
        for _, result in pool.imap_unordered(_run_one, range(len(items))):
            yield result
