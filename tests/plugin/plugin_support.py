"""What the plugin's self-tests share: a small case tree and the expected outcomes.

The cases are chosen to cover every outcome quickly: anonymous memory that passes, a wrong
expectation that fails, a SIGBUS on two backings, an unmet requirement, an engine error and an
invalid document. Each run takes well under a second of case time.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from runner.report.model import load_report

DEMO = """\
id: demo-pass
title: Anonymous memory reads back what was stored
tags: [anonmem, smoke]
steps:
  - mmap: {length: PAGE, prot: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS}
    as: m
  - store: {addr: m, data: "hi"}
  - load: {addr: m, length: 2}
    expect: {value: {data: "hi"}}
---
id: demo-fail
title: A deliberately wrong expectation about fresh anonymous memory
claim: "fresh anonymous memory reads as 'x' (it does not: it reads zeros)"
tags: [anonmem]
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS}
    as: m
  - load: {addr: m, length: 1}
    expect: {value: {data: "x"}}
---
id: demo-sigbus
title: A whole page past EOF raises SIGBUS
tags: [sigbus]
backings: [tmpfs, memfd]
steps:
  - file: f
    data: "hello"
  - mmap: {length: 2 * PAGE, prot: PROT_READ, flags: MAP_SHARED, fd: f}
    as: m
  - load: {addr: m + PAGE}
    expect: {signal: SIGBUS, si_code: BUS_ADRERR, si_addr: m + PAGE}
---
id: demo-skip
title: Needs a kernel from long ago
requires: {kernel: "<2.6"}
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS}
---
id: demo-error
title: unlink has no meaning for a memfd, so the case cannot be carried out
backings: [memfd]
steps:
  - file: f
    size: 10
  - unlink: {file: f}
"""

INVALID = """\
id: broken-op
title: An operation the language does not have
steps:
  - frobnicate: {addr: 0}
---
id: fine-after-broken
title: A valid case in the same file as an invalid one
steps:
  - mmap: {length: PAGE, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS}
"""

# what `mmapconf run` and the plugin must both give for the files above
EXPECTED = {
    "demo-pass[anon]": "passed",
    "demo-fail[anon]": "failed",
    "demo-sigbus[tmpfs]": "passed",
    "demo-sigbus[memfd]": "passed",
    "demo-skip[anon]": "skipped",
    "demo-error[memfd]": "error",
}
EXPECTED_WITH_INVALID = {
    **EXPECTED,
    "broken-op[invalid]": "error",
    "fine-after-broken[anon]": "passed",
}


PLUGIN = ("-p", "conformance", "-p", "no:cacheprovider")
XDIST = ("-p", "xdist.plugin")
FORKED = ("-p", "pytest_forked")


def write(base: Path, rel: str, text: str) -> Path:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def read_report(base: Path, folder: str = "report") -> dict[str, Any]:
    """The report as its reader gives it (packed results unpacked: runner.report.model)."""
    return load_report(base / folder / "report.json")


def report_outcomes(base: Path, folder: str = "report") -> dict[str, str]:
    return {r["name"]: r["outcome"] for r in read_report(base, folder)["results"]}
