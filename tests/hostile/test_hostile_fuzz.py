"""Property: whatever bytes a case file holds, the loader validates it or returns Problems.

Three sources of input, several thousand in all: case-shaped documents generated from the
language's own tables and dumped as YAML; real case files from cases/ with their bytes and lines
mutated; and arbitrary text. ``load_file`` must return a Suite every time (no exception of any
kind), each problem located at a line and column of that file. The examples are derandomized so
CI sees the same inputs on every run; the count is asserted and printed.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import yaml
from hostile_util import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import Problem
from runner.lang.loader import INTERNAL, display_name, load_file
from runner.lang.model import Case
from runner.lang.ops import CASE_KEYS, EXPECT_KEYS, OPS

EXAMPLES = {"structured": 400, "seeded": 2000, "mutated": 1500, "text": 1100}
SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
_DIR = Path(tempfile.mkdtemp(prefix="hostile-fuzz-"))
_seen = {k: 0 for k in EXAMPLES}

REAL_CASES = sorted((ROOT / "cases").rglob("*.yaml"))
REAL_BYTES = [p.read_bytes() for p in REAL_CASES]


def _check(data: bytes, kind: str) -> None:
    """The property itself, for one input."""
    _seen[kind] += 1
    path = _DIR / f"{kind}.yaml"
    path.write_bytes(data)
    suite = load_file(path)  # any exception here fails the property
    name = display_name(path)
    for case in suite.cases:
        assert isinstance(case, Case) and case.id and case.file == name
    for invalid in suite.invalid:
        assert invalid.problems, "an invalid document without a problem"
        for p in invalid.problems:
            assert isinstance(p, Problem) and p.file == name
            assert p.line >= 1 and p.column >= 1 and p.message
            assert not p.message.startswith(INTERNAL), f"the validator crashed: {p.message}"


# -- generated case-shaped documents ---------------------------------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["PAGE", "m", "2 * PAGE", "PROT_READ|PROT_WRITE", "MAP_SHARED", "f", "x"]),
    st.sampled_from(["__import__('os')", "().__class__", "1 << 9999", "../x", "/etc/passwd"]),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


_short = st.text(max_size=6)
_OP_NAMES = st.one_of(st.sampled_from(sorted(OPS)), _short)
# Built once: strategies made inside a composite are re-validated at every draw, which is slow.
_OP_ARGS = {
    op: st.dictionaries(
        st.one_of(st.sampled_from(sorted(spec.args)), _short) if spec.args else _short,
        _values,
        max_size=4,
    )
    for op, spec in OPS.items()
}
_BINDS = st.sampled_from(["m", "fd", "PAGE", "c", "", "1x", "f"])
_EXPECTS = st.one_of(
    st.dictionaries(st.one_of(st.sampled_from(sorted(EXPECT_KEYS)), _short), _values, max_size=3),
    _values,
)
_IDS = st.one_of(st.sampled_from(["fuzz", "fuzz-case", "Bad Id"]), _scalars)
_CASE_KEYS = st.one_of(st.sampled_from(list(CASE_KEYS)), _short)


@st.composite
def _step(draw, depth: int = 0) -> dict:
    op = draw(_OP_NAMES)
    if op in OPS:
        body = draw(_OP_ARGS[op]) if draw(st.integers(0, 4)) else draw(_scalars)
        if isinstance(body, dict) and "steps" in OPS[op].args and depth < 2:
            body["steps"] = draw(st.lists(_step(depth + 1), max_size=3))
    else:
        body = draw(_values)
    step = {op: body}
    if draw(st.booleans()):
        step["as"] = draw(_BINDS)
    if draw(st.booleans()):
        step["expect"] = draw(_EXPECTS)
    return step


_STEPS = st.lists(_step(), max_size=5)


@st.composite
def _document(draw) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(_values)  # not a mapping at all
    doc = draw(st.dictionaries(_CASE_KEYS, _values, max_size=4))
    if draw(st.integers(0, 3)):
        doc["id"], doc["title"] = draw(_IDS), draw(st.one_of(st.just("t"), _scalars))
    if draw(st.integers(0, 3)):
        doc["steps"] = draw(_STEPS)
    elif draw(st.booleans()):
        procs = st.dictionaries(_short, st.fixed_dictionaries({"steps": _STEPS}), max_size=3)
        doc["processes"] = draw(procs)
    return doc


@given(docs=st.lists(_document(), min_size=1, max_size=2))
def _structured(docs: list) -> None:
    _check(yaml.safe_dump_all(docs, allow_unicode=True).encode(), "structured")


# The same shapes from a seeded random.Random: no shrinking, but ten times the inputs a second.
_WORDS = [
    "PAGE",
    "m",
    "fd",
    "f",
    "2 * PAGE",
    "m + PAGE",
    "PROT_READ|PROT_WRITE",
    "MAP_SHARED",
    "SIGSEGV",
    "EINVAL",
    "tmpfs",
    "__import__('os')",
    "().__class__",
    "../x",
    "",
    "a" * 70,
]


def _rvalue(r: random.Random, depth: int = 0) -> object:
    k = r.randrange(10 if depth < 3 else 7)
    if k == 0:
        return None
    if k == 1:
        return r.choice([True, False])
    if k == 2:
        return r.choice([0, -1, 1, 4096, 2**64, -(2**63), 10**30])
    if k == 3:
        return r.choice([0.5, float("inf"), float("nan"), -1e308])
    if k in (4, 5):
        return r.choice(_WORDS)
    if k == 6:
        return "".join(chr(r.randrange(1, 0x3000)) for _ in range(r.randrange(6)))
    if k in (7, 8):
        return [_rvalue(r, depth + 1) for _ in range(r.randrange(4))]
    return {str(_rvalue(r, depth + 1)): _rvalue(r, depth + 1) for _ in range(r.randrange(4))}


def _rstep(r: random.Random, depth: int = 0) -> dict:
    op = r.choice(sorted(OPS)) if r.randrange(8) else str(_rvalue(r, 3))
    spec = OPS.get(op)
    if spec and r.randrange(5):
        keys = sorted(spec.args) + ["bogus"]
        body: object = {r.choice(keys): _rvalue(r, 1) for _ in range(r.randrange(5))}
        if "steps" in spec.args and depth < 2 and r.randrange(2):
            body["steps"] = [_rstep(r, depth + 1) for _ in range(r.randrange(3))]  # type: ignore[index]
    else:
        body = _rvalue(r, 1)
    step: dict = {op: body}
    if r.randrange(3) == 0:
        step["as"] = r.choice(["m", "fd", "PAGE", "c", "", "1x"])
    if r.randrange(3) == 0:
        keys = sorted(EXPECT_KEYS) + ["bogus"]
        step["expect"] = {r.choice(keys): _rvalue(r, 1) for _ in range(r.randrange(4))}
    return step


def _rdocument(r: random.Random) -> object:
    if r.randrange(10) == 0:
        return _rvalue(r)
    doc: dict = {
        r.choice(list(CASE_KEYS) + ["bogus"]): _rvalue(r, 1) for _ in range(r.randrange(3))
    }
    if r.randrange(4):
        doc["id"], doc["title"] = r.choice(["fuzz", "fuzz-2", "Bad", 7]), "t"
    if r.randrange(4):
        doc["steps"] = [_rstep(r) for _ in range(r.randrange(6))]
    elif r.randrange(2):
        doc["processes"] = {
            str(_rvalue(r, 3)): {"steps": [_rstep(r) for _ in range(r.randrange(3))]}
            for _ in range(r.randrange(3))
        }
    return doc


@given(r=st.randoms(use_true_random=True))
def _seeded(r: random.Random) -> None:
    docs = [_rdocument(r) for _ in range(r.randrange(1, 3))]
    _check(yaml.dump_all(docs, Dumper=yaml.CSafeDumper, allow_unicode=True).encode(), "seeded")


# -- real cases, mutated ---------------------------------------------------------------------
@st.composite
def _mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL_BYTES)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 8))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == 0:  # flip a byte
            if data:
                data[at] = draw(st.integers(0, 255))
        elif kind == 1:  # insert random bytes
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == 2:  # delete a range
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == 3:  # duplicate a range (repeated keys, anchors, steps)
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
        elif kind == 4:  # truncate
            del data[at:]
        elif kind == 5:  # YAML punctuation where it does not belong
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b": ",
                        b"- ",
                        b"&a ",
                        b"*a",
                        b"!!",
                        b"{",
                        b"]",
                        b"\t",
                        b"---\n",
                        b"\n  ",
                        b"'",
                        b'"',
                        b"|",
                        b"<<: *a\n",
                    ]
                )
            )
        elif kind == 6:  # swap two lines
            lines = bytes(data).split(b"\n")
            if len(lines) > 2:
                i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"\n".join(lines))
        elif kind == 7:  # change an indentation
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = b" " * draw(st.integers(0, 6)) + lines[i].lstrip()
            data = bytearray(b"\n".join(lines))
        else:  # replace a word by another word of the language (or a hostile one)
            words = [b"PAGE", b"m", b"fd", b"PROT_READ", b"SIGSEGV", b"steps", b"expect", b"-1"]
            words += [b"__import__('os')", b"9" * 40, b"~", b"null", b".inf", b"1e400"]
            data[at : at + draw(st.integers(1, 8))] = draw(st.sampled_from(words))
    return bytes(data)


@given(data=_mutated())
def _mutations(data: bytes) -> None:
    _check(data, "mutated")


@given(data=st.one_of(st.text(max_size=400).map(str.encode), st.binary(max_size=400)))
def _text(data: bytes) -> None:
    _check(data, "text")


def _run(prop, kind: str) -> int:
    before = _seen[kind]
    settings(SETTINGS, max_examples=EXAMPLES[kind])(prop)()
    return _seen[kind] - before


def test_generated_case_documents_validate_or_give_problems():
    ran = _run(_structured, "structured")
    print(f"structured documents: {ran} inputs")
    assert ran >= EXAMPLES["structured"]


def test_seeded_random_case_documents_validate_or_give_problems():
    ran = _run(_seeded, "seeded")
    print(f"seeded random documents: {ran} inputs")
    assert ran >= EXAMPLES["seeded"]


def test_mutated_real_cases_validate_or_give_problems():
    assert REAL_BYTES, "no cases/ to mutate"
    ran = _run(_mutations, "mutated")
    print(f"mutated real cases: {ran} inputs")
    assert ran >= EXAMPLES["mutated"]


def test_arbitrary_text_and_bytes_validate_or_give_problems():
    ran = _run(_text, "text")
    print(f"arbitrary text/bytes: {ran} inputs")
    assert ran >= EXAMPLES["text"]
