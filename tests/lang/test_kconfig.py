"""`requires: {kconfig: ...}`: the running kernel's configuration as a condition; an unknown
configuration skips with the reason, and a malformed condition is a located error."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import pytest

from runner.lang import conditions
from runner.lang.conditions import Facts, holds, parse_kconfig, unmet
from runner.lang.loader import load_suite

CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
CONFIG_MMU=y
CONFIG_USERFAULTFD=y
CONFIG_ZRAM=m
# CONFIG_MEMORY_FAILURE is not set
CONFIG_NR_CPUS=64
CONFIG_LOCALVERSION="-test"
"""


def facts(config: dict[str, str] | None) -> Facts:
    return Facts(kernel="6.1.0", kconfig_reader=lambda release: config)


def test_parse_reads_values_modules_and_unset_options():
    assert parse_kconfig(CONFIG) == {
        "CONFIG_MMU": "y",
        "CONFIG_USERFAULTFD": "y",
        "CONFIG_ZRAM": "m",
        "CONFIG_MEMORY_FAILURE": "n",
        "CONFIG_NR_CPUS": "64",
        "CONFIG_LOCALVERSION": "-test",
    }


@pytest.mark.parametrize(
    "cond, expected",
    [
        ({"kconfig": "CONFIG_MMU"}, True),
        ({"kconfig": "CONFIG_ZRAM"}, True),  # a module counts as configured
        ({"kconfig": "CONFIG_MEMORY_FAILURE"}, False),
        ({"kconfig": "CONFIG_NOT_IN_THIS_FILE"}, False),  # absent is not set
        ({"kconfig": ["CONFIG_MMU", "CONFIG_USERFAULTFD"]}, True),
        ({"kconfig": ["CONFIG_MMU", "CONFIG_MEMORY_FAILURE"]}, False),
        ({"kconfig": {"CONFIG_MEMORY_FAILURE": "n"}}, True),
        ({"kconfig": {"CONFIG_NOT_IN_THIS_FILE": "n"}}, True),
        ({"kconfig": {"CONFIG_ZRAM": "y"}}, False),
        ({"kconfig": {"CONFIG_ZRAM": "m"}}, True),
        ({"kconfig": {"CONFIG_NR_CPUS": 64}}, True),
        ({"kconfig": {"CONFIG_NR_CPUS": 8}}, False),
    ],
)
def test_conditions_hold_as_the_configuration_says(cond, expected):
    assert holds(cond, facts(parse_kconfig(CONFIG))) is expected


def test_the_reason_names_option_wanted_and_had():
    got = unmet({"kconfig": ["CONFIG_MMU", "CONFIG_MEMORY_FAILURE"]}, facts(parse_kconfig(CONFIG)))
    assert got == ["kconfig CONFIG_MEMORY_FAILURE=y or m required, have not set"]
    got = unmet({"kconfig": {"CONFIG_ZRAM": "y"}}, facts(parse_kconfig(CONFIG)))
    assert got == ["kconfig CONFIG_ZRAM=y required, have m"]


def test_an_unknown_configuration_holds_nothing_and_says_why():
    cond = {"kconfig": {"CONFIG_MEMORY_FAILURE": "n"}}
    assert not holds(cond, facts(None))
    (reason,) = unmet(cond, facts(None))
    assert "configuration of kernel 6.1.0 is unknown" in reason
    assert "CONFIG_MEMORY_FAILURE cannot be checked" in reason


def test_another_kernel_than_the_running_one_is_unknown():
    assert conditions.kconfig_of("0.0.1-not-this-one") is None


def test_the_running_kernel_is_read_from_proc_config_gz(tmp_path, monkeypatch):
    """The reader takes /proc/config.gz when it exists: what it finds is what zcat shows."""
    if not Path("/proc/config.gz").exists():
        pytest.skip("this kernel has no /proc/config.gz")
    with gzip.open("/proc/config.gz", "rt") as f:
        lines = [x for x in f.read().splitlines() if x.startswith("CONFIG_")]
    config = conditions.kconfig_of(__import__("os").uname().release)
    assert config is not None
    name, _, value = lines[0].partition("=")
    assert config[name] == value.strip('"')


def run_case(tmp_path, run_yaml_fn, requires: str):
    return run_yaml_fn(
        f"""\
        id: k
        title: t
        requires: {requires}
        steps:
          - mmap: {{length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE|MAP_ANONYMOUS}}
        """
    )["anon"]


def test_a_case_on_an_unknown_configuration_is_skipped_with_the_reason(
    tmp_path, run_yaml, monkeypatch
):
    monkeypatch.setattr(conditions, "kconfig_of", lambda release: None)
    result = run_case(tmp_path, run_yaml, "{kconfig: CONFIG_MMU}")
    assert result.outcome == "skipped"
    assert "CONFIG_MMU cannot be checked" in result.reason


def test_a_case_runs_or_skips_by_the_configuration(tmp_path, run_yaml, monkeypatch):
    monkeypatch.setattr(conditions, "kconfig_of", lambda release: parse_kconfig(CONFIG))
    assert run_case(tmp_path, run_yaml, "{kconfig: CONFIG_MMU}").outcome == "passed"
    skipped = run_case(tmp_path, run_yaml, "{kconfig: CONFIG_MEMORY_FAILURE}")
    assert skipped.outcome == "skipped"
    assert skipped.reason == "kconfig CONFIG_MEMORY_FAILURE=y or m required, have not set"


@pytest.mark.parametrize(
    "requires, message",
    [
        ("{kconfig: MEMORY_FAILURE}", "4:12: kconfig: 'MEMORY_FAILURE' is not a CONFIG_ name"),
        ("{kconfig: [CONFIG_MMU, 7]}", "4:12: kconfig: 7 is not a CONFIG_ name"),
        ("{kconfig: {CONFIG_MMU: true}}", "4:22: CONFIG_MMU: True: give y, m, n"),
        ("{kconfig: []}", "4:12: kconfig: a kconfig condition is CONFIG_NAME"),
    ],
)
def test_a_malformed_condition_is_located(tmp_path, requires, message):
    path = tmp_path / "c.yaml"
    text = f"""\
        id: k
        title: t
        steps: [{{post: e}}]
        requires: {requires}
        """
    path.write_text(textwrap.dedent(text))
    problems = [str(p).split("c.yaml:", 1)[1] for p in load_suite([str(path)]).problems]
    assert len(problems) == 1 and problems[0].startswith(message), problems
