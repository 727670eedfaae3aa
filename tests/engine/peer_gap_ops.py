"""Self-test pairs of the operations added for peer suites' behaviours (issue 18), in the form
of test_operations.OPERATIONS: steps before, the step, a right expectation, a wrong one, and the
failure text the wrong one must give."""

from __future__ import annotations

PRE_MEMFD = """
  - memfd_create: {name: m}
    as: fd
  - write: {fd: fd, data: "abcd"}
"""

PEER_GAP_OPERATIONS = {
    "fallocate": (
        PRE_MEMFD,
        "fallocate: {fd: fd, mode: FALLOC_FL_PUNCH_HOLE, offset: 0, length: 4}",
        "{errno: EOPNOTSUPP}",
        "{}",
        "expected success, got errno EOPNOTSUPP",
    ),
    "brk": (
        "",
        "brk: 0",
        "{value: {gt: 0}}",
        "{value: 0}",
        "expected value 0, got success, value ",
    ),
    "let": (
        "",
        "let: 2 * PAGE + 1",
        "{value: 2 * PAGE + 1}",
        "{value: 7}",
        "expected value 7, got",
    ),
    "getrlimit": (
        "  - setrlimit: {resource: RLIMIT_NOFILE, soft: 64}\n",
        "getrlimit: RLIMIT_NOFILE",
        "{value: {soft: 64}}",
        "{value: {soft: 65}}",
        "expected value {soft: 65}, got success, value {soft: 64",
    ),
}
