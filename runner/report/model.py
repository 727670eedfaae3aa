"""report.json: the one reader, the one writer, and the small vocabulary every renderer shares.

Every format is rendered from report.json. It is read defensively: unknown keys are ignored and
missing ones get neutral defaults, so a newer engine (an added outcome, extra per-result keys)
never breaks rendering.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from runner import outcomes
from runner.errors import ReportError
from runner.lang.conditions import Facts
from runner.report.atomic import write_chunks

# Version 2 writes its results packed (``pack``, declared by the report's ``packing``);
# ``load_report`` unpacks them, and reads a version-1 report (nothing packed) as it was.
SCHEMA_VERSION = 2
FILENAME = "report.json"


def build_report(
    environment: dict[str, Any],
    results: list[dict[str, Any]],
    duration_s: float,
    interrupted: bool = False,
) -> dict[str, Any]:
    """A new report of ``results`` (``Result.to_json()`` dicts, in plan order)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "interrupted": interrupted,
        "environment": environment,
        "summary": summarize(results, duration_s),
        "results": results,
    }


def summarize(results: Iterable[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """The ``summary`` of a report: the total, a count per outcome, the duration."""
    rs = list(results)
    counts = outcomes.tally(outcome(r) for r in rs)
    return {"total": len(rs), **counts, "duration_s": round(duration_s, 3)}


def write_report(
    report: dict[str, Any], path: Path, results: Iterable[dict[str, Any]] | None = None
) -> Path:
    """Write ``report`` to ``path`` (a report.json, or the folder for one) atomically: a crash
    leaves the previous complete file or none. ``results``, if given, are written in place of
    the report's own ``results``, one at a time as they come (from a
    ``runner.report.spool.Spool``): a run's traces are never all in memory at once."""
    path = Path(path)
    if path.name != FILENAME:
        path = path / FILENAME
    write_chunks(path, _chunks(report, results))
    return path


def dumps(data: dict[str, Any]) -> str:
    """JSON in one line per result: the C encoder's speed (``indent`` falls back to the pure
    Python one, about six times slower), and still a file to read, grep and diff by result."""
    return b"".join(_chunks(data)).decode()


def dumps_result(result: dict[str, Any]) -> bytes:
    """One result's line of report.json (ASCII: what UTF-8 cannot encode is escaped)."""
    return json.dumps(result, default=str).encode()


def _chunks(
    data: dict[str, Any], results: Iterable[dict[str, Any]] | None = None
) -> Iterator[bytes]:
    if results is None:
        own = data.get("results")
        if not isinstance(own, list):
            yield (json.dumps(data, default=str) + "\n").encode()
            return
        results = own
    top = {k: v for k, v in data.items() if k not in ("results", "packing")}
    head = json.dumps({**top, "schema_version": SCHEMA_VERSION, "packing": PACKING}, default=str)
    yield f'{head[:-1]}, "results": [\n'.encode()
    for n, line in enumerate(dumps_result(r) for r in pack(results)):
        yield b",\n" + line if n else line
    yield b"\n]}\n"


# What report.json leaves out of a result, and load_report puts back (a sixth of the file):
# - the case's own keys, when the result before it is of the same case with the same keys (its
#   other backings): ``"same_case": true`` says so;
# - a step's key whose value is the default (most cases have one process, "main");
# - the tail of a byte value that repeats one byte RUN_BYTES times or more (a page of zeros
#   read is 8 KB of hex): ``{"$bytes": HEAD, "$run": [BYTE, COUNT]}``.
CASE_KEYS = ("file", "title", "claim", "refs", "tags")
SAME_CASE = "same_case"
STEP_DEFAULTS = {"process": "main"}
RUN_BYTES = 64
PACKING = {"case_keys": list(CASE_KEYS), "step_defaults": STEP_DEFAULTS, "run_bytes": RUN_BYTES}


def pack(results: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    previous: dict[str, Any] = {}
    for r in results:
        out = dict(r)
        if _same_case(previous, r):
            out = {k: v for k, v in r.items() if k not in CASE_KEYS} | {SAME_CASE: True}
        if isinstance(r.get("steps"), list):
            out["steps"] = [_pack_step(s) for s in r["steps"]]
        previous = r
        yield out


def _same_case(previous: dict[str, Any], r: dict[str, Any]) -> bool:
    """Whether R can leave its case's keys to PREVIOUS: the same case, the same keys."""
    if not previous or result_id(previous) != result_id(r):
        return False
    return all(previous.get(k, ...) == r.get(k, ...) for k in CASE_KEYS)


def _pack_step(step: Any) -> Any:
    if not isinstance(step, dict):
        return step
    out = {k: v for k, v in step.items() if STEP_DEFAULTS.get(k, ...) != v}
    value = step.get("result")
    if isinstance(value, dict) and isinstance(value.get("$bytes"), str) and len(value) == 1:
        out["result"] = _pack_bytes(value["$bytes"])
    return out


def _pack_bytes(hexed: str) -> dict[str, Any]:
    """``{"$bytes": HEX}`` with its tail run of one byte counted, if long enough."""
    if len(hexed) < 2 * RUN_BYTES:
        return {"$bytes": hexed}
    byte, head = hexed[-2:], hexed
    while head.endswith(byte * RUN_BYTES):  # whole blocks first: few steps for a long run
        head = head[: -2 * RUN_BYTES]
    while head and head[-2:] == byte:
        head = head[:-2]
    count = (len(hexed) - len(head)) // 2
    if count < RUN_BYTES:
        return {"$bytes": hexed}
    return {"$bytes": head, "$run": [byte, count]}


def unpack(data: dict[str, Any]) -> None:
    """Put back, in place, what ``pack`` left out of a report's results, as the report's own
    ``packing`` says (a report without one is not packed)."""
    packing = mapping(data.pop("packing", None))
    if not packing:
        return
    keys = [k for k in packing.get("case_keys") or [] if isinstance(k, str)]
    defaults = mapping(packing.get("step_defaults"))
    previous: dict[str, Any] = {}
    for r in results(data):
        if r.get(SAME_CASE) is True and previous and result_id(previous) == result_id(r):
            del r[SAME_CASE]
            r.update({k: previous[k] for k in keys if k in previous})
        for step in r.get("steps") or []:
            if isinstance(step, dict):
                _unpack_step(step, defaults)
        previous = r


# A run longer than this is left as written: a report from elsewhere is read, not trusted.
MAX_RUN = 1 << 24


def _unpack_step(step: dict[str, Any], defaults: dict[str, Any]) -> None:
    for k, v in defaults.items():
        step.setdefault(k, v)
    value = mapping(step.get("result"))
    head, run = value.get("$bytes"), value.get("$run")
    if not (isinstance(head, str) and isinstance(run, list) and len(run) == 2):
        return
    byte, count = run
    if isinstance(byte, str) and len(byte) == 2 and isinstance(count, int) and 0 < count <= MAX_RUN:
        step["result"] = {"$bytes": head + byte * count}


# A passed result keeps this many steps from the start and from the end of its trace (a loop
# of thousands of passed steps is most of a report otherwise); --full-traces keeps them all.
# What did not pass always keeps its whole trace.
PASSED_HEAD, PASSED_TAIL = 8, 4


def bounded(result: dict[str, Any]) -> dict[str, Any]:
    """A passed result's trace cut to its start and end; ``steps_left_out`` counts the rest."""
    steps = result.get("steps") or []
    if outcome(result) != "passed" or len(steps) <= PASSED_HEAD + PASSED_TAIL:
        return result
    left_out = len(steps) - PASSED_HEAD - PASSED_TAIL
    return {
        **result,
        "steps": steps[:PASSED_HEAD] + steps[-PASSED_TAIL:],
        "steps_left_out": result.get("steps_left_out", 0) + left_out,
    }


def read_input(path: Path, error: type[ReportError] = ReportError, kind: str = "file") -> str:
    """The text of a file a report tool was given; ``error`` with a one-line reason otherwise."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {kind}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None


def load_report(path: Path) -> dict[str, Any]:
    """Read and minimally check a report.json; raise ReportError with a one-line reason."""
    path = Path(path)
    text = read_input(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise ReportError(f"{path}: not a mmapconf report (JSON nested too deeply)") from None
    check_report(data, str(path))
    unpack(data)
    return data


def check_report(data: Any, where: str = "report") -> None:
    """Raise ReportError unless ``data`` has the shape every renderer relies on."""
    if not isinstance(data, dict):
        raise ReportError(f"{where}: not a mmapconf report (top level is not an object)")
    results = data.get("results")
    if not isinstance(results, list):
        raise ReportError(f"{where}: not a mmapconf report (no 'results' list)")
    for key, kind in _TOP_TYPES.items():
        if key in data and not _is(data[key], kind):
            raise ReportError(f"{where}: {key!r} is not {_DESCRIBE[kind]}")
    for i, r in enumerate(results):
        if not isinstance(r, dict) or not isinstance(result_name(r), str) or not result_name(r):
            raise ReportError(f"{where}: results[{i}] has no name")
        _check_fields(r, _RESULT_TYPES, f"{where}: results[{i}]")
        for j, step in enumerate(r.get("steps") or []):
            _check_fields(step, _STEP_TYPES, f"{where}: results[{i}].steps[{j}]")


# The types every renderer relies on, for the keys a report may have (others are ignored).
_STR, _INT, _NUM, _BOOL, _DICT = "str", "int", "num", "bool", "dict"
_OPT_STR, _OPT_BOOL, _STRS, _DICTS = "str?", "bool?", "[str]", "[dict]"
_DESCRIBE = {
    _STR: "a string", _INT: "an integer", _NUM: "a number", _BOOL: "true or false",
    _DICT: "an object", _OPT_STR: "a string or null", _OPT_BOOL: "true, false or null",
    _STRS: "a list of strings", _DICTS: "a list of objects",
}  # fmt: skip
_TOP_TYPES = {"environment": _DICT, "summary": _DICT, "interrupted": _BOOL}
_RESULT_TYPES = {
    "name": _STR, "id": _STR, "backing": _STR, "file": _STR, "line": _INT, "outcome": _STR,
    "reason": _STR, "duration_s": _NUM, "title": _STR, "claim": _OPT_STR, "refs": _STRS,
    "tags": _STRS, "steps": _DICTS, "outcomes_seen": _STRS, "steps_left_out": _INT,
    "output": _STR, "uses_machine_code": _BOOL, "facts": _DICT,
}  # fmt: skip
_STEP_TYPES = {
    "process": _STR, "step": _STR, "op": _STR, "line": _INT, "args": _DICT,
    "expected": _OPT_STR, "observed": _OPT_STR, "ok": _OPT_BOOL, "errno": _OPT_STR,
    "signal": _OPT_STR, "si_code": _OPT_STR, "si_addr": _OPT_STR,
}  # fmt: skip


def _is(value: Any, kind: str) -> bool:
    if kind.endswith("?") and value is None:
        return True
    kind = kind.rstrip("?")
    if kind in (_STRS, _DICTS):
        inner = str if kind == _STRS else dict
        return isinstance(value, list) and all(isinstance(v, inner) for v in value)
    if kind == _NUM:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {_STR: str, _BOOL: bool, _DICT: dict}[kind])


def _check_fields(obj: Any, types: dict[str, str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ReportError(f"{where} is not an object")
    for key, kind in types.items():
        if key in obj and not _is(obj[key], kind):
            raise ReportError(f"{where}: {key!r} is not {_DESCRIBE[kind]}")


def result_name(r: dict[str, Any]) -> str:
    """``ID[BACKING]``: the report's key for one result."""
    name = r.get("name")
    if isinstance(name, str) and name:
        return name
    rid = r.get("id") or ""
    backing = r.get("backing")
    return f"{rid}[{backing}]" if backing else str(rid)


def result_id(r: dict[str, Any]) -> str:
    rid = r.get("id")
    if isinstance(rid, str) and rid:
        return rid
    return split_name(result_name(r))[0]


def split_name(name: str) -> tuple[str, str | None]:
    """``"a-b[tmpfs]"`` -> ``("a-b", "tmpfs")``; a name without brackets has no backing."""
    m = re.fullmatch(r"(.*)\[([^\[\]]*)\]", name)
    return (m.group(1), m.group(2)) if m else (name, None)


def outcome(r: dict[str, Any]) -> str:
    o = r.get("outcome")
    return o if isinstance(o, str) and o else "error"


def results(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report.get("results") or [] if isinstance(r, dict)]


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: report.json is read defensively."""
    return value if isinstance(value, dict) else {}


def environment(report: dict[str, Any]) -> dict[str, Any]:
    return mapping(report.get("environment"))


def backings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The environment's backings by name, each an object (``dir``, ``fs``, ...)."""
    return {str(k): mapping(v) for k, v in mapping(environment(report).get("backings")).items()}


def kernel_release(report: dict[str, Any]) -> str:
    return str(environment(report).get("kernel_release") or "unknown")


def kernel_label(report: dict[str, Any]) -> str:
    """The kernel release, with the image's sha256 prefix for a kernel given by path: two
    builds that name themselves alike are still two kernels."""
    vm = environment(report).get("vm")
    k = vm.get("kernel") if isinstance(vm, dict) else None
    sha = k.get("sha256") if isinstance(k, dict) else None
    return kernel_release(report) + (f"@{sha[:8]}" if isinstance(sha, str) and sha else "")


def result_facts(report: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    """What a result ran on: its own ``facts`` (backing kind, filesystem; added by the engine)
    first, the report's environment second (kernel, arch, and the backing's entry), so one
    report can hold disk results on several filesystems."""
    env = environment(report)
    facts: dict[str, Any] = {
        "kernel": kernel_release(report),
        "arch": env.get("machine"),
        "page_size": env.get("page_size"),
    }
    backings = env.get("backings")
    b = backings.get(r.get("backing")) if isinstance(backings, dict) else None
    if isinstance(b, dict):
        facts.update(backing=b.get("kind"), fs=b.get("fs"))
    if not facts.get("backing"):
        facts["backing"] = split_backing(r.get("backing"))
    own = r.get("facts")
    if isinstance(own, dict):
        facts.update({k: v for k, v in own.items() if v is not None})
    if isinstance(r.get("fs"), str):
        facts["fs"] = r["fs"]
    return facts


def split_backing(name: Any) -> str | None:
    """The backing kind of a result's backing name: ``disk:xfs`` and ``disk/flushed`` (a disk
    model after a power cut) -> ``disk``."""
    return re.split("[:/]", name, maxsplit=1)[0] if isinstance(name, str) and name else None


def backing_fs(report: dict[str, Any], r: dict[str, Any]) -> str | None:
    """The filesystem a result ran on (see result_facts)."""
    fs = result_facts(report, r).get("fs")
    return fs if isinstance(fs, str) else None


def facts(report: dict[str, Any], r: dict[str, Any]) -> Facts:
    """``result_facts`` as the case language's Facts, which a baseline entry's ``when`` is
    judged against by the same evaluator as a case's ``when``."""
    f = result_facts(report, r)
    fs, disk = f.get("fs"), f.get("disk")
    return Facts(
        kernel=str(f.get("kernel")),
        arch=str(f.get("arch") or ""),
        root=environment(report).get("uid") == 0,
        backing=str(f.get("backing") or ""),
        fs=fs if isinstance(fs, str) else None,
        page_size=int(f.get("page_size") or 0),
        disk=disk if isinstance(disk, str) else None,  # after a power cut: its disk model
    )


def counts(report: dict[str, Any]) -> dict[str, int]:
    """Count per outcome, computed from the results (always in step with them), with every
    known outcome present so tables have a stable shape."""
    return outcomes.tally(outcome(r) for r in results(report))


def counts_text(report: dict[str, Any]) -> str:
    """``3 passed, 1 failed``: the outcomes that occur, in order."""
    return ", ".join(f"{n} {o}" for o, n in counts(report).items() if n) or "nothing ran"


def gate_failures(report: dict[str, Any]) -> list[str]:
    """Why ``report`` fails its gate, one line a reason; empty when it passes. The one gate of
    every run path: a result whose outcome fails it, or a baseline problem (an expired entry,
    an unexpected pass under ``strict``)."""
    bad = [f"{result_name(r)}: {outcome(r)}" for r in results(report) if failing(r)]
    base = report.get("baseline")
    problems = base.get("problems") if isinstance(base, dict) else None
    return bad + [str(p) for p in problems or []]


def gate_exit_code(report: dict[str, Any]) -> int:
    """0 when ``report`` passes its gate, else 1."""
    return 1 if gate_failures(report) else 0


def failing(r: dict[str, Any]) -> bool:
    return outcomes.fails_gate(outcome(r))


def total_duration(report: dict[str, Any]) -> float:
    s = report.get("summary")
    if isinstance(s, dict) and isinstance(s.get("duration_s"), (int, float)):
        return float(s["duration_s"])
    return float(sum(r.get("duration_s") or 0 for r in results(report)))


def failing_step(r: dict[str, Any]) -> dict[str, Any] | None:
    """The first step that did not go as expected, or None."""
    for s in r.get("steps") or []:
        if isinstance(s, dict) and s.get("ok") is False:
            return s
    return None


def observed_signal(r: dict[str, Any]) -> str | None:
    """The signal (with si_code) a result's steps observed: the failing step's if any, else the
    last step that saw one (an expected SIGBUS is still worth showing)."""
    steps = [s for s in r.get("steps") or [] if isinstance(s, dict)]
    f = failing_step(r)
    for s in ([f] if f else []) + list(reversed(steps)):
        if s.get("signal"):
            code = f"/{s['si_code']}" if s.get("si_code") else ""
            return f"{s['signal']}{code}"
    return None


def observed_errno(r: dict[str, Any]) -> str | None:
    steps = [s for s in r.get("steps") or [] if isinstance(s, dict)]
    f = failing_step(r)
    for s in ([f] if f else []) + list(reversed(steps)):
        if s.get("errno"):
            return str(s["errno"])
    return None
