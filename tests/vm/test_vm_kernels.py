"""Kernel resolution, lock file and cache lookup, with a fake apt (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.vm import apt, kernels


def stanza(pkg: str, ver: str, depends: str = "", size: int = 100) -> str:
    return f"Package: {pkg}\nVersion: {ver}\nDepends: {depends}\nSize: {size}\nSHA256: ab\n"


ARCHIVE = {
    "linux-image-6.1.0-47-amd64": stanza("linux-image-6.1.0-47-amd64", "6.1.170-3"),
    "linux-image-6.1.0-56-amd64": stanza("linux-image-6.1.0-56-amd64", "6.1.192-2"),
    "linux-image-6.1.0-56-cloud-amd64": stanza("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2"),
    "linux-image-6.12.1+deb13-amd64": stanza("linux-image-6.12.1+deb13-amd64", "6.12.1-1"),
    "linux-image-6.18.15+deb13-amd64": stanza(
        "linux-image-6.18.15+deb13-amd64",
        "6.18.15-1~bpo13+1",
        "kmod, linux-base-6.18.15+deb13-amd64 (= 6.18.15-1~bpo13+1)",  # not in the archive
    ),
    # 7.1: a stub whose modules left the archive; 7.3: complete split packages.
    "linux-image-7.1.7+deb13-amd64": stanza(
        "linux-image-7.1.7+deb13-amd64",
        "7.1.7-1~bpo13+1",
        "linux-binary-7.1.7+deb13-amd64 (= 7.1.7-1~bpo13+1), "
        "linux-modules-7.1.7+deb13-amd64 (= 7.1.7-1~bpo13+1)",
    ),
    "linux-binary-7.1.7+deb13-amd64": stanza("linux-binary-7.1.7+deb13-amd64", "7.1.7-1~bpo13+1"),
    "linux-image-7.3.4+deb13-amd64": stanza(
        "linux-image-7.3.4+deb13-amd64",
        "7.3.4-1~bpo13+1",
        "dracut | initramfs-tools, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), "
        "linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), "
        "linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)",
        1900,
    ),
    "linux-base-7.3.4+deb13-amd64": stanza("linux-base-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
    "linux-binary-7.3.4+deb13-amd64": stanza("linux-binary-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"),
    "linux-modules-7.3.4+deb13-amd64": stanza(
        "linux-modules-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", size=107_000_000
    ),
}


class FakeApt:
    def pkgnames(self, prefix: str) -> list[str]:
        # apt-cache pkgnames also lists names only referenced by Depends.
        return [n for n in [*ARCHIVE, "linux-image-6.1.0-99-amd64"] if n.startswith(prefix)]

    def run(self, tool: str, args: list[str]) -> str:
        assert tool == "apt-cache" and args[0] == "show"
        return "\n".join(ARCHIVE[n] for n in args[1:] if n in ARCHIVE)


@pytest.mark.parametrize(
    ("series", "abi", "names"),
    [
        ("6.1", "6.1.0-56-amd64", ["linux-image-6.1.0-56-amd64"]),
        ("6.12", "6.12.1+deb13-amd64", ["linux-image-6.12.1+deb13-amd64"]),
        ("6.18", "6.18.15+deb13-amd64", ["linux-image-6.18.15+deb13-amd64"]),
        (
            "7.3",
            "7.3.4+deb13-amd64",
            [
                "linux-image-7.3.4+deb13-amd64",
                "linux-base-7.3.4+deb13-amd64",
                "linux-binary-7.3.4+deb13-amd64",
                "linux-modules-7.3.4+deb13-amd64",
            ],
        ),
    ],
)
def test_resolve(series: str, abi: str, names: list[str]) -> None:
    pin = kernels.resolve(FakeApt(), series)  # type: ignore[arg-type]
    assert pin.abi == abi
    assert [p.name for p in pin.packages] == names


def test_resolve_skips_kernels_without_modules() -> None:
    with pytest.raises(LookupError, match="with modules"):
        kernels.resolve(FakeApt(), "7.1")  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        kernels.resolve(FakeApt(), "5.10")  # type: ignore[arg-type]


def test_lock_roundtrip(tmp_path: Path) -> None:
    pin = kernels.resolve(FakeApt(), "7.3")  # type: ignore[arg-type]
    lock = tmp_path / "kernels.lock"
    kernels.write_lock({"7.3": pin, "6.12": kernels.Pin("6.12", "x", "6.12.1-1")}, lock)
    data = json.loads(lock.read_text())
    assert list(data["kernels"]) == ["6.12", "7.3"]  # numeric order
    assert kernels.read_lock(lock)["7.3"] == pin


def test_shipped_lock_pins_the_four_series() -> None:
    pins = kernels.read_lock()
    assert {"6.1", "6.12", "6.18", "7.3"} <= set(pins)
    assert all(p.packages and p.packages[0].sha256 for p in pins.values())


def make_tree(root: Path, abi: str, series: str) -> Path:
    t = root / "trees" / abi
    (t / "lib/modules" / abi).mkdir(parents=True)
    (t / "mmapconf.json").write_text(json.dumps({"abi": abi, "series": series, "version": "1"}))
    return t


def test_find_by_series_abi_and_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MMAPCONF_KERNEL_CACHE", str(tmp_path))
    make_tree(tmp_path, "6.1.0-47-amd64", "6.1")
    t2 = make_tree(tmp_path, "6.12.1+deb13-amd64", "6.12")
    assert kernels.find("6.12").abi == "6.12.1+deb13-amd64"
    assert kernels.find("6.1.0-47-amd64").series == "6.1"
    assert kernels.find(str(t2 / "lib/modules")).abi == "6.12.1+deb13-amd64"
    assert [t.series for t in kernels.cached()] == ["6.1", "6.12"]
    with pytest.raises(LookupError, match="kernels fetch 9.9"):
        kernels.find("9.9")


def test_cache_root_follows_xdg(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MMAPCONF_KERNEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernels.cache_root() == tmp_path / "mmapconf" / "kernels"


def test_parse_sources_both_formats() -> None:
    deb822 = (
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb-src\nURIs: http://src.invalid/\nSuites: bookworm\n"
    )
    assert apt.parse_sources(deb822, True) == [
        ("http://mirror.invalid/debian", ["bookworm", "bookworm-updates"])
    ]
    one_line = "deb [arch=amd64] http://mirror.invalid/d bookworm main\n# deb http://x/ y z\n"
    assert apt.parse_sources(one_line, False) == [("http://mirror.invalid/d", ["bookworm"])]


def test_private_apt_never_uses_system_state(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MMAPCONF_DEBIAN_URI", "http://mirror.invalid/debian")
    a = apt.PrivateApt(tmp_path / "apt")
    a.setup()
    opts = dict(o.split("=", 1) for o in a.options()[1::2])
    assert opts["Dir::Etc::SourceList"] == "/dev/null"
    for k in ("Dir::State", "Dir::State::status", "Dir::Cache", "Dir::Etc::SourceParts"):
        assert opts[k].startswith(str(tmp_path)), k
    text = (tmp_path / "apt/etc/sources.list.d/kernels.sources").read_text()
    assert "trixie-backports" in text and "http://mirror.invalid/debian" in text
