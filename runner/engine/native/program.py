"""Compile a validated case, for one backing, into the word program the native executor runs.

Everything the case language resolves by name is resolved here, once: flags, events, signals,
errnos, struct layouts, the ``when`` of each expectation (the facts of an item do not change while
it runs). What depends on what a case process observes (expressions over bound results) becomes a
small stack bytecode evaluated in the executor, with the error messages the Python evaluator
would give. The numbers below are shared with executor.c: keep the two in step.
"""

from __future__ import annotations

import ast
import functools
import re
import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.engine.arena import MAX_CASE_PROCESSES
from runner.lang import names
from runner.lang.conditions import Facts, holds
from runner.lang.expr import ExprError, parse
from runner.lang.model import SUCCESS, Case, Expect, Step
from runner.lang.ops import CASE_ADDRESS_SPACE_PAGES, CONSTANTS, OPS

MAGIC = 0x31504D434E4D4D00
A_EXPR, A_STR, A_BYTES, A_PACK, A_FMT = 1, 2, 3, 4, 5
K_SUCCESS, K_ERRNO, K_SIGNAL, K_VALUE = 0, 1, 2, 3
P_NONE, P_INT, P_FLOAT, P_STR, P_HEX, P_DATA, P_CMP, P_MAP, P_LIST = range(9)
P_FILL = 9  # bytes that are one pattern repeated
P_CONTAINS = 10  # text holding a substring
COMPARATORS = {"eq": 0, "ne": 1, "gt": 2, "ge": 3, "lt": 4, "le": 5}
X_PUSH, X_LOAD, X_FIELD = 1, 2, 3
X_BINOPS = {
    ast.Add: 4,
    ast.Sub: 5,
    ast.Mult: 6,
    ast.FloorDiv: 7,
    ast.Mod: 8,
    ast.LShift: 9,
    ast.RShift: 10,
    ast.BitOr: 11,
    ast.BitAnd: 12,
    ast.BitXor: 13,
}
X_UNOPS = {ast.USub: 14, ast.UAdd: 15, ast.Invert: 16}
X_CALLS = {"min": 17, "max": 18, "align_up": 19, "align_down": 20, "pick": 22}
X_FAIL = 21
OP_CODES = {name: i + 1 for i, name in enumerate(OPS)}
DATA_ARG = 11  # where file/write/store find their encoded data
F_SIGNED, F_UNSIGNED, F_FLOAT, F_BOOL, F_TEXT, F_PASCAL, F_CHAR = range(7)
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1


class NotCompilable(Exception):
    """A case uses something the native executor cannot run (said in the outcome's reason)."""


@dataclass
class StepInfo:
    """What the harness needs to turn the executor's report of a step back into a trace."""

    step: Step
    setup: bool  # traced under the process label "setup"
    want: dict[str, Any]  # the expectation as the trace shows it (si_addr filled in)
    arg_keys: dict[int, str]


@dataclass
class Program:
    words: bytes
    steps: dict[int, StepInfo]
    slot_names: list[str]
    map_names: list[str]


@dataclass
class _Writer:
    words: list[int] = field(default_factory=list)
    strings: dict[bytes, int] = field(default_factory=dict)

    def put(self, *ws: int) -> None:
        self.words.extend(ws)

    def string(self, s: str | bytes) -> int:
        b = s.encode() if isinstance(s, str) else s
        return self.strings.setdefault(b, len(self.strings))


def _signed(v: int) -> int:
    """A value as the executor's int64 sees it (Python's ints are unbounded)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


class Compiler:
    def __init__(self, case: Case, facts: Facts, has_scratch: bool):
        self.case, self.facts, self.has_scratch = case, facts, has_scratch
        self.w = _Writer()
        self.slots: dict[str, int] = {}
        self.maps: dict[str, int] = {}
        self.steps: dict[int, StepInfo] = {}
        for name in CONSTANTS:
            self.slot(name)
        self._collect(case.setup)
        for steps in case.processes.values():
            self._collect(steps)

    def slot(self, name: str) -> int:
        return self.slots.setdefault(name, len(self.slots))

    def _collect(self, steps: list[Step]) -> None:
        """Every name a step can bind gets a slot (a name is bound or not at run time)."""
        for s in steps:
            for key, kind in OPS[s.op].args.items():
                if kind == "name" and key in s.args and s.op in ("file", "repeat", "pipe"):
                    self.slot(str(s.args[key]))
            if s.bind:
                self.slot(s.bind)
                if OPS[s.op].result == "addr":
                    self.maps.setdefault(s.bind, len(self.maps))
            self._collect(s.steps)

    # -- expressions -------------------------------------------------------------------------
    def expr(self, text: Any, flags_too: bool = False) -> list[int]:
        """Bytecode for an integer expression; one that cannot succeed fails with its message."""
        if isinstance(text, int):  # bool is an int too
            return [X_PUSH, _signed(int(text))]
        try:
            code: list[int] = []
            self._node(_tree(str(text)), code, repr(str(text)), flags_too)
            return code
        except ExprError as e:
            return [X_FAIL, self.w.string(str(e))]

    def _node(self, node: ast.AST, out: list[int], text: str, flags_too: bool) -> None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            out += [X_PUSH, _signed(node.value)]
        elif isinstance(node, ast.Name):
            self._name(node.id, out, text, flags_too)
        elif isinstance(node, ast.BinOp):
            self._node(node.left, out, text, flags_too)
            self._node(node.right, out, text, flags_too)
            out.append(X_BINOPS[type(node.op)])
        elif isinstance(node, ast.UnaryOp):
            self._node(node.operand, out, text, flags_too)
            out.append(X_UNOPS[type(node.op)])
        elif isinstance(node, ast.Call):
            fn = node.func.id  # type: ignore[attr-defined]
            for a in node.args:
                self._node(a, out, text, flags_too)
            out.append(X_CALLS[fn])
            if fn in ("min", "max", "pick"):
                out.append(len(node.args))
        elif isinstance(node, ast.Attribute):
            name = node.value.id  # type: ignore[attr-defined]
            if name not in self.slots:
                raise ExprError(f"{text}: {name!r} is not bound")
            out += [X_FIELD, self.slots[name], self.w.string(node.attr)]
        else:  # parse() accepted it, so this cannot be reached
            raise ExprError(f"{text}: not an expression")

    def _name(self, name: str, out: list[int], text: str, flags_too: bool) -> None:
        fallback = names.ALL_FLAGS.get(name) if flags_too else None
        if name in self.slots:
            out += [X_LOAD, self.slots[name], int(fallback is not None), _signed(fallback or 0)]
        elif fallback is not None:
            out += [X_PUSH, _signed(fallback)]
        else:
            raise ExprError(f"{text}: {name!r} is not bound")

    def put_expr(self, text: Any, flags_too: bool = False) -> None:
        code = self.expr(text, flags_too)
        self.w.put(self.w.string(repr(str(text))), len(code), *code)

    # -- data --------------------------------------------------------------------------------
    def layout(self, fmt: str, values: list[Any] | None) -> tuple[bytes, list[list[Any]]]:
        """The fields of a struct format: offset, size, kind, byte order (and for packing, the
        range and messages of each expression field). Raises struct.error for constant values
        struct refuses, and NotCompilable for half floats."""
        order = fmt[0] if fmt[:1] in "@=<>!" else ""
        big = int(order in ">!")
        fields: list[list[Any]] = []
        prefix = order
        for count, code in re.findall(r"(\d*)([a-zA-Z?])", fmt[len(order) :]):
            if code == "e":
                raise NotCompilable("half-float struct fields ('e')")
            n = int(count or 1)
            if code == "x":
                prefix += f"{n}x"
                continue
            singles = [(f"{n}{code}", n)] if code in "sp" else [(code, 0)] * n
            for token, width in singles:
                size = struct.calcsize(order + token)
                off = struct.calcsize(prefix + token) - size
                prefix += token
                fields.append([off, size, _kind(code), big, code, width])
        if values is None:
            return b"", fields
        packed = []
        for f, v in zip(fields, values, strict=True):
            f.append(v)
            expression = isinstance(v, str) and f[4] not in "sp"
            packed.append(0 if expression else (v.encode() if isinstance(v, str) else v))
        return struct.pack(fmt, *packed), fields

    def put_layout(self, fmt: str, values: list[Any] | None) -> None:
        template, fields = self.layout(fmt, values)
        self.w.put(self.w.string(template), struct.calcsize(fmt), len(fields))
        for off, size, kind, big, code, _width, *value in fields:
            self.w.put(off, size, kind, big)
            if values is None:
                continue
            lo, hi = _int_range(code, size)
            self.w.put(lo, hi, self.w.string(_range_message(fmt, code, lo, hi)))
            v = value[0]
            if isinstance(v, str) and code not in "sp":
                self.w.put(1)
                self.put_expr(v)
            else:
                self.w.put(0)

    def put_data(self, step: Step) -> str | None:
        """Encode the step's data argument; returns a struct error message, if struct refuses."""
        a = step.args
        if "format" in a:
            try:
                self.layout(a["format"], list(a["values"]))
            except struct.error as e:
                self.w.put(DATA_ARG, A_PACK, self.w.string(b""), 0, 0)
                return f"format {a['format']!r}: {e}"
            self.w.put(DATA_ARG, A_PACK)
            self.put_layout(a["format"], list(a["values"]))
            return None
        raw = a["data"].encode() if "data" in a else bytes.fromhex(a["hex"])
        self.w.put(DATA_ARG, A_PACK, self.w.string(raw), len(raw), 0)
        return None

    # -- expectations ------------------------------------------------------------------------
    def pattern(self, want: Any, env: set[str]) -> None:
        w = self.w
        if want is None:
            w.put(P_NONE)
        elif isinstance(want, bool) or (isinstance(want, int) and I64_MIN <= want <= I64_MAX):
            w.put(P_INT, int(want))
        elif isinstance(want, float):
            w.put(P_FLOAT, struct.unpack("<q", struct.pack("<d", want))[0])
        elif isinstance(want, dict) and set(want) == {"hex"}:
            w.put(P_HEX, w.string(bytes.fromhex(want["hex"])))
        elif isinstance(want, dict) and set(want) == {"fill"}:
            w.put(P_FILL, w.string(bytes.fromhex(want["fill"])))
        elif isinstance(want, dict) and set(want) == {"contains"}:
            w.put(P_CONTAINS, w.string(str(want["contains"]).encode()))
        elif isinstance(want, dict) and set(want) == {"data"} and isinstance(want["data"], str):
            w.put(P_DATA, w.string(want["data"].encode()))
        elif isinstance(want, dict) and want and set(want) <= set(COMPARATORS):
            w.put(P_CMP, len(want))
            for op, v in want.items():
                w.put(COMPARATORS[op])
                self.pattern(v, env)
        elif isinstance(want, dict):
            w.put(P_MAP, len(want))
            for k, v in want.items():
                w.put(w.string(str(k)))
                self.pattern(v, env)
        elif isinstance(want, list):
            w.put(P_LIST, len(want))
            for v in want:
                self.pattern(v, env)
        else:  # text, or an expression over bound names and flags (an int beyond 64 bits too)
            text = str(want)
            w.put(P_STR, w.string(text))
            try:
                env |= {n for n in parse(text).names if n in self.slots}
                self.put_expr(text, flags_too=True)
            except ExprError:
                w.put(w.string(repr(text)), 0)

    def expect_of(self, step: Step) -> Expect:
        expect = choose(step.expect, self.facts)
        if step.op == "repeat" and "until" in step.args and expect == SUCCESS:
            expect = Expect("errno", errno=tuple(_errno_list(step.args["until"])))
        return expect

    def put_ip(self, expect: Expect) -> None:
        """A signal expectation's ip: its comparators (an address alone is eq), each with its
        expression, resolved by the process before the step (as si_addr is)."""
        ip = expect.ip if expect.kind == "signal" else None
        wants = [] if ip is None else list(ip.items()) if isinstance(ip, dict) else [("eq", ip)]
        self.w.put(len(wants))
        for op, operand in wants:
            self.w.put(COMPARATORS[op])
            self.put_expr(operand)

    def put_expect(self, step: Step, expect: Expect) -> None:
        kind = {"success": K_SUCCESS, "errno": K_ERRNO, "signal": K_SIGNAL, "value": K_VALUE}
        w = self.w
        w.put(kind[expect.kind], len(expect.errno), *(names.ERRNO[e] for e in expect.errno))
        w.put(names.SIGNAL.get(expect.signal or "", 0), -1)
        if expect.kind == "signal" and expect.si_addr is not None:
            w.put(1)
            self.put_expr(expect.si_addr)
        else:
            w.put(0)
        env: set[str] = set()
        if expect.kind == "value":
            self.pattern(expect.value, env)
        self._env = sorted(env)[:16]

    # -- steps -------------------------------------------------------------------------------
    def block(self, steps: list[Step], setup: bool) -> None:
        self.w.put(len(steps))
        for s in steps:
            self.step(s, setup)

    def step(self, s: Step, setup: bool) -> None:
        sid = len(self.steps)
        w = self.w
        spec = OPS[s.op]
        keys = list(spec.args)
        args = {**spec.defaults, **s.args}
        expect = self.expect_of(s)
        want = expect.to_json()
        if expect.kind == "value":
            want["value"] = expect.value
        info = StepInfo(s, setup, want, {})
        self.steps[sid] = info
        w.put(sid, OP_CODES[s.op], w.string(s.label), s.line, _fd_args(keys))
        mark = len(w.words)
        w.put(0)
        count, runerror = 0, None
        for key, value in args.items():
            kind = spec.args[key]
            if key in ("data", "hex", "values", "steps", "until", "var") or (
                key == "format" and s.op != "load"
            ):
                continue
            index = keys.index(key)
            count += 1
            if kind == "int":
                w.put(index, A_EXPR)
                self.put_expr(value)
                info.arg_keys[index] = key
            elif kind.startswith("flags:") or kind in ("event", "signal"):
                w.put(index, A_EXPR)
                self._constant(key, kind, value)
                info.arg_keys[index] = key
            elif kind == "format":
                w.put(index, A_FMT)
                self.put_layout(value, None)
            elif kind in ("file", "name"):
                w.put(index, A_STR, self.slot(str(value)))
            else:  # path, text of memfd_create
                w.put(index, A_STR, w.string(str(value)))
        if any(k in s.args for k in ("data", "hex")) or ("format" in s.args and s.op != "load"):
            count += 1
            runerror = self.put_data(s)
        w.words[mark] = count
        w.put(self.slots[s.bind] if s.bind else -1)
        map_index = self.maps.get(s.bind or "", -1) if spec.result == "addr" else -1
        w.put(map_index)
        if map_index >= 0:
            self.put_expr(s.args.get("length", s.args.get("new_length", 0)))
        self.put_expect(s, expect)
        w.put(w.string(runerror) + 1 if runerror else 0)
        w.put(len(self._env), *(self.slots[n] for n in self._env))
        until = _errno_list(s.args["until"]) if "until" in s.args else []
        w.put(len(until), *(names.ERRNO[e] for e in until))
        w.put(self.slot(s.args["var"]) if "var" in s.args else -1)
        self.put_ip(expect)
        if s.op in ("fork", "repeat", "thread"):
            w.put(1)
            self.block(s.steps, setup and s.op == "repeat")
        else:
            w.put(0)

    def _constant(self, key: str, kind: str, value: Any) -> None:
        if kind == "event":
            number = self.case.events[value]
        elif kind == "signal":
            number = names.SIGNAL[value]
        else:
            try:
                number = flags_value(value, kind[6:])
            except ExprError as e:
                self.w.put(self.w.string(repr(str(value))), 2, X_FAIL, self.w.string(str(e)))
                return
        self.w.put(self.w.string(repr(str(value))), 2, X_PUSH, _signed(number))

    # -- the whole program -------------------------------------------------------------------
    def compile(self) -> Program:
        w = self.w
        table = _tables()
        assert not w.strings and not w.words  # the tables' string indexes are the first ones
        w.words.extend(table.words)
        w.words[1] = self.case.address_space_pages  # the tables' default: the case's own
        w.strings.update(table.strings)
        w.put(w.string("main" if list(self.case.processes) == ["main"] else "setup"))
        self.block(self.case.setup, True)
        w.put(len(self.case.processes))
        for name, steps in self.case.processes.items():
            w.put(w.string(name))
            self.block(steps, False)
        # The header refers to strings: intern its names before the table is written.
        head = [len(self.slots)]
        for name in self.slots:
            const = CONSTANTS.get(name)
            head += [w.string(name), int(const is not None), _signed(const or 0)]
        head += [len(self.maps), *(w.string(n) for n in self.maps)]
        words = [MAGIC, len(w.strings), *table.string_words]
        for s in list(w.strings)[len(table.strings) :]:  # a dict keeps insertion order
            words += _string_words(s)
        words += head + w.words
        words += _core_trailer(self.case)
        program = array("q", words).tobytes()
        return Program(program, self.steps, list(self.slots), list(self.maps))


def _core_trailer(case: Case) -> list[int]:
    """The program's last words: whether the case's processes may dump core (else RLIMIT_CORE
    0 and not dumpable), their RLIMIT_CORE (-1: unlimited) and the coredump_filter they start
    with (-1: the kernel's)."""
    core = case.provision.core if case.provision else None
    return [0, 0, -1] if core is None else [1, core.limit, core.filter]


@functools.lru_cache(maxsize=4096)
def _tree(text: str) -> ast.expr:
    """The syntax tree of an expression the case language accepts (ExprError if it does not):
    the same texts (PAGE, 2 * PAGE) recur in nearly every case."""
    parse(text)
    return ast.parse(text.strip(), mode="eval").body


@dataclass(frozen=True)
class _Tables:
    """What starts every program: the limits, the signal and si_code tables, their strings."""

    words: tuple[int, ...]
    strings: dict[bytes, int]
    string_words: tuple[int, ...]  # the strings as the program's string table holds them


@functools.cache
def _tables() -> _Tables:
    w = _Writer()
    w.put(MAX_CASE_PROCESSES, CASE_ADDRESS_SPACE_PAGES)
    sigs = sorted(names.SIGNAL_NAME.items())
    w.put(len(sigs), *(x for n, name in sigs for x in (n, w.string(name))))
    codes = [
        (names.SIGNAL[sig], code, w.string(name))
        for sig, table in names.SI_CODE.items()
        for name, code in table.items()
    ] + [(0, code, w.string(name)) for name, code in names.GENERIC_SI_CODE.items()]
    w.put(len(codes), *(x for c in codes for x in c))
    encoded = tuple(x for s in w.strings for x in _string_words(s))
    return _Tables(tuple(w.words), dict(w.strings), encoded)


def _string_words(s: bytes) -> list[int]:
    """A string as the program's string table holds it: its length, then its bytes padded."""
    return [len(s), *array("q", s + b"\0" * (-len(s) % 8))]


def _kind(code: str) -> int:
    if code in "bhilqn":
        return F_SIGNED
    if code in "BHILQNP":
        return F_UNSIGNED
    if code in "fd":
        return F_FLOAT
    return {"?": F_BOOL, "s": F_TEXT, "p": F_PASCAL, "c": F_CHAR}[code]


def _int_range(code: str, size: int) -> tuple[int, int]:
    if code in "bhilqn":
        return max(I64_MIN, -(1 << (8 * size - 1))), min(I64_MAX, (1 << (8 * size - 1)) - 1)
    if code in "BHILQNP":
        return 0, min(I64_MAX, (1 << (8 * size)) - 1)
    return I64_MIN, I64_MAX


def _range_message(fmt: str, code: str, lo: int, hi: int) -> str:
    """What struct says of a value just outside the field's range (the executor's message)."""
    order = fmt[0] if fmt[:1] in "@=<>!" else ""
    for probe in (hi + 1, lo - 1):
        try:
            struct.pack(order + code, probe)
        except struct.error as e:
            return f"format {fmt!r}: {e}"
    return f"format {fmt!r}: argument out of range"


def _fd_args(keys: list[str]) -> int:
    """A bit per descriptor argument (fd, fd_in, fd_out, fd_src): the executor refuses its
    report socket in any of them."""
    return sum(1 << i for i, k in enumerate(keys) if k == "fd" or k.startswith("fd_"))


def _errno_list(until: dict[str, Any]) -> list[str]:
    errnos = until["errno"]
    return errnos if isinstance(errnos, list) else [errnos]


def choose(expects: Iterable[Expect], facts: Facts) -> Expect:
    """The first entry whose ``when`` holds (an entry without ``when`` always does)."""
    for e in expects:
        if e.when is None or holds(e.when, facts):
            return e
    return Expect("success")


def flags_value(value: Any, family: str) -> int:
    table = names.FLAG_FAMILIES[family]
    total = 0
    for item in value if isinstance(value, list) else [value]:
        total |= item if isinstance(item, int) else parse(item).eval(table)
    return total
