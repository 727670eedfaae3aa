"""Realistic hand-made report dicts, shaped like the engine's report.json (DESIGN.md)."""

from __future__ import annotations

import copy
from typing import Any

ENV: dict[str, Any] = {
    "kernel_release": "6.18.44-1-amd64",
    "kernel_version": "#1 SMP PREEMPT_DYNAMIC Debian 6.18.44-1",
    "machine": "x86_64",
    "page_size": 4096,
    "python": "3.11.7",
    "libc": "glibc 2.36",
    "uid": 0,
    "started": "2026-11-26T05:00:00+00:00",
    "argv": ["mmapconf", "run", "cases/article"],
    "backings": {
        "disk": {"dir": "/tmp", "fs": "ext4"},
        "tmpfs": {"dir": "/dev/shm", "fs": "tmpfs"},
        "memfd": {"dir": None, "fs": "tmpfs"},
        "anon": {"dir": None, "fs": None},
    },
}


def step(
    n: str,
    op: str,
    ok: bool = True,
    *,
    process: str = "main",
    line: int = 10,
    args: dict[str, Any] | None = None,
    expected: str | None = "success",
    observed: str | None = "success",
    signal: str | None = None,
    si_code: str | None = None,
    si_addr: str | None = None,
    errno: str | None = None,
    result: Any = None,
) -> dict[str, Any]:
    return {
        "process": process,
        "step": n,
        "op": op,
        "line": line,
        "args": args or {},
        "expected": expected,
        "observed": observed,
        "result": result,
        "errno": errno,
        "signal": signal,
        "si_code": si_code,
        "si_addr": si_addr,
        "ok": ok,
    }


def result(
    rid: str,
    backing: str,
    outcome: str,
    reason: str = "",
    *,
    tags: list[str] | None = None,
    steps: list[dict[str, Any]] | None = None,
    title: str | None = None,
    claim: str | None = None,
    file: str = "cases/article/misc.yaml",
) -> dict[str, Any]:
    return {
        "name": f"{rid}[{backing}]",
        "id": rid,
        "backing": backing,
        "file": file,
        "line": 1,
        "title": title or f"behaviour of {rid}",
        "claim": claim,
        "refs": ["man 2 mmap", "seed article §3.1"],
        "tags": tags or ["article"],
        "outcome": outcome,
        "reason": reason,
        "duration_s": 0.0021,
        "steps": steps if steps is not None else [step("1", "mmap")],
    }


SIGBUS_FAIL = [
    step("1", "file", args={"file": "f", "data": "hello, world"}),
    step("2", "open", args={"file": "f", "flags": "O_RDONLY"}, result=4),
    step("3", "mmap", args={"length": 8192, "prot": "PROT_READ"}, result="m"),
    step("4", "load", args={"addr": "m+4095"}, expected="00", observed="00"),
    step(
        "5",
        "load",
        ok=False,
        line=19,
        args={"addr": "m+4096"},
        expected="SIGBUS/BUS_ADRERR at m+4096",
        observed="no signal, value 00",
    ),
]
SIGBUS_PASS = [*SIGBUS_FAIL[:4]] + [
    step(
        "5",
        "load",
        line=19,
        args={"addr": "m+4096"},
        expected="SIGBUS/BUS_ADRERR at m+4096",
        observed="SIGBUS/BUS_ADRERR at m+4096",
        signal="SIGBUS",
        si_code="BUS_ADRERR",
        si_addr="m+4096",
    )
]


def make_report(**overrides: str) -> dict[str, Any]:
    """Twelve results over four backings, every outcome represented; ``overrides`` maps a
    result name to a new outcome."""
    rs = [
        result(
            "article-sigbus-past-eof",
            "disk",
            "passed",
            tags=["sigbus", "eof"],
            steps=SIGBUS_PASS,
            claim="mmapdemo 4096 dies with 'Bus error'",
            file="cases/article/sigbus.yaml",
        ),
        result(
            "article-sigbus-past-eof",
            "tmpfs",
            "failed",
            "main step 5 (load): expected SIGBUS/BUS_ADRERR at m+4096, got no signal",
            tags=["sigbus", "eof"],
            steps=SIGBUS_FAIL,
            file="cases/article/sigbus.yaml",
        ),
        result(
            "article-sigbus-past-eof",
            "memfd",
            "passed",
            tags=["sigbus", "eof"],
            steps=SIGBUS_PASS,
            file="cases/article/sigbus.yaml",
        ),
        result(
            "article-rdonly-shared-write",
            "disk",
            "passed",
            tags=["eacces"],
            steps=[step("2", "mmap", expected="EACCES", observed="EACCES", errno="EACCES")],
        ),
        result("article-rdonly-shared-write", "tmpfs", "passed", tags=["eacces"]),
        result(
            "article-munmap-segv",
            "anon",
            "passed",
            tags=["segv"],
            steps=[
                step(
                    "3",
                    "load",
                    expected="SIGSEGV/SEGV_MAPERR at m",
                    observed="SIGSEGV/SEGV_MAPERR at m",
                    signal="SIGSEGV",
                    si_code="SEGV_MAPERR",
                    si_addr="m",
                )
            ],
        ),
        result("article-page-size", "anon", "passed", tags=["page"]),
        result("article-fork-shared-anon", "anon", "passed", tags=["fork"]),
        result("article-msync-dirty", "disk", "passed", tags=["msync", "cachestat"]),
        result(
            "article-msync-dirty",
            "tmpfs",
            "skipped",
            "requires syscall cachestat",
            tags=["msync", "cachestat"],
        ),
        result(
            "article-sem-shared",
            "disk",
            "timeout",
            "timed out after 10 s in reader step 4",
            tags=["sem"],
        ),
        result(
            "article-private-cow",
            "disk",
            "error",
            "setup: ftruncate: ENOSPC <ctrl:\x01> & 'quotes' \"dq\" <b>not bold</b> # hash",
            tags=["cow"],
        ),
    ]
    for r in rs:
        if r["name"] in overrides:
            r["outcome"] = overrides[r["name"]]
            if overrides[r["name"]] == "passed":
                r["reason"] = ""
    counts = {
        o: sum(1 for r in rs if r["outcome"] == o)
        for o in ("passed", "failed", "skipped", "error", "timeout")
    }
    return {
        "schema_version": 1,
        "interrupted": False,
        "environment": copy.deepcopy(ENV),
        "summary": {"total": len(rs), **counts, "duration_s": 0.53},
        "results": rs,
    }


def with_kernel(report: dict[str, Any], release: str) -> dict[str, Any]:
    out = copy.deepcopy(report)
    out["environment"]["kernel_release"] = release
    return out
