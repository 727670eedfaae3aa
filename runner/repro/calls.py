"""Each operation as the system calls that carry it out, in C.

An emitter returns the statements that leave the step's observation in two locals: ``e`` (0, or
the errno the call failed with) and ``r`` (the result, of the C type of the operation's kind).
What each does is what the native executor does (executor.c, perform_op), call for call, though
written separately from it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.lang import names
from runner.lang.model import Step
from runner.lang.ops import OPS
from runner.repro.cexpr import CExpr, flags_arg, flags_value
from runner.repro.kinds import Unreproducible, c_name, format_fields, result_kind
from runner.repro.values import c_string

# Folders and /proc files outside the scratch folder open for reading only (as the engine's).
_READ_ONLY_PATHS = ("/", ".", "/proc/self/maps")
_READ_FLAGS = (
    names.O_FLAGS["O_RDONLY"]
    | names.O_FLAGS["O_DIRECTORY"]
    | names.O_FLAGS["O_PATH"]
    | names.O_FLAGS["O_CLOEXEC"]
    | names.O_FLAGS["O_NOFOLLOW"]
    | names.O_FLAGS["O_NONBLOCK"]
)
_HARNESS_LIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_NPROC")


NO_ERRNO = "int e = 0;"  # the last statement of a call that cannot fail


@dataclass
class Call:
    """The C of one operation: statements, and the kind of ``r`` they leave."""

    lines: list[str]
    kind: str = "none"  # set by Calls.emit from the operation (runner.repro.kinds)
    error: str | None = None  # the engine ends the case as an error here, with this message
    binds: list[tuple[str, str]] = field(default_factory=list)  # extra (name, C value) on success

    @property
    def infallible(self) -> bool:
        """A load, a store, a sleep: no errno to judge, so none is tested for."""
        return self.lines[-1:] == [NO_ERRNO]


class Calls:
    """Emitters for one case on one backing."""

    def __init__(self, expr: CExpr, backing: str):
        self.expr, self.backing = expr, backing

    def emit(self, step: Step, args: dict[str, Any]) -> Call:
        args = {**OPS[step.op].defaults, **args}
        emitter: Callable[[Step, dict[str, Any]], Call] | None = getattr(self, "_" + step.op, None)
        if step.op in CHECKED:
            call = self._checked(CHECKED[step.op].format(**self._c_args(step.op, args)))
        elif step.op in INT_RESULT:
            call = self._int_call(INT_RESULT[step.op].format(**self._c_args(step.op, args)))
        elif emitter is not None:
            call = emitter(step, args)
        else:
            raise Unreproducible(f"operation {step.op!r} has no C form")
        call.kind = result_kind(step)
        return call

    # -- helpers ---------------------------------------------------------------------------
    def _c_args(self, op: str, args: dict[str, Any]) -> dict[str, str]:
        """Every argument written as C, by its kind; ``range`` is the (addr, length) pair."""
        out = {}
        for key, kind in OPS[op].args.items():
            if key not in args:
                continue
            if kind == "int":
                out[key] = self.i(args, key)
            elif kind.startswith("flags:"):
                out[key] = self.flags(args, key, kind[6:])
        if "addr" in out and "length" in out:
            out["range"] = self._range(args)
        return out

    def i(self, args: dict[str, Any], key: str) -> str:
        if key not in args:
            raise Unreproducible(f"argument {key!r} is missing")
        return self.expr.int_arg(args[key])

    def mode(self, args: dict[str, Any]) -> str:
        mode = args["mode"]
        return f"0{mode:o}" if isinstance(mode, int) and mode >= 0 else self.i(args, "mode")

    def flags(self, args: dict[str, Any], key: str, family: str) -> str:
        return flags_arg(args[key], family) if key in args else "0"

    def _checked(self, call: str) -> Call:
        """A call that returns -1 and sets errno on failure."""
        return Call([f"int e = {call} < 0 ? errno : 0;"])

    def _int_call(self, call: str) -> Call:
        """A call whose non-negative return value is the result."""
        return Call([f"i64 r = {call};", "int e = r < 0 ? errno : 0;"])

    def _addr_call(self, call: str) -> Call:
        """mmap and mremap: MAP_FAILED and errno on failure."""
        return Call([f"i64 r = {call};", "int e = r == (i64)MAP_FAILED ? errno : 0;"])

    def data(self, args: dict[str, Any]) -> tuple[list[str], str, str]:
        """Statements filling ``buf``, and the C of its address and length (encode_data)."""
        if "data" in args:
            raw = str(args["data"]).encode()
            return [], c_string(raw), str(len(raw))
        if "hex" in args:
            raw = bytes.fromhex(args["hex"])
            return [], c_string(raw), str(len(raw))
        return self._packed(args["format"], args["values"])

    def _packed(self, fmt: str, values: list[Any]) -> tuple[list[str], str, str]:
        fields = format_fields(fmt)
        size = struct.calcsize(fmt)
        lines = [f"unsigned char buf[{max(size, 1)}] = {{0}}; /* struct format {fmt!r} */"]
        for f, v in zip(fields, values, strict=True):
            if f.code == "s":
                if not isinstance(v, str):
                    raise Unreproducible(f"format {fmt!r}: an s field takes text, not {v!r}")
                text = v.encode()[: f.size]
                lines.append(f"memcpy(buf + {f.offset}, {c_string(text)}, {len(text)});")
            else:
                value = self.expr.int_arg(v)
                lines.append(f"put_int(buf + {f.offset}, {f.size}, {value});")
        return lines, "buf", str(size)

    def path_of(self, name: str) -> str:
        if self.backing == "memfd":
            return f"proc_fd({c_name(name)})"
        return f'in_scratch("{name}")'

    # -- files -----------------------------------------------------------------------------
    def _file(self, step: Step, a: dict[str, Any]) -> Call:
        name = a["file"]
        var = c_name(name)
        if self.backing == "memfd":
            opened = f'memfd_create("{name}", 0)'
        else:
            flags = flags_arg(["O_RDWR", "O_CREAT", "O_EXCL"], "O")
            opened = f'open(in_scratch("{name}"), {flags}, {self.mode(a)})'
        lines = [f"i64 fd = {opened};", "int e = fd < 0 ? errno : 0;", f"if (!e) {var} = fd;"]
        if any(k in a for k in ("data", "hex", "format")):
            fill, buf, n = self.data(a)
            lines += [
                "if (!e) {",
                *["\t" + x for x in fill],
                f"\tif (write(fd, {buf}, {n}) < 0) e = errno;",
                "}",
            ]
        if "size" in a:
            lines.append(f"if (!e && ftruncate(fd, {self.i(a, 'size')}) < 0) e = errno;")
        return Call(lines)

    def _open(self, step: Step, a: dict[str, Any]) -> Call:
        flags = self.flags(a, "flags", "O")
        mode = self.mode(a)
        if "file" in a:
            return self._int_call(f"open({self.path_of(a['file'])}, {flags}, {mode})")
        path = a["path"]
        value, _ = flags_value(a["flags"], "O")
        if path in _READ_ONLY_PATHS and value & ~_READ_FLAGS:
            return Call(
                [], error=f"{path} may only be opened for reading (O_RDONLY, O_DIRECTORY, O_PATH)"
            )
        if path == ".":
            if self.backing == "memfd":
                return Call(
                    [], error="'.' (the scratch folder) does not exist on the memfd backing"
                )
            return self._int_call(f"open(scratch, {flags}, {mode})")
        return self._int_call(f"open({c_string(path.encode())}, {flags}, {mode})")

    def _unlink(self, step: Step, a: dict[str, Any]) -> Call:
        if self.backing == "memfd":
            return Call(
                [], error="unlink has no meaning on the memfd backing: limit the case's backings"
            )
        return self._checked(f'unlink(in_scratch("{a["file"]}"))')

    def _write(self, step: Step, a: dict[str, Any]) -> Call:
        fd = self.i(a, "fd")
        if "addr" in a:
            buf, n, lines = f"(void *)(uintptr_t)({self.i(a, 'addr')})", self.i(a, "length"), []
        elif "length" in a:
            n = self.i(a, "length")
            lines, buf = [f"void *zeros = calloc(max_({n}, 1), 1);"], "zeros"
        else:
            lines, buf, n = self.data(a)
        if "offset" in a:
            call = f"pwrite({fd}, {buf}, (size_t)({n}), {self.i(a, 'offset')})"
        else:
            call = f"write({fd}, {buf}, (size_t)({n}))"
        return Call([*lines, f"i64 r = {call};", "int e = r < 0 ? errno : 0;"])

    def _read(self, step: Step, a: dict[str, Any]) -> Call:
        fd, n = self.i(a, "fd"), self.i(a, "length")
        at = f", {self.i(a, 'offset')}" if "offset" in a else ""
        fn = "pread" if at else "read"
        if "addr" in a:
            return self._int_call(
                f"{fn}({fd}, (void *)(uintptr_t)({self.i(a, 'addr')}), (size_t)({n}){at})"
            )
        return Call(
            [
                f"struct bytes r = {{calloc(max_({n}, 1), 1), 0}};",
                f"r.n = {fn}({fd}, r.p, (size_t)({n}){at});",
                "int e = r.n < 0 ? errno : 0;",
            ],
        )

    def _fstat(self, step: Step, a: dict[str, Any]) -> Call:
        return Call(["struct stat r;", f"int e = fstat({self.i(a, 'fd')}, &r) < 0 ? errno : 0;"])

    # -- memory ----------------------------------------------------------------------------
    def _mmap(self, step: Step, a: dict[str, Any]) -> Call:
        call = (
            f"(i64)mmap({self.pointer(a, 'addr')}, (size_t)({self.i(a, 'length')}), "
            f"{self.flags(a, 'prot', 'PROT')}, {self.flags(a, 'flags', 'MAP')}, "
            f"{self.i(a, 'fd')}, {self.i(a, 'offset')})"
        )
        return self._addr_call(call)

    def _range(self, a: dict[str, Any]) -> str:
        return f"{self.pointer(a, 'addr')}, (size_t)({self.i(a, 'length')})"

    def pointer(self, a: dict[str, Any], key: str) -> str:
        value = self.i(a, key)
        return "NULL" if value == "0" else f"(void *)(uintptr_t)({value})"

    def _mlock(self, step: Step, a: dict[str, Any]) -> Call:
        value, _ = flags_value(a.get("flags", 0), "MLOCK")
        if value:
            return self._checked(
                f"syscall(SYS_mlock2, {self._range(a)}, {self.flags(a, 'flags', 'MLOCK')})"
            )
        return self._checked(f"mlock({self._range(a)})")

    def _mremap(self, step: Step, a: dict[str, Any]) -> Call:
        call = (
            f"(i64)mremap((void *)(uintptr_t)({self.i(a, 'addr')}), "
            f"(size_t)({self.i(a, 'old_length')}), (size_t)({self.i(a, 'new_length')}), "
            f"{self.flags(a, 'flags', 'MREMAP')}, {self.pointer(a, 'new_addr')})"
        )
        return self._addr_call(call)

    def _mincore(self, step: Step, a: dict[str, Any]) -> Call:
        if "vec" in a:
            vec = f"(unsigned char *)(uintptr_t)({self.i(a, 'vec')})"
            return Call(
                [
                    "struct bytes r = {0, 0};",
                    f"int e = mincore({self._range(a)}, {vec}) < 0 ? errno : 0;",
                ],
            )
        n = self.i(a, "length")
        return Call(
            [
                f"i64 pages = floordiv({n} + PAGE - 1, PAGE);",
                "struct bytes r = {calloc(max_(pages, 1), 1), max_(pages, 0)};",
                f"int e = mincore({self._range(a)}, r.p) < 0 ? errno : 0;",
                "for (i64 i = 0; i < r.n; i++)",
                "\tr.p[i] &= 1; /* residency is the low bit */",
            ],
        )

    def _load(self, step: Step, a: dict[str, Any]) -> Call:
        if "format" in a:
            format_fields(a["format"])  # refuses what C does not decode here
            n = str(struct.calcsize(a["format"]))
        else:
            n = self.i(a, "length") if "length" in a else "1"
        return Call([f"struct bytes r = load({self.i(a, 'addr')}, {n});", NO_ERRNO])

    def _store(self, step: Step, a: dict[str, Any]) -> Call:
        fill, buf, n = self.data(a)
        return Call([*fill, f"store({self.i(a, 'addr')}, {buf}, {n});", NO_ERRNO])

    def _smaps(self, step: Step, a: dict[str, Any]) -> Call:
        return Call(
            ["struct kv r;", f"int e = read_smaps({self.i(a, 'addr')}, &r) < 0 ? errno : 0;"]
        )

    def _proc_maps(self, step: Step, a: dict[str, Any]) -> Call:
        if "path" in a:  # the mapping of that name ([stack]), not the one holding an address
            where = f"find_maps(0, {c_string(str(a['path']).encode())}, &r)"
        else:
            where = f"read_maps({self.i(a, 'addr')}, &r)"
        return Call(["struct maps_line r;", f"int e = {where} < 0 ? errno : 0;"])

    def _proc_status(self, step: Step, a: dict[str, Any]) -> Call:
        return Call(["struct kv r;", "int e = read_status(&r) < 0 ? errno : 0;"])

    def _posix_madvise(self, step: Step, a: dict[str, Any]) -> Call:
        advice = self.flags(a, "advice", "POSIX_MADV")
        return Call(
            [
                f"i64 r = posix_madvise({self._range(a)}, {advice}); /* returns the error */",
                NO_ERRNO,
            ],
        )

    def _call(self, step: Step, a: dict[str, Any]) -> Call:
        return Call([f"i64 r = ((int (*)(void))(uintptr_t)({self.i(a, 'addr')}))();", NO_ERRNO])

    def _sem_init(self, step: Step, a: dict[str, Any]) -> Call:
        return self._checked(
            f"sem_init((sem_t *)(uintptr_t)({self.i(a, 'addr')}), "
            f"{self.i(a, 'pshared')}, {self.i(a, 'value')})"
        )

    def _sem_wait(self, step: Step, a: dict[str, Any]) -> Call:
        sem = f"(sem_t *)(uintptr_t)({self.i(a, 'addr')})"
        return Call(
            [
                NO_ERRNO,
                f"while (sem_wait({sem}) < 0 && (e = errno) == EINTR)",
                "\te = 0; /* retried, as C callers do */",
            ]
        )

    # -- processes -------------------------------------------------------------------------
    def _wait(self, step: Step, a: dict[str, Any]) -> Call:
        return Call(
            [
                "struct wait_result r;",
                f"int e = wait_child({self.i(a, 'pid')}, &r) < 0 ? errno : 0;",
            ],
        )

    def _kill(self, step: Step, a: dict[str, Any]) -> Call:
        sig = a["signal"]
        return Call(
            [
                f"i64 pid = {self.i(a, 'pid')};",
                "int e = 0, ours = pid == 0 || pid == -(i64)getpgrp();",
                "if (pid > 0) { /* kill(2) only within the case's own process group */",
                "\tpid_t group = getpgid(pid);",
                "\tif (group < 0) e = errno;",
                "\tours = group == getpgrp();",
                "}",
                "if (!e && !ours)",
                '\tcase_error(me->step, "kill: that pid is not a process of this case");',
                f"if (!e && kill_recorded(pid, {names.SIGNAL[sig]} /* {sig} */) < 0) e = errno;",
            ]
        )

    def _sleep(self, step: Step, a: dict[str, Any]) -> Call:
        ms = self.i(a, "ms")
        return Call(
            [
                f"i64 ms = {ms};",
                "struct timespec ts = {ms / 1000, ms % 1000 * 1000000};",
                "nanosleep(&ts, NULL);",
                NO_ERRNO,
            ]
        )

    def _setrlimit(self, step: Step, a: dict[str, Any]) -> Call:
        res = a["resource"]
        value, _ = flags_value(res, "RLIMIT")
        hard = self.i(a, "hard") if "hard" in a else "(i64)old.rlim_max"
        lines = [
            "struct rlimit old;",
            f"getrlimit({value} /* {res} */, &old);",
            f"struct rlimit lim = {{(rlim_t)({self.i(a, 'soft')}), (rlim_t)({hard})}};",
        ]
        if res in _HARNESS_LIMITS:
            lines += [
                "if (old.rlim_max != RLIM_INFINITY &&",
                "    (lim.rlim_max == RLIM_INFINITY || lim.rlim_max > old.rlim_max))",
                '\tcase_error(me->step, "setrlimit may lower the limits, not raise them");',
            ]
        return Call([*lines, f"int e = setrlimit({value}, &lim) < 0 ? errno : 0;"])

    def _setuid(self, step: Step, a: dict[str, Any]) -> Call:
        uid = self.i(a, "uid")
        gid = self.i(a, "gid") if "gid" in a else uid
        return Call(
            [
                "/* from root this drops every capability */",
                "int e = setgroups(0, NULL) < 0 ? errno : 0;",
                f"if (!e && setgid({gid}) < 0) e = errno;",
                f"if (!e && setuid({uid}) < 0) e = errno;",
            ]
        )

    # -- descriptors -----------------------------------------------------------------------
    def _pipe(self, step: Step, a: dict[str, Any]) -> Call:
        return Call(
            ["int fds[2];", "int e = pipe(fds) < 0 ? errno : 0;"],
            binds=[(a["read"], "fds[0]"), (a["write"], "fds[1]")],
        )

    def _userfaultfd(self, step: Step, a: dict[str, Any]) -> Call:
        return self._int_call(f"uffd_open({self.flags(a, 'flags', 'O')})")

    def _uffd_register(self, step: Step, a: dict[str, Any]) -> Call:
        mode = self.flags(a, "mode", "UFFDIO_REGISTER_MODE")
        return Call(
            [
                f"struct uffdio_register reg = {{{{(uint64_t)({self.i(a, 'addr')}), "
                f"(uint64_t)({self.i(a, 'length')})}}, (uint64_t)({mode})}};",
                f"int e = ioctl({self.i(a, 'fd')}, UFFDIO_REGISTER, &reg) < 0 ? errno : 0;",
            ]
        )

    def _uffd_read(self, step: Step, a: dict[str, Any]) -> Call:
        return Call(
            [
                "struct uffd_msg r = {0};",
                f"int e = read({self.i(a, 'fd')}, &r, sizeof r) < 0 ? errno : 0;",
                "if (!e && r.event != UFFD_EVENT_PAGEFAULT) r.arg.pagefault.address = 0;",
            ]
        )

    def _uffd_copy(self, step: Step, a: dict[str, Any]) -> Call:
        fields = f"(uint64_t)({self.i(a, 'dst')}), (uint64_t)({self.i(a, 'src')}), "
        return self._uffd_ioctl(a, f"struct uffdio_copy x = {{{fields}", "UFFDIO_COPY", "copy")

    def _uffd_zeropage(self, step: Step, a: dict[str, Any]) -> Call:
        fields = f"{{(uint64_t)({self.i(a, 'addr')}), "
        return self._uffd_ioctl(
            a, f"struct uffdio_zeropage x = {{{fields}", "UFFDIO_ZEROPAGE", "zeropage"
        )

    def _uffd_ioctl(self, a: dict[str, Any], head: str, request: str, result: str) -> Call:
        """An ioctl resolving a range: HEAD opens its struct, the length (and for a range, its
        brace) follows, then mode 0; the result is the struct's count of bytes done."""
        close = "}" if request == "UFFDIO_ZEROPAGE" else ""
        return Call(
            [
                f"{head}(uint64_t)({self.i(a, 'length')}){close}, 0, 0}};",
                f"int e = ioctl({self.i(a, 'fd')}, {request}, &x) < 0 ? errno : 0;",
                f"i64 r = x.{result};",
            ]
        )

    def _let(self, step: Step, a: dict[str, Any]) -> Call:
        return Call([f"i64 r = {self.i(a, 'value')};", NO_ERRNO])

    def _getrlimit(self, step: Step, a: dict[str, Any]) -> Call:
        res = a["resource"]
        value, _ = flags_value(res, "RLIMIT")
        return Call(
            ["struct rlimit r;", f"int e = getrlimit({value} /* {res} */, &r) < 0 ? errno : 0;"]
        )

    def _grow_stack(self, step: Step, a: dict[str, Any]) -> Call:
        """Frames of a recursive function down to an address (LTP mmap18's thread stack)."""
        return Call([f"i64 r = grow_stack({self.i(a, 'to')});", NO_ERRNO])

    def _brk(self, step: Step, a: dict[str, Any]) -> Call:
        """The system call: it returns the break (the old one when it refuses), never -1."""
        return Call([f"i64 r = syscall(SYS_brk, {self.pointer(a, 'addr')});", NO_ERRNO])

    def _reopen(self, step: Step, a: dict[str, Any]) -> Call:
        fd = self.i(a, "fd")
        if "process" in a:  # /proc/PID/fd/N of the case's process of that name
            path = f"other_fd({c_string(str(a['process']).encode())}, {fd})"
        else:
            path = f"proc_fd({fd})"
        return self._int_call(f"open({path}, {self.flags(a, 'flags', 'O')})")

    def _memfd_create(self, step: Step, a: dict[str, Any]) -> Call:
        if "name_addr" in a:  # a raw pointer where the name goes (NULL: EFAULT)
            name = f"(const char *)(uintptr_t)({self.i(a, 'name_addr')})"
        else:
            name = c_string(str(a["name"]).encode())
        return self._int_call(f"memfd_create({name}, {self.flags(a, 'flags', 'MFD')})")

    def _fcntl(self, step: Step, a: dict[str, Any]) -> Call:
        cmd = self.flags(a, "cmd", "F")
        arg = self.flags(a, "arg", "F_SEAL")
        return self._int_call(f"fcntl({self.i(a, 'fd')}, {cmd}, (unsigned long)({arg}))")

    def _fadvise(self, step: Step, a: dict[str, Any]) -> Call:
        call = (
            f"posix_fadvise({self.i(a, 'fd')}, {self.i(a, 'offset')}, {self.i(a, 'length')}, "
            f"{self.flags(a, 'advice', 'POSIX_FADV')})"
        )
        return Call([f"i64 r = {call}; /* returns the error */", NO_ERRNO])

    def _cachestat(self, step: Step, a: dict[str, Any]) -> Call:
        rng = f"(void *)(uintptr_t)({self.i(a, 'range_addr')})" if "range_addr" in a else "&range"
        out = f"(void *)(uintptr_t)({self.i(a, 'cstat_addr')})" if "cstat_addr" in a else "&r"
        return Call(
            [
                f"struct cstat_range range = {{(uint64_t)({self.i(a, 'offset')}), "
                f"(uint64_t)({self.i(a, 'length')})}};",
                "struct cstat r = {0};",
                f"int e = syscall(451 /* cachestat */, {self.i(a, 'fd')}, {rng}, {out}, "
                f"{self.i(a, 'flags')}) < 0 ? errno : 0;",
            ],
        )

    # -- forms (issue 18) ------------------------------------------------------------------
    def _offset(self, a: dict[str, Any], key: str, var: str) -> tuple[list[str], str]:
        """An optional offset as a pointer to it: NULL (the descriptor's position) when absent."""
        if key not in a:
            return [], "NULL"
        return [f"loff_t {var} = {self.i(a, key)};"], f"&{var}"

    def _splice(self, step: Step, a: dict[str, Any]) -> Call:
        return self._pipe_io(a, "splice", self.flags(a, "flags", "SPLICE_F"))

    def _copy_file_range(self, step: Step, a: dict[str, Any]) -> Call:
        return self._pipe_io(a, "copy_file_range", self.i(a, "flags"))

    def _pipe_io(self, a: dict[str, Any], fn: str, flags: str) -> Call:
        lines_in, off_in = self._offset(a, "off_in", "off_in")
        lines_out, off_out = self._offset(a, "off_out", "off_out")
        call = (
            f"{fn}({self.i(a, 'fd_in')}, {off_in}, {self.i(a, 'fd_out')}, {off_out}, "
            f"(size_t)({self.i(a, 'length')}), {flags})"
        )
        return Call([*lines_in, *lines_out, f"i64 r = {call};", "int e = r < 0 ? errno : 0;"])

    def _vmsplice(self, step: Step, a: dict[str, Any]) -> Call:
        flags = self.flags(a, "flags", "SPLICE_F")
        return self._one_iovec(a, f"vmsplice({self.i(a, 'fd')}, &v, 1, {flags})")

    def _one_iovec(self, a: dict[str, Any], call: str) -> Call:
        """A call given ``v``, one iovec of the step's (addr, length); -1 and errno on failure."""
        return Call(
            [
                f"struct iovec v = {{{self._range(a)}}};",
                f"i64 r = {call};",
                "int e = r < 0 ? errno : 0;",
            ]
        )

    def _sendfile(self, step: Step, a: dict[str, Any]) -> Call:
        at = ["off_t at = " + self.i(a, "offset") + ";"] if "offset" in a else []
        where = "&at" if at else "NULL"
        call = (
            f"sendfile({self.i(a, 'fd_out')}, {self.i(a, 'fd_in')}, {where}, "
            f"(size_t)({self.i(a, 'length')}))"
        )
        return Call([*at, f"i64 r = {call};", "int e = r < 0 ? errno : 0;"])

    def _proc_mem_write(self, step: Step, a: dict[str, Any]) -> Call:
        fill, buf, n = self.data(a)
        call = f"mem_io(1, (void *){buf}, {n}, {self.i(a, 'addr')})"
        return Call([*fill, f"i64 r = {call};", "int e = r < 0 ? errno : 0;"])

    def _proc_mem_read(self, step: Step, a: dict[str, Any]) -> Call:
        n = self.i(a, "length")
        return Call(
            [
                f"struct bytes r = {{calloc(max_({n}, 1), 1), 0}};",
                f"r.n = mem_io(0, r.p, {n}, {self.i(a, 'addr')});",
                "int e = r.n < 0 ? errno : 0;",
            ]
        )

    def _pidfd_open(self, step: Step, a: dict[str, Any]) -> Call:
        name = c_string(str(a.get("process", "")).encode())
        pid = f"pid_named({name})" if "process" in a else "getpid()"
        return self._int_call(f"syscall(434 /* pidfd_open */, {pid}, 0)")

    def _process_madvise(self, step: Step, a: dict[str, Any]) -> Call:
        advice = self.flags(a, "advice", "MADV")
        call = f"syscall(440 /* process_madvise */, {self.i(a, 'pidfd')}, &v, 1, {advice}, "
        return self._one_iovec(a, call + f"{self.i(a, 'flags')})")

    def _ficlone(self, step: Step, a: dict[str, Any]) -> Call:
        return self._checked(f"ioctl({self.i(a, 'fd')}, FICLONE, (int)({self.i(a, 'fd_src')}))")

    def _ficlonerange(self, step: Step, a: dict[str, Any]) -> Call:
        fields = ", ".join(
            f".{c} = {self.i(a, k)}"
            for c, k in (
                ("src_fd", "fd_src"),
                ("src_offset", "src_offset"),
                ("src_length", "length"),
                ("dest_offset", "dest_offset"),
            )
        )
        return Call(
            [
                f"struct file_clone_range range = {{{fields}}};",
                f"int e = ioctl({self.i(a, 'fd')}, FICLONERANGE, &range) < 0 ? errno : 0;",
            ]
        )

    def _fideduperange(self, step: Step, a: dict[str, Any]) -> Call:
        return Call(
            [
                "struct dedupe r;",
                "memset(&r, 0, sizeof r);",
                f"r.range.src_offset = {self.i(a, 'src_offset')};",
                f"r.range.src_length = {self.i(a, 'length')};",
                "r.range.dest_count = 1;",
                f"r.info.dest_fd = {self.i(a, 'fd')};",
                f"r.info.dest_offset = {self.i(a, 'dest_offset')};",
                f"int e = ioctl({self.i(a, 'fd_src')}, FIDEDUPERANGE, &r) < 0 ? errno : 0;",
            ]
        )

    def _lseek(self, step: Step, a: dict[str, Any]) -> Call:
        whence = self.flags(a, "whence", "SEEK")
        return self._int_call(f"lseek({self.i(a, 'fd')}, {self.i(a, 'offset')}, {whence})")

    def _uring_register_buffers(self, step: Step, a: dict[str, Any]) -> Call:
        return self._checked(f"ring_buffers({self._range(a)})")

    def _uring_unregister_buffers(self, step: Step, a: dict[str, Any]) -> Call:
        return self._checked("ring_buffers(NULL, 0)")

    def _uring_read_fixed(self, step: Step, a: dict[str, Any]) -> Call:
        return self._ring_fixed(a, "IORING_OP_READ_FIXED")

    def _uring_write_fixed(self, step: Step, a: dict[str, Any]) -> Call:
        return self._ring_fixed(a, "IORING_OP_WRITE_FIXED")

    def _ring_fixed(self, a: dict[str, Any], opcode: str) -> Call:
        args = ", ".join(self.i(a, k) for k in ("fd", "addr", "length", "offset"))
        return self._int_call(f"ring_fixed({opcode}, {args})")

    def _prctl(self, step: Step, a: dict[str, Any]) -> Call:
        option, _ = flags_value(a["option"], "PR")
        if option not in names.PRCTL_OPTIONS:
            return Call([], error=f"prctl option {option} is not one the case language offers")
        arg5 = c_string(str(a["name"]).encode()) if "name" in a else self.i(a, "arg5")
        args = [self.flags(a, "arg2", "PR"), self.i(a, "arg3"), self.i(a, "arg4"), arg5]
        return self._int_call(
            f"prctl({option}, {', '.join(f'(unsigned long)({x})' for x in args)})"
        )


# Operations that are one call returning -1 with errno on failure, and those whose return value
# is their result: {ARG} is that argument written as C, {range} the (addr, length) pair.
CHECKED = {
    "close": "close({fd})",
    "ftruncate": "ftruncate({fd}, {length})",
    "fsync": "fsync({fd})",
    "fdatasync": "fdatasync({fd})",
    "munmap": "munmap({range})",
    "mprotect": "mprotect({range}, {prot})",
    "msync": "msync({range}, {flags})",
    "madvise": "madvise({range}, {advice})",
    "munlock": "munlock({range})",
    "mlockall": "mlockall({flags})",
    "munlockall": "munlockall()",
    "mseal": "syscall(462 /* mseal */, {range}, {flags})",
    "sem_post": "sem_post((sem_t *)(uintptr_t)({addr}))",
    "fallocate": "fallocate({fd}, {mode}, {offset}, {length})",
    "syncfs": "syncfs({fd})",
    "sync_file_range": "sync_file_range({fd}, {offset}, {length}, {flags})",
}
INT_RESULT = {
    "eventfd": "eventfd({initval}, {flags})",
    "dup": "dup({fd})",
}
