"""A/B: the per case-run figures of this tree and of another copy (a proposal applied there).

``python3 bench/ab.py OTHER_TREE [--rounds 6 --runs 60]`` runs ``bench/run.py --only per-case``
of each tree in turn, alternating, so both see the same load; then prints medians side by side.
CPU time (this process plus reaped children) is printed too: on a machine shared with other
work it moves much less than wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import median  # noqa: E402


def sample(tree: Path, runs: int) -> dict[str, dict[str, list[float]]]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [sys.executable, str(tree / "bench" / "run.py"), "--only", "per-case"]
        argv += ["--runs", str(runs), "--json", out.name]
        subprocess.run(argv, cwd=tree, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("other", type=Path)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--runs", type=int, default=60)
    args = p.parse_args()
    trees = {"A": ROOT, "B": args.other.resolve()}
    merged: dict[str, dict[str, dict[str, list[float]]]] = {k: {} for k in trees}
    for _ in range(args.rounds):
        for key, tree in trees.items():
            for name, s in sample(tree, args.runs).items():
                row = merged[key].setdefault(name, {"wall": [], "cpu": []})
                row["wall"] += s["wall"]
                row["cpu"] += s["cpu"]
    print(f"A = {trees['A']}\nB = {trees['B']}")
    cols = ("A wall", "B wall", "B/A", "A cpu", "B cpu", "B/A")
    print(f"{'median, ms':32} " + " ".join(f"{c:>8}" for c in cols))
    for name, a in merged["A"].items():
        b = merged["B"].get(name)
        if b is None:
            continue
        aw, bw, ac, bc = (median(x) * 1e3 for x in (a["wall"], b["wall"], a["cpu"], b["cpu"]))
        print(f"{name:32} {aw:8.3f} {bw:8.3f} {bw / aw:8.2f} {ac:8.3f} {bc:8.3f} {bc / ac:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
