"""JUnit XML from report.json, in the shape Jenkins, GitLab and GitHub test reporters read.

One <testsuite> per backing, so a CI's test view groups results the way the matrix does; each
<testcase> carries properties (kernel release, backing, filesystem, observed signal/errno)
because those are what a reader of a failure needs first, and most JUnit viewers show them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from runner import outcomes
from runner.report import model
from runner.report.trace import steps_of, trace_lines

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
        if value is not None and value != "":
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
    _properties(tc, testcase_properties(report, r))
    _verdict(tc, r)
    return tc


def testcase_properties(report: dict[str, Any], r: dict[str, Any]) -> list[tuple[str, str]]:
    """The properties of result ``r``'s <testcase>, by the same names from ``mmapconf run`` and
    from the pytest plugin (which adds them to each item's ``user_properties``)."""
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
    return [(name, _clean(value)) for name, value in props if value is not None and value != ""]


def _verdict(tc: ET.Element, r: dict[str, Any]) -> None:
    """The child element the outcome maps to (runner.outcomes): a hang or a flaky verdict is a
    ``failure`` typed so that it can be told apart; a baselined deviation is ``skipped`` (like
    pytest's xfail) with the original reason kept."""
    o = model.outcome(r)
    element = outcomes.of(o).junit
    reason = _clean(r.get("reason") or o)
    if o == "known":
        reason = _clean(f"known deviation: {reason}")
    trace = "\n".join(trace_lines(steps_of(r)))
    if element in ("failure", "error"):
        ET.SubElement(tc, element, type=_clean(o), message=reason).text = _clean(trace)
        return  # the element carries the trace; don't print it twice
    if element == "skipped":
        skipped = ET.SubElement(tc, "skipped", message=reason)
        if o != "skipped":
            skipped.set("type", _clean(o))
    if trace:
        ET.SubElement(tc, "system-out").text = _clean(trace)


_COUNTED = {"failure": "failures", "error": "errors", "skipped": "skipped"}


def _suite_counts(rs: list[dict[str, Any]]) -> dict[str, int]:
    c = {"tests": len(rs), "failures": 0, "errors": 0, "skipped": 0}
    for r in rs:
        element = outcomes.of(model.outcome(r)).junit
        if element is not None:
            c[_COUNTED[element]] += 1
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
        attrs = {k: str(v) for k, v in c.items()}
        attrs.update(name=_clean(f"mmapconf[{backing}]"), time=f"{t:.6f}")
        suite = ET.SubElement(root, "testsuite", attrs)
        if env.get("started"):
            suite.set("timestamp", _clean(env["started"]))
        binfo = model.backings(report).get(backing, {})
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
