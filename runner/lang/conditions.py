"""``requires`` and ``when``: conditions over the kernel, the backing and the machine.

The one grammar of a kernel condition and the one evaluator: a case's ``requires`` and ``when``
and a baseline entry's ``when`` are all judged here."""

from __future__ import annotations

import functools
import gzip
import operator
import os
import platform
import re
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
# one comparison of a kernel condition; a condition is one or more, separated by commas
_SPEC_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)?\s*(\d+(?:\.\d+){0,2})\s*$")
KERNEL_SPEC_HELP = "expected comparisons like '>=4.17' or '>=5.0, <6.5' ('6.5': the series)"


def valid_kernel_spec(spec: Any) -> bool:
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        spec = str(spec)
    return isinstance(spec, str) and all(_SPEC_RE.match(p) for p in spec.split(","))


def kernel_tuple(release: str) -> tuple[int, int, int]:
    """``6.18.44-foo`` → (6, 18, 44)."""
    nums = [int(n) for n in re.findall(r"\d+", release.split("-")[0])[:3]]
    return tuple((nums + [0, 0, 0])[:3])  # type: ignore[return-value]


def kernel_matches(release: str, spec: str | int | float) -> bool:
    have = kernel_tuple(release)
    for part in str(spec).split(","):
        m = _SPEC_RE.match(part)
        if not m:
            raise ValueError(f"bad kernel condition {spec!r}")
        want = kernel_tuple(m.group(2))
        op = _CMP[m.group(1) or "=="]
        if m.group(1) in (None, "==") and m.group(2).count(".") < 2:
            # "6.5" names a series: 6.5.x all match
            depth = m.group(2).count(".") + 1
            if not op(have[:depth], want[:depth]):
                return False
        elif not op(have, want):
            return False
    return True


def _no_probe(name: str) -> bool:
    raise RuntimeError(f"no syscall probe was given to judge 'syscall: {name}'")


def _running_kconfig(release: str) -> dict[str, str] | None:
    return kconfig_of(release)  # looked up at the call: tests replace it


@dataclass
class Facts:
    """What conditions are judged against: the machine, then the backing of one run."""

    kernel: str = field(default_factory=lambda: os.uname().release)
    arch: str = field(default_factory=platform.machine)
    root: bool = field(default_factory=lambda: os.geteuid() == 0)
    backing: str = "anon"
    fs: str | None = None
    # the engine's probe: this package makes no system call of its own
    syscall_probe: Callable[[str], bool] = field(default=_no_probe)
    _syscalls: dict[str, bool] = field(default_factory=dict)
    disk: str | None = None  # after a power cut: the disk model judged (submitted, flushed)
    # a sysctl's value by its dotted key (None: absent); default this machine's /proc/sys (a qemu
    # guest's run is planned on the host with the values its guest reported)
    sysctl: Callable[[str], str | None] | None = None
    # the page size the run had (a baseline's when: {page_size: ...}; arm64 has 4K, 16K, 64K)
    page_size: int = field(default_factory=resource.getpagesize)
    # the configuration of the kernel named by ``kernel``; None: unknown
    kconfig_reader: Callable[[str], dict[str, str] | None] = field(default=_running_kconfig)

    def read_sysctl(self, key: str) -> str | None:
        return (self.sysctl or read_sysctl)(key)

    def has_syscall(self, name: str) -> bool:
        if name not in self._syscalls:
            self._syscalls[name] = self.syscall_probe(name)
        return self._syscalls[name]

    def for_backing(self, backing: str, fs: str | None) -> Facts:
        return Facts(
            self.kernel,
            self.arch,
            self.root,
            backing,
            fs,
            self.syscall_probe,
            self._syscalls,
            disk=self.disk,
            sysctl=self.sysctl,
            page_size=self.page_size,
            kconfig_reader=self.kconfig_reader,
        )

    @property
    def kconfig(self) -> dict[str, str] | None:
        return self.kconfig_reader(self.kernel)

    def for_disk(self, model: str) -> Facts:
        """These facts, judged on one disk model after a power cut."""
        out = self.for_backing(self.backing, self.fs)
        out.disk = model
        return out


def unmet(cond: dict[str, Any] | None, facts: Facts) -> list[str]:
    """The parts of ``cond`` that do not hold, said for a person; empty when it holds."""
    if not cond:
        return []
    out = []
    for key, want in cond.items():
        if not _holds(key, want, facts):
            out.append(_describe(key, want, facts))
    return out


def holds(cond: dict[str, Any] | None, facts: Facts) -> bool:
    return not unmet(cond, facts)


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else [v]


def _holds(key: str, want: Any, facts: Facts) -> bool:
    if key == "kernel":
        return kernel_matches(facts.kernel, want)
    if key == "backing":
        return facts.backing in _as_list(want)
    if key == "fs":
        return facts.fs in _as_list(want)
    if key == "disk":
        return facts.disk in _as_list(want)
    if key == "arch":
        return facts.arch in _as_list(want)
    if key == "page_size":
        return str(facts.page_size) in [str(w) for w in _as_list(want)]
    if key == "root":
        return facts.root == want
    if key == "syscall":
        return all(facts.has_syscall(name) for name in _as_list(want))
    if key == "sysctl":
        return all(_sysctl_holds(facts.read_sysctl(k), w) for k, w in want.items())
    if key == "kconfig":
        config = facts.kconfig
        return config is not None and not _kconfig_wrong(config, want)
    raise ValueError(f"unknown condition {key!r}")


def read_sysctl(key: str) -> str | None:
    try:
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def _sysctl_holds(have: str | None, want: Any) -> bool:
    if have is None:
        return False
    if isinstance(want, dict):
        try:
            number = int(have)
        except ValueError:
            return False
        return all(_CMP[_WORD_OPS[op]](number, int(v)) for op, v in want.items())
    return have == str(want)


_WORD_OPS = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _describe(key: str, want: Any, facts: Facts) -> str:
    have = {
        "kernel": facts.kernel,
        "backing": facts.backing,
        "fs": facts.fs,
        "arch": facts.arch,
        "root": facts.root,
        "page_size": facts.page_size,
        "disk": facts.disk or "none (no power cut)",
    }
    if key == "syscall":
        missing = [n for n in _as_list(want) if not facts.has_syscall(n)]
        return f"syscall {', '.join(missing)} not available on kernel {facts.kernel}"
    if key == "root":
        return "needs root" if want else "must run without root"
    if key == "sysctl":
        wrong = [
            f"{k} {w} required, have {facts.read_sysctl(k)}"
            for k, w in want.items()
            if not _sysctl_holds(facts.read_sysctl(k), w)
        ]
        return "sysctl " + "; ".join(wrong)
    if key == "kconfig":
        return _describe_kconfig(facts, want)
    return f"{key} {want} required, have {have[key]}"


# -- kconfig: the running kernel's build configuration ------------------------------------------
KCONFIG_NAME = re.compile(r"^CONFIG_[A-Z0-9_]+$")
KCONFIG_HELP = (
    "a kconfig condition is CONFIG_NAME (built in or a module), a list of them, or a mapping "
    "{CONFIG_NAME: y, m, n or a value}"
)
_KCONFIG_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$|^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_kconfig(text: str) -> dict[str, str]:
    """A .config as names and values: ``y``, ``m``, ``n`` (is not set), or the value unquoted."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _KCONFIG_LINE.match(line.strip())
        if m and m.group(1):
            out[m.group(1)] = m.group(2).strip().strip('"')
        elif m:
            out[m.group(3)] = "n"
    return out


@functools.cache
def kconfig_of(release: str) -> dict[str, str] | None:
    """The running kernel's configuration (/proc/config.gz, else /boot/config-RELEASE); None
    when it is unknown, or when ``release`` is not the running kernel (a report's facts)."""
    if release != os.uname().release:
        return None
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            return parse_kconfig(f.read())
    except OSError:
        pass
    try:
        with open(f"/boot/config-{release}") as f:
            return parse_kconfig(f.read())
    except OSError:
        return None


def kconfig_wants(want: Any) -> dict[str, str]:
    """A kconfig condition as name -> wanted value ("ym": built in or a module)."""
    if isinstance(want, dict):
        return {str(k): str(v) for k, v in want.items()}
    return {str(name): "ym" for name in _as_list(want)}


def _kconfig_wrong(config: dict[str, str], want: Any) -> list[str]:
    wrong = []
    for name, value in kconfig_wants(want).items():
        have = config.get(name, "n")
        if have != value and not (value == "ym" and have in ("y", "m")):
            wrong.append(name)
    return wrong


def _describe_kconfig(facts: Facts, want: Any) -> str:
    config = facts.kconfig
    wants = kconfig_wants(want)
    if config is None:
        return (
            f"the configuration of kernel {facts.kernel} is unknown (no /proc/config.gz, no "
            f"/boot/config-{facts.kernel}): {', '.join(wants)} cannot be checked"
        )
    said = {"ym": "y or m", "n": "not set"}
    parts = [
        f"{name}={said.get(wants[name], wants[name])} required, have "
        f"{said.get(config.get(name, 'n'), config.get(name, 'n'))}"
        for name in _kconfig_wrong(config, want)
    ]
    return "kconfig " + "; ".join(parts)
