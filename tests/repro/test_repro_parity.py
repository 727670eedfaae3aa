"""Every catalogue item, and every cell of the expectation-by-context matrix (tests/matrix,
half of it wrong on purpose), run by the engine and as its compiled `mmapconf repro` program,
ends alike: the same outcome, and for a failure the same failing processes and steps.

One test per item, so `-n 2` spreads the compiles over both cores; the executables are cached
by source hash (repro_util.CACHE), so a re-run compiles only what changed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from repro_util import reproduce, static_libc_missing, target_for

from runner.lang.loader import load_suite
from runner.lang.powercut import is_power_cut
from runner.repro.kinds import Unreproducible
from runner.repro.program import skip_reason
from runner.session.runner import Item, RunConfig, Runner

RUNNER = Runner(RunConfig())
MATRIX = Path(__file__).resolve().parents[1] / "matrix" / "generated"
ITEMS = [i for i in RUNNER.plan(load_suite(["cases", str(MATRIX)])) if i.case is not None]
MISSING = static_libc_missing()


@pytest.fixture(scope="module")
def runner() -> Runner:
    return RUNNER


@pytest.mark.catalogue_sweep
@pytest.mark.skipif(bool(MISSING), reason=MISSING)
@pytest.mark.parametrize("item", ITEMS, ids=[i.name for i in ITEMS])
def test_repro_ends_as_the_engine_does(runner: Runner, item: Item) -> None:
    assert item.case is not None and item.backing is not None
    engine = runner.run_item(item)
    why = item.backing.unavailable or skip_reason(item.case, target_for(item.backing))
    if why:  # `mmapconf repro` refuses these with exit 2 (tests/repro/test_repro_cli.py)
        assert engine.outcome == "skipped", (engine.outcome, engine.reason)
        return
    if is_power_cut(item.case):  # the host cuts a guest's power: the engine skips it here
        assert engine.outcome == "skipped", (engine.outcome, engine.reason)
        with pytest.raises(Unreproducible, match="power cut|provision"):
            reproduce(item.case, item.backing)
        return
    if item.case.provision is not None:  # refused in one line (test_repro_cli.py): no C form
        with pytest.raises(Unreproducible, match="provision"):
            reproduce(item.case, item.backing)
        pytest.skip(f"no C form (provision); the engine: {engine.outcome}")
    repro = reproduce(item.case, item.backing)
    failing = sorted({f"{s['process']} step {s['step']}" for s in engine.steps if s["ok"] is False})
    assert (repro.outcome, repro.failing) == (engine.outcome, failing), (
        f"engine: {engine.outcome} {engine.reason}\nrepro:\n{repro.stdout[-3000:]}"
    )
