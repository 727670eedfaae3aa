"""One case on one backing as a standalone C program: ``generate(case, target) -> str``.

The program forks the case into its own process group (set-up, then each process), runs every
step as plain system calls with a comment naming its YAML file and line, judges each observation
where it is made, and judges deaths by signal in the top process from the siginfo the fault
handler left on a shared page: the engine's choreography, written out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

from runner.lang import names
from runner.lang.conditions import Facts, holds, unmet
from runner.lang.model import SUCCESS, Case, Expect, Step
from runner.lang.powercut import is_power_cut
from runner.repro.calls import NO_ERRNO, Call, Calls
from runner.repro.cexpr import CExpr
from runner.repro.kinds import (
    C_TYPES,
    Unreproducible,
    bound_names,
    c_name,
    format_fields,
)
from runner.repro.values import Have, Matcher, c_string

_GOT = {
    "int": "got_int(r)",
    "addr": "got_addr(r)",
    "bytes": "got_bytes(r)",
    "format": "got_bytes(r)",
    "list": "got_list(r)",
    "wait": "got_wait(r)",
    "cachestat": 'got_text("success, value {nr_cache: %llu, nr_dirty: %llu, nr_writeback: %llu, '
    'nr_evicted: %llu, nr_recently_evicted: %llu}", (unsigned long long)r.nr_cache, '
    "(unsigned long long)r.nr_dirty, (unsigned long long)r.nr_writeback, "
    "(unsigned long long)r.nr_evicted, (unsigned long long)r.nr_recently_evicted)",
    "fstat": 'got_text("success, value {size: %lld, blocks: %lld, mode: %#llo, mtime_ns: %lld}", '
    "(i64)r.st_size, (i64)r.st_blocks, (unsigned long long)r.st_mode, "
    "(i64)r.st_mtim.tv_sec * 1000000000LL + r.st_mtim.tv_nsec)",
    "uffdmsg": 'got_text("success, value {event: %#llx, address: %#llx, flags: %llu}", '
    "(unsigned long long)r.event, (unsigned long long)r.arg.pagefault.address, "
    "(unsigned long long)r.arg.pagefault.flags)",
    "rlimit": 'got_text("success, value {soft: %lld, hard: %lld}", (i64)r.rlim_cur, '
    "(i64)r.rlim_max)",
    "dedupe": 'got_text("success, value {status: %lld, bytes_deduped: %lld}", '
    "(i64)r.info.status, (i64)r.info.bytes_deduped)",
    "maps": 'got_text("success, value {start: %#llx, end: %#llx, perms: %s, offset: %lld, '
    'path: %s}", r.start, r.end, r.perms, r.offset, r.path)',
}
_KV_SHOWN = ("Size", "Rss", "Private_Dirty", "Shared_Dirty", "Locked", "VmLck", "VmRSS")


@dataclass(frozen=True)
class Target:
    """Where the reproducer runs: the backing kind, the folder its scratch folder goes in
    (None for memfd and anon), and the facts its ``when`` and ``requires`` are judged by."""

    backing: str
    folder: str | None
    facts: Facts


@dataclass(frozen=True)
class _Context:
    """Where a step is: its process's name, the innermost ``until`` errnos and repeat."""

    process: str
    until: tuple[int, ...] | None = None
    repeat: int | None = None


def skip_reason(case: Case, target: Target) -> str:
    """Why the engine would skip this item here ("" when it runs): a requirement unmet, else a
    name this architecture does not define."""
    reasons = unmet(case.requires, target.facts) or [
        f"{name} is defined on {', '.join(arches)} only, not on {target.facts.arch}"
        for name, arches in sorted(case.foreign_names.items())
    ]
    return "; ".join(reasons)


def generate(case: Case, target: Target) -> str:
    """The C source of ``case`` on ``target``; Unreproducible when it cannot be faithful."""
    return _Program(case, target).text()


class _Program:
    def __init__(self, case: Case, target: Target):
        if case.provision is not None:
            raise Unreproducible(
                "its provision (a fresh mount, files with inode flags, sysctls, a memory cgroup, "
                "a swap area, core dumps) is made by the harness before the case; the C file "
                "makes none of it"
            )
        if is_power_cut(case):
            raise Unreproducible(
                "its power cut is made by the host around a guest (qemu kills it, the disk is "
                "judged in a second boot); a C file cannot cut its own power"
            )
        self.case, self.target = case, target
        self.kinds = bound_names(case)
        self.expr = CExpr(self.kinds)
        self.calls = Calls(self.expr, target.backing)
        self.matcher = Matcher(self.kinds)
        self.table: list[str] = []
        self.functions: dict[str, str] = {}  # name -> definition
        self.threads: set[str] = set()  # the pthread_t of each thread step
        self.counter = 0

    # -- the file --------------------------------------------------------------------------
    def text(self) -> str:
        body = self._run_case()
        prelude = resources.files("runner.repro").joinpath("prelude.c").read_text()
        head, _, tail = prelude.partition("/* @@CASE_TABLES@@ */")
        tables = "\n".join(
            [
                "static const struct step_info STEPS[] = {",
                *self.table,
                "};",
                "",
                *[f"static {C_TYPES[k]} {c_name(n)};" for n, k in sorted(self.kinds.items())],
                *[f"static pthread_t {t};" for t in sorted(self.threads)],
            ]
        )
        return "".join(
            [
                self._header(),
                head,
                tables,
                tail,
                "\n/* ---- the case ---- */\n",
                *[f"static void {name}(void);\n" for name in self.functions],
                "\n",
                "\n".join(self.functions.values()),
                "\n",
                body,
                _name_tables(),
            ]
        )

    def _header(self) -> str:
        c, t = self.case, self.target
        where = {
            "disk": f"a scratch folder in {t.folder} (give another folder as argv[1]: the "
            "filesystem under test)",
            "tmpfs": f"a scratch folder in {t.folder} (a tmpfs; argv[1] overrides)",
            "hugetlbfs": f"a scratch folder in {t.folder} (a hugetlbfs mount; argv[1] overrides)",
            "memfd": "memfd_create(2) objects, no folder",
            "anon": "no files",
        }[t.backing]
        lines = [
            f"mmapconf case {c.id}[{t.backing}]: {c.title}",
            f"from {c.file}:{c.line}; generated by `mmapconf repro {c.id}[{t.backing}]` "
            f"for Linux {t.facts.kernel} ({t.facts.arch})",
        ]
        if c.claim:
            lines.append(f"claim: {c.claim}")
        lines += [f"ref: {r}" for r in c.refs]
        lines += [
            "",
            f"files: {where}",
            "build: cc -O2 -static THIS_FILE -o repro && ./repro",
            "Prints each step's observation, then PASS, or FAIL lines naming process, step,",
            "expected and observed; exit 0 passed, 1 failed or timed out, 2 error.",
            "Every flag and name is resolved to its number here, its name in a comment.",
        ]
        comment = "\n".join(f" * {_safe(x)}".rstrip() for x in lines)
        defines = [
            f"#define SCRATCH_PARENT {c_string((t.folder or '').encode())}",
            f"#define TIMEOUT_S {max(1, int(c.timeout))}",
            f"#define ADDRESS_SPACE_PAGES {c.address_space_pages}LL /* RLIMIT_AS headroom */",
            f"#define USES_PROC_MEM {int(_uses(c, PROC_MEM_OPS))}",
            f"#define USES_RING {int(_uses(c, RING_OPS))}",
        ]
        return "/*\n" + comment + "\n */\n" + "\n".join(defines) + "\n"

    # -- processes -------------------------------------------------------------------------
    def _run_case(self) -> str:
        case = self.case
        single = list(case.processes) == ["main"]
        lines = ['begin_process("setup");']
        for step in case.setup:
            lines += self._step(step, _Context("main" if single else "setup"))
        if single:
            lines += ['me->name = "main";']
            for step in case.processes["main"]:
                lines += self._step(step, _Context("main"))
        else:
            for name, steps in case.processes.items():
                fn = self._function(f"process_{name.replace('-', '_')}", steps, _Context(name))
                lines += [
                    "if (fork() == 0) {",
                    f'\tbegin_process("{name}");',
                    f"\t{fn}();",
                    "\t_exit(EXIT_DONE);",
                    "}",
                ]
        return "static void run_case(void)\n{\n" + _indent(lines) + "}\n"

    def _function(self, name: str, steps: list[Step], ctx: _Context) -> str:
        lines: list[str] = []
        for step in steps:
            lines += self._step(step, ctx)
        self.functions[name] = f"static void {name}(void)\n{{\n{_indent(lines)}}}\n"
        return name

    # -- one step --------------------------------------------------------------------------
    def _step(self, step: Step, ctx: _Context) -> list[str]:
        expect = self._expect(step)
        k = len(self.table)
        where = f"{self.case.file}:{step.line}"
        self.table.append(
            f"\t{{{_cstr(step.label)}, {_cstr(step.op)}, {_cstr(where)}, "
            f"{_cstr(describe(expect))}}},"
        )
        lines = [f"/* {_safe(where)}  step {step.label}: {_safe(summary(step, expect))} */", "{"]
        inner = [f"begin({k});"]
        if expect.kind == "signal":
            inner.append(self._expect_signal(expect))
        if step.op == "repeat":
            inner += self._repeat(step, k, expect, ctx)
        elif step.op == "fork":
            inner += self._fork(step, ctx)
            inner += self._judge(step, k, expect, ctx, "int", [])
        elif step.op in ("thread", "join"):
            inner += self._thread(step, ctx) if step.op == "thread" else self._join(step)
            inner += self._judge(step, k, expect, ctx, "none", [])
        else:
            inner += self._plain(step, k, expect, ctx)
        return [*lines, *["\t" + x for x in inner], "}"]

    def _plain(self, step: Step, k: int, expect: Expect, ctx: _Context) -> list[str]:
        if step.op in ("post", "wait_for"):
            event = step.args["event"]
            call = Call([f"{step.op}({self.case.events[event]}); /* event {event} */", NO_ERRNO])
        else:
            call = self.calls.emit(step, step.args)
        if call.error is not None:
            return [f"case_error({k}, {_cstr(call.error)});"]
        binds = [f"{c_name(n)} = {v};" for n, v in call.binds]
        if call.infallible:
            return [*call.lines[:-1], *self._judge_result(step, k, expect, call.kind, binds)]
        return [*call.lines, *self._judge(step, k, expect, ctx, call.kind, binds)]

    def _expect(self, step: Step) -> Expect:
        """The entry whose ``when`` holds here (chosen now: the facts are this machine's)."""
        chosen = next(
            (e for e in step.expect if e.when is None or holds(e.when, self.target.facts)),
            SUCCESS,
        )
        if step.op == "repeat" and "until" in step.args and chosen == SUCCESS:
            chosen = Expect("errno", errno=tuple(_until(step)))
        return chosen

    def _expect_signal(self, expect: Expect) -> str:
        sig = expect.signal or ""
        code = names.si_code_value(sig, expect.si_code) if expect.si_code else None
        addr = "0"
        if expect.si_addr is not None:
            addr = self.expr.int_arg(expect.si_addr)
        code_c = f"{code} /* {expect.si_code} */" if code is not None else "-1000 /* any */"
        ip = expect.ip
        wants = [] if ip is None else list(ip.items()) if isinstance(ip, dict) else [("eq", ip)]
        ops = ("eq", "ne", "gt", "ge", "lt", "le")
        return (
            f"expect_signal({names.SIGNAL[sig]} /* {sig} */, {code_c}, "
            f"{int(expect.si_addr is not None)}, {addr});"
            + "".join(
                f" expect_ip({ops.index(op)} /* {op} */, {self.expr.int_arg(v)});"
                for op, v in wants
            )
        )

    def _judge_result(
        self, step: Step, k: int, expect: Expect, kind: str, binds: list[str]
    ) -> list[str]:
        """Judge ``r`` of a call that cannot fail; bind it; print the observation."""
        shown = self._shown(kind, expect)
        out = [f"{shown};"] if shown else []
        if expect.kind == "value":
            out.append(f"if (!({self._match(step, expect, kind)})) fail({k});")
        elif expect.kind == "errno":
            out.append(f"fail({k}); /* it was to fail with errno {' or '.join(expect.errno)} */")
        elif expect.kind == "signal":
            out.append(f"fail({k}); /* the step returned: it was to die by a signal */")
        bind = [f"{c_name(step.bind)} = r;"] if step.bind and kind != "none" else []
        return [*out, *bind, *binds, f"ok({k});"]

    def _shown(self, kind: str, expect: Expect) -> str | None:
        """The C that says the result in the step's line, or None for no result."""
        if kind == "kv":
            keys = _kv_keys(expect)
            return f"got_kv(&r, (const char *const[]){{{', '.join(keys)}}}, {len(keys)})"
        return _GOT.get(kind)

    def _match(self, step: Step, expect: Expect, kind: str) -> str:
        if kind == "none":
            raise Unreproducible("a value is expected of a step without a result")
        fields = tuple(format_fields(step.args["format"])) if kind == "format" else ()
        have = Have("int" if kind == "addr" else kind, "r", fields)
        return self.matcher.match(expect.value, have)

    def _judge(
        self, step: Step, k: int, expect: Expect, ctx: _Context, kind: str, binds: list[str]
    ) -> list[str]:
        """Judge ``e``/``r`` against ``expect``; bind the result; print the observation."""
        shown = self._shown(kind, expect)
        out = ["if (e) got_errno(e);" + (f" else {shown};" if shown else "")]
        if ctx.until is not None:
            test = " || ".join(f"e == {n}" for n in ctx.until)
            out += [
                f"if (e && ({test})) {{ /* ends the enclosing repeat ... until */",
                f"\tloop_errno_{ctx.repeat} = e;",
                f"\tok({k});",
                f"\tgoto end_{ctx.repeat};",
                "}",
            ]
        out.append(self._failure(step, expect, kind) + f" fail({k});")
        bind = [f"{c_name(step.bind)} = r;"] if step.bind and kind != "none" else []
        bind += binds
        if bind:
            present = "e" if step.op == "repeat" else "!e"  # the result exists (not None)
            out.append(f"if ({present}) {{ {' '.join(bind)} }}")
        out.append(f"ok({k});")
        return out

    def _failure(self, step: Step, expect: Expect, kind: str) -> str:
        if expect.kind == "success":
            return "if (e)"
        if expect.kind == "errno":
            nums = sorted({names.ERRNO[n] for n in expect.errno})
            text = " || ".join(f"e == {n}" for n in nums)
            return f"if (!({text})) /* {' or '.join(expect.errno)} */"
        if expect.kind == "signal":
            return "/* the step returned: it was to die by a signal */"
        return f"if (e || !({self._match(step, expect, kind)}))"

    # -- fork and repeat -------------------------------------------------------------------
    def _fork(self, step: Step, ctx: _Context) -> list[str]:
        name = step.bind or f"{ctx.process}.{step.label}"
        self.counter += 1
        fn = self._function(f"fork_{self.counter}", step.steps, _Context(name))
        return [
            "pid_t pid = fork();",
            "if (pid == 0) {",
            f"\tbegin_process({_cstr(name)});",
            f"\t{fn}();",
            "\t_exit(EXIT_DONE);",
            "}",
            "int e = pid < 0 ? errno : 0;",
            "i64 r = pid;",
        ]

    def _thread(self, step: Step, ctx: _Context) -> list[str]:
        name = f"{ctx.process}/{step.args['name']}"
        self.counter += 1
        fn = self._function(f"thread_{self.counter}", step.steps, _Context(name))
        self.threads.add(_thread_var(step))
        if "stack" in step.args:
            stack = self.expr.int_arg(step.args["stack"])
            size = self.expr.int_arg(step.args["stack_size"])
            attr = f"pthread_attr_setstack(&attr, (void *)(uintptr_t)({stack}), (size_t)({size}))"
        else:
            attr = "pthread_attr_setstacksize(&attr, 2 << 20)"
        return [
            "pthread_attr_t attr;",
            "pthread_attr_init(&attr);",
            f"int e = {attr};",
            f"if (!e) e = start_thread(&{_thread_var(step)}, &attr, {fn}, {_cstr(name)});",
            f"if (e) {_thread_var(step)} = 0;",
            "pthread_attr_destroy(&attr);",
        ]

    def _join(self, step: Step) -> list[str]:
        var = _thread_var(step)  # 0 when its thread step failed: no thread (ESRCH)
        return [f"int e = {var} ? pthread_join({var}, NULL) : ESRCH;", f"{var} = 0;"]

    def _repeat(self, step: Step, k: int, expect: Expect, ctx: _Context) -> list[str]:
        if expect.kind == "value":
            raise Unreproducible("a value expectation on a repeat is not written in C here")
        self.counter += 1
        n = self.counter
        until = (
            tuple(sorted({names.ERRNO[e] for e in _until(step)}))
            if "until" in step.args
            else ctx.until
        )
        body_ctx = replace(ctx, until=until, repeat=n)
        body: list[str] = []
        var = step.args.get("var")
        if var:
            body.append(f"{c_name(var)} = it_{n};")
        body.append(f"shown_iteration = shown_{n} > it_{n} ? shown_{n} : it_{n};")
        for sub in step.steps:
            body += self._step(sub, body_ctx)
        lines = [
            f"i64 times_{n} = {self.expr.int_arg(step.args['times'])}, it_{n};",
            f"i64 shown_{n} = shown_iteration;",
            f"int loop_errno_{n} = 0;",
            f"for (it_{n} = 0; it_{n} < times_{n}; it_{n}++) {{",
            *["\t" + x for x in body],
            "}",
            f"end_{n}:",
            f"shown_iteration = shown_{n};",
            f"begin({k}); /* the repeat itself is judged now */",
            f"int e = loop_errno_{n};",
            f"i64 r = it_{n};",
            'if (e) got_text("errno %s at iteration %lld", errno_name(e), r);',
        ]
        judged = self._judge(step, k, expect, ctx, "none", [])
        judged = judged[1:]  # the observation is said above
        if step.bind:
            judged.insert(-1, f"if (e) {{ {c_name(step.bind)} = r; }}")
        return [*lines, *judged]


def _thread_var(step: Step) -> str:
    """The pthread_t of a thread (its name is the case's only thread of that name)."""
    return f"thread_{c_name(str(step.args['name']).replace('-', '_'))}"


PROC_MEM_OPS = frozenset({"proc_mem_read", "proc_mem_write"})
RING_OPS = frozenset(
    {"uring_register_buffers", "uring_unregister_buffers", "uring_read_fixed", "uring_write_fixed"}
)


def _uses(case: Case, ops: frozenset[str]) -> bool:
    """Whether a step of the case is one of ``ops`` (what the first process makes before its
    steps, as the engine does, only for a case that uses it)."""

    def walk(steps: list[Step]) -> bool:
        return any(s.op in ops or walk(s.steps) for s in steps)

    return walk(case.setup) or any(walk(steps) for steps in case.processes.values())


def _until(step: Step) -> list[str]:
    errnos = step.args["until"]["errno"]
    return errnos if isinstance(errnos, list) else [errnos]


def _kv_keys(expect: Expect) -> list[str]:
    keys = list(expect.value) if expect.kind == "value" and isinstance(expect.value, dict) else []
    return [_cstr(k) for k in (keys or _KV_SHOWN)]


def describe(expect: Expect) -> str:
    """The expectation as failure lines show it (expressions as the case wrote them)."""
    if expect.kind == "success":
        return "success"
    if expect.kind == "errno":
        return "errno " + " or ".join(expect.errno)
    if expect.kind == "signal":
        text = expect.signal or "?"
        if expect.si_code:
            text += f"/{expect.si_code}"
        if expect.si_addr is not None:
            text += f" at {expect.si_addr}"
        if expect.ip is not None:
            text += f", ip {_compact(expect.ip)}"
        return text
    return "value " + _compact(expect.value)


def summary(step: Step, expect: Expect) -> str:
    args = {k: v for k, v in step.args.items() if k != "steps"}
    text = f"{step.op}: {_compact(args)}"
    if step.bind:
        text += f", as: {step.bind}"
    if expect.kind != "success":
        text += f", expect {describe(expect)}"
    if expect.when is not None:
        text += f" (the entry for {_compact(expect.when)})"
    return text


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    if isinstance(value, str):
        plain = value.strip() and not any(c in value for c in ',:{}[]#"') and value == value.strip()
        return value if plain else json.dumps(value, ensure_ascii=False)
    return str(value)


def _safe(text: str) -> str:
    """Text for a C comment: no comment end, one line."""
    return text.replace("*/", "* /").replace("\n", " ")


def _cstr(text: str) -> str:
    return c_string(text.encode())


def _indent(lines: list[str]) -> str:
    return "".join(f"\t{x}\n" if x and not x.endswith(":") else f"{x}\n" for x in lines)


def _name_tables() -> str:
    """errno, signal and si_code names as the engine spells them (runner.lang.names)."""

    def table(fn: str, arg: str, entries: dict[int, str]) -> str:
        cases = "".join(f'\tcase {n}: return "{name}";\n' for n, name in sorted(entries.items()))
        return f"static const char *{fn}(int {arg})\n{{\n\tswitch ({arg}) {{\n{cases}\t}}\n"

    errnos = table("errno_name", "e", names.ERRNO_NAME)
    errnos += (
        '\tstatic char other[16];\n\tsnprintf(other, sizeof other, "%d", e);\n\treturn other;\n}\n'
    )
    signals = table("signal_name", "s", names.SIGNAL_NAME)
    signals += (
        '\tstatic char other[16];\n\tsnprintf(other, sizeof other, "%d", s);\n\treturn other;\n}\n'
    )
    codes = ["static const char *si_code_name(int sig, int code)\n{"]
    for sig, table_ in names.SI_CODE.items():
        codes.append(f"\tif (sig == {names.SIGNAL[sig]}) /* {sig} */")
        codes.append("\t\tswitch (code) {")
        codes += [f'\t\tcase {v}: return "{n}";' for n, v in table_.items()]
        codes.append("\t\t}")
    codes.append("\tswitch (code) {")
    codes += [f'\tcase {v}: return "{n}";' for n, v in names.GENERIC_SI_CODE.items()]
    codes += ["\t}", "\tstatic char other[16];", '\tsnprintf(other, sizeof other, "%d", code);']
    codes += ["\treturn other;", "}"]
    return (
        "\n/* ---- names as the reports spell them ---- */\n"
        + errnos
        + "\n"
        + signals
        + "\n"
        + "\n".join(codes)
        + "\n"
    )
