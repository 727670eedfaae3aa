"""JUnit XML from report.json, in the shape Jenkins, GitLab and GitHub test reporters read.

One <testsuite> per backing, so a CI's test view groups results the way the matrix does; each
<testcase> carries properties (kernel release, backing, filesystem, observed signal/errno)
because those are what a reader of a failure needs first, and most JUnit viewers show them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from runner.report import model

# XML 1.0 forbids most control characters even when escaped; a reason quoting raw bytes could
# carry them, and one of them would make the whole file unparseable.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _XML_BAD.sub("\ufffd", "" if text is None else str(text))


def _classname(r: dict[str, Any]) -> str:
    """``cases/article/sigbus.yaml`` -> ``mmapconf.article.sigbus``: viewers group by it."""
    f = str(r.get("file") or "")
    f = re.sub(r"^cases/", "", f)
    f = re.sub(r"\.ya?ml$", "", f)
    parts = [p for p in re.split(r"[/\\]", f) if p]
    return ".".join(["mmapconf", *parts]) if parts else "mmapconf"


def _properties(parent: ET.Element, props: list[tuple[str, Any]]) -> None:
    el = ET.SubElement(parent, "properties")
    for name, value in props:
        if value is None or value == "":
            continue
        ET.SubElement(el, "property", name=name, value=_clean(value))


def _testcase(report: dict[str, Any], r: dict[str, Any]) -> ET.Element:
    tc = ET.Element(
        "testcase",
        name=_clean(model.result_name(r)),
        classname=_clean(_classname(r)),
        time=f"{float(r.get('duration_s') or 0):.6f}",
    )
    if r.get("file"):
        tc.set("file", _clean(r["file"]))
    if isinstance(r.get("line"), int):
        tc.set("line", str(r["line"]))
    props: list[tuple[str, Any]] = [
        ("kernel_release", model.kernel_release(report)),
        ("backing", r.get("backing")),
        ("filesystem", model.backing_fs(report, r)),
        ("outcome", model.outcome(r)),
        ("observed_signal", model.observed_signal(r)),
        ("observed_errno", model.observed_errno(r)),
        ("title", r.get("title")),
        ("claim", r.get("claim")),
        ("tags", " ".join(r.get("tags") or [])),
    ]
    props += [("ref", ref) for ref in r.get("refs") or []]
    base = r.get("baseline")
    if isinstance(base, dict):
        props += [("baseline", base.get("status")), ("baseline_evidence", base.get("evidence"))]
    _properties(tc, props)

    o = model.outcome(r)
    reason = _clean(r.get("reason") or o)
    trace = "\n".join(model.step_lines(r))
    if o == "failed":
        ET.SubElement(tc, "failure", type="failed", message=reason).text = _clean(trace)
    elif o == "timeout":
        # A hang is the system under test misbehaving (e.g. msync never returns), so it is a
        # failure, typed so that it can be told apart.
        ET.SubElement(tc, "failure", type="timeout", message=reason).text = _clean(trace)
    elif o == "error":
        ET.SubElement(tc, "error", type="error", message=reason).text = _clean(trace)
    elif o == "skipped":
        ET.SubElement(tc, "skipped", message=reason)
    elif o == "known":
        # Like pytest's xfail: a baselined deviation is reported as skipped so it does not
        # fail JUnit-driven gates, with the original reason kept.
        ET.SubElement(tc, "skipped", type="known", message=_clean(f"known deviation: {reason}"))
    elif o not in ("passed", "flaky"):
        ET.SubElement(tc, "error", type=_clean(o), message=reason).text = _clean(trace)
    if trace and tc.find("failure") is None and tc.find("error") is None:
        # A failure or error element already carries the trace; don't print it twice.
        ET.SubElement(tc, "system-out").text = _clean(trace)
    return tc


def _suite_counts(rs: list[dict[str, Any]]) -> dict[str, int]:
    c = {"tests": len(rs), "failures": 0, "errors": 0, "skipped": 0}
    for r in rs:
        o = model.outcome(r)
        if o in ("failed", "timeout"):
            c["failures"] += 1
        elif o in ("skipped", "known"):
            c["skipped"] += 1
        elif o not in ("passed", "flaky"):
            c["errors"] += 1
    return c


def render_junit(report: dict[str, Any]) -> str:
    """The JUnit XML document for ``report``, as text (UTF-8 declared)."""
    env = model.environment(report)
    by_backing: dict[str, list[dict[str, Any]]] = {}
    for r in model.results(report):
        by_backing.setdefault(str(r.get("backing") or "none"), []).append(r)

    root = ET.Element("testsuites", name="mmapconf")
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for backing, rs in by_backing.items():
        c = _suite_counts(rs)
        t = sum(float(r.get("duration_s") or 0) for r in rs)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_clean(f"mmapconf[{backing}]"),
            **{k: str(v) for k, v in c.items()},
            time=f"{t:.6f}",
        )
        if env.get("started"):
            suite.set("timestamp", _clean(env["started"]))
        backings = env.get("backings") if isinstance(env.get("backings"), dict) else {}
        binfo = backings.get(backing) if isinstance(backings.get(backing), dict) else {}
        _properties(
            suite,
            [
                ("kernel_release", env.get("kernel_release")),
                ("kernel_version", env.get("kernel_version")),
                ("machine", env.get("machine")),
                ("page_size", env.get("page_size")),
                ("python", env.get("python")),
                ("libc", env.get("libc")),
                ("backing", backing),
                ("backing_dir", binfo.get("dir")),
                ("filesystem", binfo.get("fs")),
                ("interrupted", "true" if report.get("interrupted") else None),
            ],
        )
        for r in rs:
            suite.append(_testcase(report, r))
        for k in total:
            total[k] += c[k]
        total_time += t
    for k, v in total.items():
        root.set(k, str(v))
    root.set("time", f"{model.total_duration(report) or total_time:.6f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
