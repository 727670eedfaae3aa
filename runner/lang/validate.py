"""From YAML documents to ``Case`` objects, with every problem located at file:line:column.

Checks: keys and types, unknown operations and arguments, flag/errno/signal/si_code names,
expressions (whitelisted, names bound before use), events, and steps after a step that expects
the process to die.
"""

from __future__ import annotations

import difflib
import re
import struct
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from runner.errors import Problem
from runner.lang import names
from runner.lang.conditions import (
    KCONFIG_HELP,
    KCONFIG_NAME,
    KERNEL_SPEC_HELP,
    valid_kernel_spec,
)
from runner.lang.expr import ExprError, parse
from runner.lang.model import SUCCESS, Case, Expect, Provision, Step
from runner.lang.ops import (
    ADDRESS_SPACE_RANGE,
    BACKINGS,
    CASE_KEYS,
    COMPARATORS,
    CONDITION_KEYS,
    CONSTANTS,
    DEFAULT_TIMEOUT,
    DISK_MODELS,
    EXPECT_KEYS,
    OPS,
    PROCESS_NAME,
    PROCESS_NAME_TEXT,
    SPECIAL_MAPPINGS,
    STEP_KEYS,
    SYSTEM_PATHS,
    OpSpec,
)
from runner.lang.powercut import check as check_power_cut
from runner.lang.provision import read_provision
from runner.lang.yamlsafe import PosDict, PosList

ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
PROCESS_RE = re.compile(PROCESS_NAME)
RESERVED = frozenset(CONSTANTS)


def _pos_of(node: Any, key: Any = None) -> tuple[int, int]:
    if isinstance(node, PosDict) and key is not None and key in node.key_pos:
        return node.key_pos[key]
    if isinstance(node, PosList) and isinstance(key, int) and key < len(node.item_pos):
        return node.item_pos[key]
    return getattr(node, "pos", (1, 1))


class _Scope:
    """Names bound so far in one process, and whether the process is already dead; the threads
    started and not joined yet, by name: the list of steps that started each (a thread is joined
    in that same list), the names its steps bind (bound after the join) and whether they end the
    process."""

    def __init__(self, bound: set[str], dead: bool = False):
        self.bound, self.dead = bound, dead
        self.threads: dict[str, tuple[int, set[str], bool]] = {}

    def child(self) -> _Scope:
        return _Scope(set(self.bound))


class CaseValidator:
    """Validates one YAML document as a case; ``problems`` collects everything wrong."""

    def __init__(self, file: str, doc: Any, line: int):
        self.file, self.doc, self.line = file, doc, line
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []  # not errors: the case still runs
        self.events: dict[str, int] = {}
        self.uses_file = False
        self.files: set[str] = set()
        self.provisioned: set[str] = set()  # files the harness makes (provision.files)
        self.foreign_names: dict[str, list[str]] = {}
        self.process_refs: list[tuple[Any, str, str]] = []  # (node, key, name): checked last
        self.thread_names: set[str] = set()  # one name per thread in the whole case

    def err(self, node: Any, key: Any, message: str, keyname: str = "") -> None:
        line, col = _pos_of(node, key)
        if not keyname and isinstance(key, int) and isinstance(node, list):
            keyname = f"item {key + 1}"
        label = keyname or (str(key) if key is not None else "")
        self.problems.append(Problem(self.file, line, col, message, label))

    # -- the case --------------------------------------------------------------------------
    def validate(self) -> Case | None:
        doc = self.doc
        if not isinstance(doc, dict):
            self.err(doc, None, "a case must be a mapping")
            return None
        for key in doc:
            if key not in CASE_KEYS:
                hint = did_you_mean(key, CASE_KEYS)
                self.err(doc, key, f"unknown key{hint}; expected one of {', '.join(CASE_KEYS)}")
        for key, required in CASE_KEYS.items():
            if required and key not in doc:
                self.err(doc, None, f"missing required key {key!r}")
        case_id = self._string(doc, "id")
        if case_id is not None and not ID_RE.fullmatch(case_id):
            self.err(doc, "id", f"{case_id!r} is not kebab-case (a-z, 0-9, single hyphens)")
        title = self._string(doc, "title")
        claim = self._string(doc, "claim")
        refs = self._string_list(doc, "refs")
        tags = self._string_list(doc, "tags")
        for tag in tags:
            if not NAME_RE.fullmatch(tag.replace("-", "_")):
                self.err(doc, "tags", f"tag {tag!r} must be a word (letters, digits, _ or -)")
        requires = self._condition(doc, "requires")
        backings = self._backings(doc)
        timeout = self._timeout(doc)
        address_space = self._address_space(doc)
        provision = read_provision(doc, self.err, self._provisioned_file)
        setup_scope = _Scope(set())
        setup = self._steps(doc, "setup", setup_scope, "") if "setup" in doc else []
        processes = self._processes(doc, setup_scope)
        self._check_process_refs(processes)
        self._check_core_steps(provision, [*setup, *(s for p in processes.values() for s in p)])
        after_reboot = self._after_reboot(doc, setup, processes)
        if self.problems:
            return None
        self._warn_unposted([*setup, *(s for steps in processes.values() for s in steps)])
        return Case(
            id=case_id or "",
            title=title or "",
            file=self.file,
            line=self.line,
            claim=claim,
            refs=refs,
            tags=tags,
            requires=requires,
            backings=backings,
            timeout=timeout,
            address_space=address_space,
            setup=setup,
            processes=processes,
            events=self.events,
            uses_file=self.uses_file or _needs_folder(provision),
            provision=provision,
            foreign_names=self.foreign_names,
            after_reboot=after_reboot,
        )

    def _after_reboot(
        self, doc: dict, setup: list[Step], processes: dict[str, list[Step]]
    ) -> list[Step]:
        """The steps of the boot after a power cut: no name bound before the cut survives it
        (fds, mappings); files do, by name (``open: {file: f}``)."""
        steps = self._steps(doc, "after_reboot", _Scope(set()), "") if "after_reboot" in doc else []

        def at(line: int, what: str, message: str) -> None:
            self.problems.append(Problem(self.file, line or self.line, 1, message, what))

        check_power_cut(doc, setup, processes, steps, at)
        return steps

    def _string(self, node: dict, key: str) -> str | None:
        value = node.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.err(node, key, "must be a non-empty string")
            return None
        return value

    def _string_list(self, node: dict, key: str) -> list[str]:
        value = node.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.err(node, key, "must be a list of strings")
            return []
        return list(value)

    def _backings(self, doc: dict) -> list[str] | None:
        value = doc.get("backings")
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.err(doc, "backings", "must be a backing name or a non-empty list of them")
            return None
        for item in items:
            if item not in BACKINGS:
                self.err(doc, "backings", f"unknown backing {item!r}; one of {', '.join(BACKINGS)}")
        return list(items)

    def _address_space(self, doc: dict) -> int | None:
        """Bytes of RLIMIT_AS headroom: an integer or an expression over PAGE, in range."""
        value = doc.get("address_space")
        if value is None:
            return None
        lo, hi = ADDRESS_SPACE_RANGE
        try:
            size = value if type(value) is int else parse(str(value)).eval(CONSTANTS)
        except ExprError as e:
            self.err(doc, "address_space", str(e))
            return None
        if not isinstance(size, int) or not lo <= size <= hi:
            self.err(doc, "address_space", f"{value!r}: bytes from {lo} to {hi} (1 MiB..64 GiB)")
            return None
        return size

    def _timeout(self, doc: dict) -> float:
        value = doc.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
            self.err(doc, "timeout", "must be a number of seconds, above 0 and at most 3600")
            return DEFAULT_TIMEOUT
        return float(value)

    def _processes(self, doc: dict, setup_scope: _Scope) -> dict[str, list[Step]]:
        has_steps, has_procs = "steps" in doc, "processes" in doc
        if has_steps == has_procs:
            self.err(doc, None, "a case needs exactly one of 'steps' and 'processes'")
            return {}
        if has_steps:
            return {"main": self._steps(doc, "steps", setup_scope.child(), "")}
        procs = doc["processes"]
        if not isinstance(procs, dict) or not procs:
            self.err(doc, "processes", "must map process names to {steps: [...]}")
            return {}
        out: dict[str, list[Step]] = {}
        for name, body in procs.items():
            if not isinstance(name, str) or not PROCESS_RE.fullmatch(name) or name == "setup":
                self.err(
                    procs,
                    name,
                    f"a process name is {PROCESS_NAME_TEXT} ({PROCESS_NAME}), not 'setup'",
                )
                continue
            if not isinstance(body, dict) or set(body) != {"steps"}:
                self.err(procs, name, "a process is a mapping with the one key 'steps'")
                continue
            out[name] = self._steps(body, "steps", setup_scope.child(), "")
        return out

    # -- steps -----------------------------------------------------------------------------
    def _steps(self, parent: Any, key: Any, scope: _Scope, prefix: str) -> list[Step]:
        items = parent[key]
        if not isinstance(items, list) or not items:
            self.err(parent, key, "must be a non-empty list of steps")
            return []
        steps = []
        running = set(scope.threads)
        for i, raw in enumerate(items):
            if scope.dead:
                self.err(
                    items,
                    i,
                    "comes after a step that expects the process to die",
                    f"step {prefix}{i + 1}",
                )
                scope.dead = False  # say it once per list
            step = self._step(raw, items, i, scope, f"{prefix}{i + 1}")
            if step is not None:
                steps.append(step)
        for name in set(scope.threads) - running:
            if not scope.dead:  # a list that ends the process ends its threads with it
                where = f"thread {name}"
                self.err(parent, key, f"thread {name!r} is never joined in these steps", where)
            del scope.threads[name]
        return steps

    def _step(self, raw: Any, items: list, i: int, scope: _Scope, label: str) -> Step | None:
        if not isinstance(raw, PosDict):
            self.err(items, i, "a step must be a mapping with one operation key", f"step {label}")
            return None
        ops = [k for k in raw if k in OPS]
        if len(ops) != 1:
            others = [f"{k}{did_you_mean(k, OPS)}" for k in raw if k not in STEP_KEYS]
            what = f"found {', '.join(ops)}" if ops else f"unknown: {', '.join(others) or 'none'}"
            self.err(items, i, f"a step needs exactly one operation ({what})", f"step {label}")
            return None
        spec = OPS[ops[0]]
        args = self._args(raw, spec)
        if args is None:
            return None
        line = _pos_of(items, i)[0]
        sub: list[Step] = []
        self._check_args(raw, spec, args, scope)
        if spec.name in ("fork", "repeat", "thread") and not isinstance(args.get("steps"), list):
            pass  # _check_args has said what is missing
        elif spec.name == "fork":
            sub = self._steps(args, "steps", scope.child(), f"{label}.")
        elif spec.name == "thread":
            sub = self._thread(raw, items, args, scope, label)
        elif spec.name == "repeat":
            inner = scope.child()
            var = args.get("var")
            if not isinstance(var, str):
                var = None  # _check_args has said what is wrong with it
            if var is not None:
                inner.bound.add(var)
            sub = self._steps(args, "steps", inner, f"{label}.")
            scope.bound |= inner.bound - {var}
            scope.dead = scope.dead or inner.dead
        if spec.name == "join":
            self._join(raw, items, args, scope)
        expect = self._expect(raw, spec, scope)
        bind = raw.get("as")
        if bind is not None:
            if not isinstance(bind, str) or not NAME_RE.fullmatch(bind) or bind in RESERVED:
                self.err(raw, "as", "must be a name (letters, digits, _), not PAGE")
            elif spec.result == "none":
                self.err(raw, "as", f"'{spec.name}' has no result to bind")
            else:
                scope.bound.add(bind)
        note = raw.get("note", "")
        if not isinstance(note, str):
            self.err(raw, "note", "must be a string")
        if expect and all(e.kind == "signal" for e in expect):
            scope.dead = True
        return Step(spec.name, args, label, line, bind, expect, note or "", sub)

    def _thread(
        self, raw: dict, items: list, args: PosDict, scope: _Scope, label: str
    ) -> list[Step]:
        """A thread's steps see what was bound before it starts; what they bind is bound after
        its join. Its name is the case's only thread of that name."""
        inner = scope.child()
        sub = self._steps(args, "steps", inner, f"{label}.")
        if ("stack" in args) != ("stack_size" in args):
            self.err(raw, "thread", "'stack' (its lowest address) and 'stack_size' go together")
        name = args.get("name")
        if not isinstance(name, str) or not PROCESS_RE.fullmatch(name):
            return sub  # _check_args has said what is wrong with it
        if name in self.thread_names:
            self.err(args, "name", f"a second thread named {name!r}: a thread's name is its own")
        self.thread_names.add(name)
        scope.threads[name] = (id(items), inner.bound, inner.dead)
        return sub

    def _join(self, raw: dict, items: list, args: PosDict, scope: _Scope) -> None:
        name = args.get("name")
        started = scope.threads.get(name) if isinstance(name, str) else None
        if not isinstance(name, str) or started is None or started[0] != id(items):
            self.err(
                raw,
                "join",
                f"{name!r} is not a thread started earlier in this list of steps and still "
                "running (a thread is joined by the steps that started it)",
            )
            return
        del scope.threads[name]
        scope.bound |= started[1]
        scope.dead = scope.dead or started[2]

    def _args(self, raw: PosDict, spec: OpSpec) -> PosDict | None:
        value = raw[spec.name]
        if isinstance(value, PosDict):  # the loader makes every mapping one
            args = PosDict(value)
            args.pos, args.key_pos, args.value_pos = (
                value.pos,
                dict(value.key_pos),
                dict(value.value_pos),
            )
        else:
            args = PosDict()
            args.pos, args.key_pos, args.value_pos = _pos_of(raw, spec.name), {}, {}
            if value is not None:
                if spec.primary is None:
                    self.err(raw, spec.name, f"takes a mapping of {', '.join(spec.args)}")
                    return None
                args[spec.primary] = value
                args.key_pos[spec.primary] = args.value_pos[spec.primary] = raw.value_pos[spec.name]
        for key in raw:
            if key == spec.name or key in STEP_KEYS:
                continue
            if key not in spec.args:
                hint = did_you_mean(key, [*spec.args, *STEP_KEYS])
                takes = ", ".join(spec.args) or "no arguments"
                beside = ", ".join(sorted(STEP_KEYS))
                self.err(
                    raw,
                    key,
                    f"unknown key for '{spec.name}'{hint}; it takes {takes}; "
                    f"a step also takes {beside}",
                )
            elif key in args:
                self.err(raw, key, "given twice (beside and under the operation)")
            else:
                args[key] = raw[key]
                args.key_pos[key], args.value_pos[key] = raw.key_pos[key], raw.value_pos[key]
        return args

    def _check_args(self, raw: dict, spec: OpSpec, args: PosDict, scope: _Scope) -> None:
        for key in args:
            if key not in spec.args:
                hint = did_you_mean(key, spec.args)
                takes = ", ".join(spec.args) or "no arguments"
                self.err(args, key, f"unknown argument of '{spec.name}'{hint}; it takes {takes}")
        for key in spec.required - set(args):
            self.err(raw, spec.name, f"'{spec.name}' needs '{key}'")
        for key, value in args.items():
            kind = spec.args.get(key)
            if kind:
                self._arg(args, key, kind, value, scope)
        if spec.data:
            self._check_data(raw, spec, args, required=True)
        elif "data" in spec.args:
            self._check_data(raw, spec, args, required=False)
        if spec.name == "load" and "length" in args and "format" in args:
            self.err(args, "format", "give either 'length' or 'format', not both")
        if spec.name == "open" and ("file" in args) == ("path" in args):
            self.err(raw, spec.name, "'open' needs exactly one of 'file' and 'path'")
        if spec.name == "prctl" and {"name", "arg5"} <= set(args):
            self.err(args, "name", "'name' is the string arg5 points to: give one of them")
        for one, other in ONE_OF.get(spec.name, ()):
            if (one in args) == (other in args):
                self.err(raw, spec.name, f"'{spec.name}' needs exactly one of {one!r}, {other!r}")

    def _check_data(self, raw: dict, spec: OpSpec, args: dict, required: bool) -> None:
        given = [k for k in ("data", "hex", "format", "addr") if k in args]
        if "length" in args and spec.name == "write":
            required = False  # a write of `length` zero bytes, or of memory at `addr`
        if "addr" in args and spec.name == "write" and "length" not in args:
            self.err(raw, spec.name, "a write from memory at 'addr' needs 'length'")
        if spec.name in ("store", "proc_mem_write"):
            given = [k for k in given if k != "addr"]
        if len(given) > 1 or (required and not given):
            self.err(raw, spec.name, "needs exactly one of data, hex, or format with values")
        if ("format" in args) != ("values" in args):
            self.err(raw, spec.name, "'format' and 'values' go together")
        elif "format" in args and isinstance(args.get("values"), list):
            self._check_values(args)

    def _check_values(self, args: dict) -> None:
        fields = format_fields(args["format"])
        if fields is None:
            return
        if len(fields) != len(args["values"]):
            self.err(
                args,
                "values",
                f"the format has {len(fields)} fields, {len(args['values'])} values given",
            )

    def _arg(self, args: dict, key: str, spec: str, value: Any, scope: _Scope) -> None:
        """Check ``value`` against its kind (ops.ARG_KINDS: the kinds' one registry)."""
        kind, _, family = spec.partition(":")
        if kind in _VALUE_CHECKS:
            problem = _VALUE_CHECKS[kind](value)
            if problem is not None:
                self.err(args, key, problem)
                return
        if kind == "int":
            self._expr(args, key, value, scope)
        elif kind == "flags":
            self._flags(args, key, value, family)
        elif kind == "file":
            if not isinstance(value, str) or value not in self.files:
                self.err(args, key, f"{value!r} is not a file made by a 'file' step before")
        elif kind == "name":
            self._new_name(args, key, value, scope)
        elif kind == "event" and value not in self.events:
            self.events[value] = len(self.events)
        elif kind == "until":
            self._until(args, key, value)
        elif kind == "process":
            self.process_refs.append((args, key, value))

    def _until(self, args: dict, key: str, value: Any) -> None:
        errnos = value.get("errno") if isinstance(value, dict) else None
        if not isinstance(value, dict) or set(value) != {"errno"}:
            self.err(args, key, "until is {errno: NAME} or {errno: [NAME, ...]}")
            return
        for e in errnos if isinstance(errnos, list) else [errnos]:
            if not isinstance(e, str) or e not in names.ERRNO:
                self.err(args, key, f"unknown errno name {e!r}{did_you_mean(e, names.ERRNO)}")

    def _file_name_ok(self, node: Any, key: Any, value: Any) -> bool:
        if not isinstance(value, str) or not FILE_NAME_RE.fullmatch(value) or value in (".", ".."):
            self.err(node, key, "a file name is letters, digits, '_', '-', '.' (no '/', not '..')")
            return False
        if value in RESERVED or not NAME_RE.fullmatch(value):
            self.err(node, key, "a file name is also bound as its fd: it must be a name")
            return False
        return True

    def _provisioned_file(self, node: Any, key: Any, value: Any) -> bool:
        """A provision.files name: opened by name (open: {file: NAME}), not bound as an fd."""
        if not self._file_name_ok(node, key, value):
            return False
        self.files.add(value)
        self.provisioned.add(value)
        return True

    def _new_name(self, args: dict, key: str, value: Any, scope: _Scope) -> None:
        if key == "file":
            if not self._file_name_ok(args, key, value):
                return
            if value in self.provisioned:
                self.err(args, key, f"{value!r} is made by provision.files already")
                return
            self.files.add(value)
            self.uses_file = True
        elif not isinstance(value, str) or not NAME_RE.fullmatch(value) or value in RESERVED:
            self.err(args, key, "must be a name (letters, digits, _), not PAGE")
            return
        scope.bound.add(value)

    def _expr(
        self, node: Any, key: Any, value: Any, scope: _Scope, allowed: set[str] | None = None
    ) -> None:
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.err(node, key, f"{value!r} is not an integer or an expression")
            return
        if isinstance(value, int):
            return
        try:
            expr = parse(value)
        except ExprError as e:
            self.err(node, key, str(e))
            return
        known = scope.bound | RESERVED | (allowed or set())
        for name in sorted(expr.names - known):
            self.err(node, key, f"{name!r} is not bound before this step")

    def _flags(self, node: Any, key: Any, value: Any, family: str) -> None:
        table = names.FLAG_FAMILIES[family]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int | str):
                self.err(node, key, f"{item!r} is not a flag name or number")
                continue
            if isinstance(item, int):
                continue
            try:
                expr = parse(item)
            except ExprError as e:
                self.err(node, key, str(e))
                continue
            for name in sorted(expr.names - set(table)):
                arches = names.elsewhere(family, name)
                if arches:
                    self.foreign_names[name] = arches
                    continue
                other = names.family_of(name)
                hint = f" (a {other}_ name)" if other else did_you_mean(name, table)
                self.err(node, key, f"unknown {family}_ flag {name!r}{hint}")

    # -- expectations ----------------------------------------------------------------------
    def _expect(self, raw: dict, spec: OpSpec, scope: _Scope) -> tuple[Expect, ...]:
        if "expect" not in raw:
            return (SUCCESS,)
        value = raw["expect"]
        entries = value if isinstance(value, list) else [value]
        out = []
        for i, entry in enumerate(entries):
            where: tuple[Any, Any] = (entries, i) if isinstance(value, list) else (raw, "expect")
            if not isinstance(entry, dict):
                self.err(*where, "an expectation is a mapping")
                continue
            expect = self._expect_entry(entry, spec, scope)
            if expect:
                out.append(expect)
        if isinstance(value, list) and any(e.when is None for e in out[:-1]):
            self.err(raw, "expect", "only the last entry of the list may go without 'when'")
        return tuple(out) or (SUCCESS,)

    def _expect_entry(self, entry: dict, spec: OpSpec, scope: _Scope) -> Expect | None:
        for key in entry:
            if key not in EXPECT_KEYS:
                hint = did_you_mean(key, EXPECT_KEYS)
                known = ", ".join(sorted(EXPECT_KEYS))
                self.err(entry, key, f"unknown expectation key{hint}; one of {known}")
        when = self._condition(entry, "when") if "when" in entry else None
        kinds = [k for k in ("errno", "signal", "value") if k in entry]
        if len(kinds) > 1:
            self.err(entry, None, f"expects both {kinds[0]} and {kinds[1]}")
            return None
        if ("si_code" in entry or "si_addr" in entry or "ip" in entry) and "signal" not in entry:
            self.err(entry, None, "si_code, si_addr and ip go with signal")
        if not kinds:
            return Expect("success", when=when)
        kind = kinds[0]
        if kind == "errno":
            errnos = entry["errno"] if isinstance(entry["errno"], list) else [entry["errno"]]
            for e in errnos:
                if not isinstance(e, str) or e not in names.ERRNO:
                    hint = did_you_mean(e, names.ERRNO)
                    self.err(entry, "errno", f"unknown errno name {e!r}{hint}")
            return Expect("errno", when=when, errno=tuple(str(e) for e in errnos))
        if kind == "signal":
            return self._expect_signal(entry, when, scope)
        if spec.result == "none":
            self.err(entry, "value", f"'{spec.name}' has no result to compare")
        self._check_value(entry, "value", entry["value"], scope)
        return Expect("value", when=when, value=entry["value"])

    def _expect_signal(self, entry: dict, when: Any, scope: _Scope) -> Expect | None:
        sig = entry["signal"]
        if not isinstance(sig, str) or sig not in names.SIGNAL:
            self.err(entry, "signal", f"unknown signal {sig!r}")
            return None
        code = entry.get("si_code")
        if code is not None and (
            not isinstance(code, str) or names.si_code_value(sig, code) is None
        ):
            known = ", ".join(names.SI_CODE.get(sig, {})) or "SI_USER, SI_KERNEL"
            self.err(entry, "si_code", f"{code!r} is not an si_code of {sig} ({known})")
        if "si_addr" in entry:
            self._expr(entry, "si_addr", entry["si_addr"], scope)
        if "ip" in entry:
            self._ip(entry, entry["ip"], scope)
        return Expect(
            "signal",
            when=when,
            signal=sig,
            si_code=code,
            si_addr=entry.get("si_addr"),
            ip=entry.get("ip"),
        )

    def _ip(self, entry: dict, value: Any, scope: _Scope) -> None:
        """An instruction address: an expression, or comparators (ge, lt, ...) of them."""
        if not isinstance(value, dict):
            self._expr(entry, "ip", value, scope)
            return
        if not value or not set(value) <= COMPARATORS:
            self.err(entry, "ip", "ip is an address expression or comparators of them: {ge: a}")
            return
        for op, operand in value.items():
            self._expr(value, op, operand, scope)

    def _check_value(self, node: Any, key: Any, value: Any, scope: _Scope) -> None:
        if isinstance(value, dict):
            if set(value) in ({"hex"}, {"data"}):
                if "hex" in value and not _is_hex(value["hex"]):
                    self.err(value, "hex", "must be an even number of hex digits")
                return
            if set(value) == {"contains"}:
                if not isinstance(value["contains"], str) or not value["contains"]:
                    self.err(value, "contains", "contains is the text looked for, e.g. 'anon:'")
                return
            if set(value) == {"fill"}:
                if not _is_hex(value["fill"]) or not value["fill"]:
                    self.err(value, "fill", "a fill is a pattern of hex digits, e.g. '00'")
                return
            cmp = set(value) & COMPARATORS
            if cmp and cmp != set(value):
                self.err(node, key, "comparators (eq ne gt ge lt le) cannot mix with field names")
            for k, v in value.items():
                self._check_value(value, k, v, scope)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._check_value(value, i, v, scope)
        elif value is not None and not isinstance(value, int | float | bool | str):
            self.err(node, key, f"{value!r} cannot be compared")

    def _check_process_refs(self, processes: dict[str, list[Step]]) -> None:
        """A process named by a step (reopen's process) is one the case has: main, a member of
        processes, or a fork child by its `as`."""
        known = set(processes) | {
            s.bind for steps in processes.values() for s in _walk(steps) if s.op == "fork"
        }
        for node, key, name in self.process_refs:
            if name not in known:
                have = ", ".join(sorted(n for n in known if n)) or "none"
                self.err(node, key, f"{name!r} is not a process of this case ({have})")

    def _check_core_steps(self, provision: Provision | None, steps: list[Step]) -> None:
        """A ``core`` step reads a core the harness has the kernel write: provision.core."""
        if provision is not None and provision.core is not None:
            return
        for step in _walk(steps):
            if step.op == "core":
                message = "core reads a core dump, which only a case with provision.core gets"
                self.problems.append(Problem(self.file, step.line, 1, message, "core"))

    def _warn_unposted(self, steps: list[Step]) -> None:
        """A ``wait_for`` whose event no step posts waits until the case's timeout: legal (a
        case may mean it), so a warning, not a problem."""
        posted = {s.args.get("event") for s in _walk(steps) if s.op == "post"}
        for step in _walk(steps):
            event = step.args.get("event")
            if step.op == "wait_for" and event not in posted:
                message = f"no step posts {event!r}: this waits until the case's timeout"
                self.warnings.append(Problem(self.file, step.line, 1, message, "wait_for"))

    # -- conditions ------------------------------------------------------------------------
    def _condition(self, node: dict, key: str) -> dict | None:
        cond = node.get(key)
        if cond is None:
            return None
        if not isinstance(cond, dict) or not cond:
            self.err(node, key, f"a condition is a mapping of {', '.join(sorted(CONDITION_KEYS))}")
            return None
        for k, v in cond.items():
            if k not in CONDITION_KEYS:
                hint = did_you_mean(k, CONDITION_KEYS)
                known = ", ".join(sorted(CONDITION_KEYS))
                self.err(cond, k, f"unknown condition{hint}; one of {known}")
            elif k == "kernel" and not valid_kernel_spec(v):
                self.err(cond, k, f"{v!r}: {KERNEL_SPEC_HELP}")
            elif k == "sysctl":
                self._sysctl(cond, v)
            elif k == "kconfig":
                self._kconfig(cond, v)
            elif k == "root" and not isinstance(v, bool):
                self.err(cond, k, "must be true or false")
            elif k == "backing" and any(b not in BACKINGS for b in _as_list(v)):
                self.err(cond, k, f"unknown backing in {v!r}")
            elif k == "disk" and any(d not in DISK_MODELS for d in _as_list(v)):
                self.err(cond, k, f"{v!r}: the disk model is {' or '.join(DISK_MODELS)}")
            elif k in ("fs", "arch", "syscall") and not all(
                isinstance(x, str) for x in _as_list(v)
            ):
                self.err(cond, k, "must be a name or a list of names")
        return dict(cond)

    def _sysctl(self, cond: dict, value: Any) -> None:
        if not isinstance(value, dict) or not value:
            self.err(cond, "sysctl", "must map keys like vm.max_map_count to a value")
            return
        for key, want in value.items():
            if not isinstance(key, str) or not SYSCTL_RE.fullmatch(key):
                self.err(value, key, "a sysctl key is dotted words, e.g. vm.mmap_min_addr")
            elif isinstance(want, dict) and not (want and set(want) <= COMPARATORS):
                self.err(value, key, "compare with eq ne gt ge lt le, or give the value")
            elif isinstance(want, dict) and not all(type(v) is int for v in want.values()):
                self.err(value, key, "a sysctl comparison takes an integer")
            elif not isinstance(want, dict | str | int) or isinstance(want, bool):
                self.err(value, key, "a sysctl value is a string or an integer")

    def _kconfig(self, cond: dict, value: Any) -> None:
        items = list(value) if isinstance(value, dict | list) else [value]
        if not items:
            self.err(cond, "kconfig", KCONFIG_HELP)
        for name in items:
            if not isinstance(name, str) or not KCONFIG_NAME.fullmatch(name):
                self.err(cond, "kconfig", f"{name!r} is not a CONFIG_ name; {KCONFIG_HELP}")
        if isinstance(value, dict):
            for name, want in value.items():
                if isinstance(want, bool) or not isinstance(want, str | int) or want == "":
                    self.err(value, name, f"{want!r}: give y, m, n or the option's value")


# Arguments of which a step gives exactly one: text or a raw pointer to it, an address or a name.
ONE_OF = {"memfd_create": [("name", "name_addr")], "proc_maps": [("addr", "path")]}
SYSCTL_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'expect'?)`` for a misspelt name, else nothing."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _walk(steps: list[Step]) -> Iterator[Step]:
    for step in steps:
        yield step
        yield from _walk(step.steps)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _is_hex(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


MAX_FORMAT_FIELDS = 1024  # values one struct format may pack or unpack
MAX_FORMAT_BYTES = 1 << 20  # bytes one struct format may describe


def format_fields(fmt: Any) -> list[str] | None:
    """The field codes of a struct format (``4s`` is one field), or None if it is not one (or
    is larger than the bounds above: counted before anything of that size is made)."""
    if not isinstance(fmt, str) or len(fmt) > 200:
        return None
    body = fmt.lstrip("@=<>!")
    parts = re.findall(r"(\d*)([a-zA-Z?])", body)
    count = sum(1 if code in "sp" else int(n or 1) for n, code in parts if code != "x")
    if count > MAX_FORMAT_FIELDS:
        return None
    try:
        if struct.calcsize(fmt) > MAX_FORMAT_BYTES:
            return None
    except (struct.error, UnicodeEncodeError):
        return None
    return [
        code for n, code in parts for _ in range(1 if code in "sp" else int(n or 1)) if code != "x"
    ]


def _needs_folder(p: Provision | None) -> bool:
    """Whether a provision puts files in the scratch folder (sysctls and a memory limit do not)."""
    return p is not None and (p.mount is not None or bool(p.files))


def _named(problem: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and PROCESS_RE.fullmatch(value) else problem

    return check


def _one_of(known: Collection[str], what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and value in known:
            return None
        return f"{value!r}: {what} is one of {', '.join(sorted(known))}"

    return check


def _signal(value: Any) -> str | None:
    return None if isinstance(value, str) and value in names.SIGNAL else f"unknown signal {value!r}"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _hex(value: Any) -> str | None:
    ok = isinstance(value, str) and _is_hex(value)
    return None if ok else "must be an even number of hex digits"


def _format(value: Any) -> str | None:
    if format_fields(value) is not None:
        return None
    return (
        f"{value!r} is not a struct format of at most {MAX_FORMAT_FIELDS} values"
        f" and {MAX_FORMAT_BYTES} bytes"
    )


def _values(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list"
    for v in value:
        if not isinstance(v, str) and (isinstance(v, bool) or not isinstance(v, int)):
            return f"{v!r}: values are integers, expressions or text"
    return None


def _steps(value: Any) -> str | None:
    return None if isinstance(value, list) else "must be a list of steps"


# The kinds whose check needs nothing but the value; "event" and "process" are then recorded.
_VALUE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "event": _named(f"an event name is {PROCESS_NAME_TEXT} ({PROCESS_NAME}), as a process name"),
    "process": _named(f"a process name is {PROCESS_NAME_TEXT}"),
    "thread": _named(f"a thread name is {PROCESS_NAME_TEXT}"),
    "path": _one_of(SYSTEM_PATHS, "a path"),
    "special": _one_of(SPECIAL_MAPPINGS, "a mapping without a file"),
    "signal": _signal,
    "text": _text,
    "hex": _hex,
    "format": _format,
    "values": _values,
    "steps": _steps,
}
