"""The cache of validated case files (runner.lang.cache): a hit needs the very bytes that were
validated, and nothing but the case model comes out of an entry."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from runner.lang import cache, loader
from runner.lang.loader import load_suite

CASE = """id: cached-{n}
title: a case for the cache
steps:
  - mmap: {{length: PAGE, prot: PROT_READ, flags: "MAP_PRIVATE|MAP_ANONYMOUS"}}
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("MMAPCONF_CACHE", str(folder))
    monkeypatch.delenv("MMAPCONF_NO_CACHE", raising=False)
    return folder


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("cases/*/*"))


def _no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(raw: bytes, name: str) -> loader.Suite:
        raise AssertionError(f"{name} was validated again")

    monkeypatch.setattr(loader, "_validated", refuse)


def test_a_file_loaded_again_comes_from_the_cache(tmp_path, cache_dir, monkeypatch) -> None:
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    first = load_suite([str(case)])
    assert [c.id for c in first.cases] == ["cached-1"] and len(_entries(cache_dir)) == 1
    _no_validation(monkeypatch)
    again = load_suite([str(case)])
    assert again.cases == first.cases and again.invalid == first.invalid


def test_an_edited_file_is_validated_again(tmp_path, cache_dir) -> None:
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    assert load_suite([str(case)]).cases
    case.write_text(CASE.format(n=1).replace("PROT_READ", "PROT_RAED"))
    edited = load_suite([str(case)])
    assert not edited.cases
    assert "PROT_RAED" in str(edited.problems[0])
    assert len(_entries(cache_dir)) == 2


def test_the_same_bytes_under_another_name_are_another_entry(tmp_path, cache_dir) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(CASE.format(n=name[0]))
    suite = load_suite([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert [Path(c.file).name for c in suite.cases] == ["a.yaml", "b.yaml"]


class _Forged:
    def __reduce__(self):
        return (os.system, ("touch forged",))


def test_an_entry_that_would_run_code_is_a_miss(tmp_path, cache_dir, monkeypatch) -> None:
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    load_suite([str(case)])
    [entry] = _entries(cache_dir)
    entry.write_bytes(pickle.dumps(_Forged()))
    monkeypatch.chdir(tmp_path)
    suite = load_suite([str(case)])
    assert [c.id for c in suite.cases] == ["cached-1"]
    assert not (tmp_path / "forged").exists()


def test_a_damaged_entry_is_a_miss(tmp_path, cache_dir) -> None:
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    load_suite([str(case)])
    [entry] = _entries(cache_dir)
    entry.write_bytes(entry.read_bytes()[:40])
    assert [c.id for c in load_suite([str(case)]).cases] == ["cached-1"]


def test_a_folder_others_can_write_is_not_used(tmp_path, cache_dir, monkeypatch) -> None:
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    load_suite([str(case)])
    [entry] = _entries(cache_dir)
    entry.parent.chmod(0o777)
    _no_validation(monkeypatch)
    with pytest.raises(AssertionError, match="validated again"):
        load_suite([str(case)])


def test_an_entry_others_can_write_is_not_used(tmp_path, cache_dir, monkeypatch) -> None:
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    load_suite([str(case)])
    [entry] = _entries(cache_dir)
    entry.chmod(0o666)
    _no_validation(monkeypatch)
    with pytest.raises(AssertionError, match="validated again"):
        load_suite([str(case)])


def test_no_cache_writes_nothing(tmp_path, cache_dir, monkeypatch) -> None:
    monkeypatch.setenv("MMAPCONF_NO_CACHE", "1")
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    assert load_suite([str(case)]).cases
    assert not cache_dir.exists()


def test_the_code_version_covers_the_validator() -> None:
    sources = {p.name for p in cache._CODE_SOURCES}
    assert {"validate.py", "yamlsafe.py", "model.py", "ops.py", "errors.py"} <= sources


def test_another_version_in_use_keeps_its_entries(tmp_path, cache_dir) -> None:
    """Two versions of the code at once (two checkouts) do not empty each other's folders;
    beyond the kept number the oldest go."""
    others = [cache_dir / "cases" / f"other{n}" for n in range(cache.KEPT_VERSIONS)]
    for n, folder in enumerate(others):
        folder.mkdir(parents=True, mode=0o700)
        (folder / "entry").write_bytes(b"x")
        os.utime(folder, (1000 + n, 1000 + n))
    case = tmp_path / "a.yaml"
    case.write_text(CASE.format(n=1))
    load_suite([str(case)])
    assert not others[0].exists()  # the oldest
    assert all((f / "entry").exists() for f in others[1:])
    assert len(_entries(cache_dir)) == cache.KEPT_VERSIONS  # theirs, and this version's one
