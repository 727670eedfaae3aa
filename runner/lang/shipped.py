"""The catalogue that comes with mmapconf: ``cases/`` (with ``schema.json``) and ``baselines/``.

A wheel carries them as package data under ``runner/shipped/`` (setup.py copies them there at
build time, so the top-level folders stay where they are); a source checkout, or an editable
install of one, has them at the top of the tree.
"""

from __future__ import annotations

from pathlib import Path

_RUNNER = Path(__file__).resolve().parent.parent
ROOTS = (_RUNNER / "shipped", _RUNNER.parent)
LOCAL_CASES = Path("cases")


def shipped_root() -> Path | None:
    """The folder holding the shipped ``cases/`` and ``baselines/``, or None if neither is here."""
    return next((r for r in ROOTS if (r / "cases" / "schema.json").is_file()), None)


def shipped_cases() -> Path | None:
    root = shipped_root()
    return root / "cases" if root else None


def schema_path() -> Path | None:
    root = shipped_root()
    return root / "cases" / "schema.json" if root else None


def shipped_baseline() -> Path | None:
    root = shipped_root()
    path = root / "baselines" / "linux.yaml" if root else None
    return path if path and path.is_file() else None


def default_paths() -> tuple[list[str], Path | None]:
    """The case paths when none are given: ``./cases`` when there is one, else the shipped
    catalogue (returned second, so that the run can say it ran that)."""
    if LOCAL_CASES.is_dir():
        return [str(LOCAL_CASES)], None
    cases = shipped_cases()
    if cases is None:
        return [str(LOCAL_CASES)], None  # reported as "cases: no such file or folder"
    return [str(cases)], cases
