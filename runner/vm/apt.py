"""A private apt state for downloading Debian kernel packages.

Nothing here touches /etc/apt, the system's package lists or /boot: the
sources list, lists, package cache and dpkg status all live under the kernel
cache.  The archive URIs are taken from the system's own apt sources (so a
local mirror or proxy set up there is honoured) unless MMAPCONF_DEBIAN_URI /
MMAPCONF_DEBIAN_SECURITY_URI say otherwise.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Kernel series live in several suites: 6.1 in bookworm(-security), 6.12 in
# bookworm-security/trixie, 6.16-6.18 and 7.x only in trixie-backports.
MAIN_SUITES = ("bookworm", "bookworm-backports", "trixie", "trixie-backports")
SECURITY_SUITES = ("bookworm-security", "trixie-security")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


class AptError(RuntimeError):
    """apt could not be set up or failed."""


def _sources_files() -> list[Path]:
    files = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    return [f for f in files if f.is_file()]


def parse_sources(text: str, deb822: bool) -> list[tuple[str, list[str]]]:
    """Return (uri, suites) pairs from one sources file's text."""
    out: list[tuple[str, list[str]]] = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" in fields.get("types", "").split() and "uris" in fields:
                for uri in fields["uris"].split():
                    out.append((uri, fields.get("suites", "").split()))
    else:
        for line in text.splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                out.append((line[1], [line[2]]))
    return out


def system_archive_uris() -> tuple[str, str]:
    """(main archive URI, security archive URI) as configured on this system."""
    main = os.environ.get("MMAPCONF_DEBIAN_URI", "")
    sec = os.environ.get("MMAPCONF_DEBIAN_SECURITY_URI", "")
    for f in _sources_files():
        try:
            text = f.read_text()
        except OSError:
            continue
        for uri, suites in parse_sources(text, f.suffix == ".sources"):
            for s in suites:
                if s.endswith("-security") and not sec:
                    sec = uri
                elif re.fullmatch(r"(bookworm|trixie|bullseye|stable)", s) and not main:
                    main = uri
    if not main:
        raise AptError(
            "no Debian archive found in the system's apt sources; "
            "set MMAPCONF_DEBIAN_URI (and MMAPCONF_DEBIAN_SECURITY_URI)"
        )
    if not sec:
        # The security archive is optional: bookworm main and trixie still
        # carry 6.1 and 6.12 kernels.
        sec = ""
    return main.rstrip("/"), sec.rstrip("/")


@dataclass
class PrivateApt:
    """apt-get/apt-cache bound to a state directory of its own, for one Debian architecture
    (the host's dpkg need not know it: nothing is installed, only downloaded)."""

    root: Path
    arch: str = "amd64"
    suites: tuple[str, ...] = MAIN_SUITES
    security_suites: tuple[str, ...] = SECURITY_SUITES

    def sources_text(self) -> str:
        main, sec = system_archive_uris()
        stanzas = [self._stanza(main, self.suites)]
        if sec:
            stanzas.append(self._stanza(sec, self.security_suites))
        return "\n".join(stanzas)

    def _stanza(self, uri: str, suites: tuple[str, ...]) -> str:
        return (
            f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\n"
            f"Components: main\nArchitectures: {self.arch}\nSigned-By: {KEYRING}\n"
        )

    def setup(self) -> None:
        for d in (
            "etc/sources.list.d",
            "etc/preferences.d",
            "state/lists/partial",
            "cache/archives/partial",
        ):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "etc/sources.list.d/kernels.sources").write_text(self.sources_text())
        (self.root / "status").touch()

    def options(self) -> list[str]:
        r = self.root
        opts = {
            "Dir::Etc::SourceList": "/dev/null",
            "Dir::Etc::SourceParts": r / "etc/sources.list.d",
            "Dir::Etc::Preferences": r / "etc/preferences",
            "Dir::Etc::PreferencesParts": r / "etc/preferences.d",
            "Dir::State": r / "state",
            "Dir::State::Lists": r / "state/lists",
            "Dir::State::status": r / "status",
            "Dir::Cache": r / "cache",
            "APT::Architecture": self.arch,
            "APT::Architectures": self.arch,
            "Acquire::Languages": "none",
            # The state lives in a private directory that the _apt sandbox
            # user may not be able to enter (e.g. under /root).
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody"),
            "Debug::NoLocking": "1",
        }
        out: list[str] = []
        for k, v in opts.items():
            out += ["-o", f"{k}={v}"]
        return out

    def run(self, tool: str, args: list[str], cwd: Path | None = None) -> str:
        cmd = [tool, *self.options(), *args]
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        if p.returncode != 0:
            raise AptError(
                f"{' '.join([tool, *args])} failed ({p.returncode}):\n{p.stderr[-2000:]}"
            )
        return p.stdout

    def update(self) -> None:
        self.setup()
        self.run("apt-get", ["-q", "update"])

    def has_lists(self) -> bool:
        d = self.root / "state/lists"
        return d.is_dir() and any(
            p.name.endswith(("Packages", "Packages.gz", "Packages.lz4")) for p in d.iterdir()
        )

    def pkgnames(self, prefix: str) -> list[str]:
        return self.run("apt-cache", ["pkgnames", prefix]).split()

    def show(self, name_version: str) -> dict[str, str]:
        """The first stanza of `apt-cache show NAME[=VERSION]` as a dict."""
        return parse_stanza(self.run("apt-cache", ["show", "--no-all-versions", name_version]))

    def versions(self, name: str) -> list[str]:
        """All versions of a package known to the private state, newest first."""
        out = self.run("apt-cache", ["madison", name])
        vers = [line.split("|")[1].strip() for line in out.splitlines() if line.count("|") >= 2]
        return sorted(set(vers), key=_VersionKey, reverse=True)

    def download(self, name: str, version: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        self.run("apt-get", ["-q", "download", f"{name}={version}"], cwd=dest)
        # apt names the file NAME_VERSION_ARCH.deb with ':' escaped as %3a.
        v = version.replace(":", "%3a")
        matches = sorted(dest.glob(f"{name}_{v}_*.deb"))
        if not matches:
            raise AptError(f"apt-get download {name}={version} left no .deb in {dest}")
        return matches[0]


def parse_stanzas(text: str) -> list[dict[str, str]]:
    return [parse_stanza(chunk) for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]


def parse_stanza(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, v = line.split(":", 1)
            fields[key] = v.strip()
    return fields


class _VersionKey:
    """Orders Debian versions with dpkg's own comparison."""

    def __init__(self, v: str) -> None:
        self.v = v

    def __lt__(self, other: _VersionKey) -> bool:
        return compare_versions(self.v, other.v) < 0


def compare_versions(a: str, b: str) -> int:
    """dpkg --compare-versions as -1/0/1."""
    if a == b:
        return 0
    lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
    return -1 if lt else 1
