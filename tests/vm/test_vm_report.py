"""Guest facts, kernel issues from dmesg, and merging per-kernel reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.vm import vmreport

DMESG = """\
[    0.1] Linux version 6.1.0
[    0.2] WARNING: boot-time noise we do not blame on the cases
[    2.0] mmapconf: command start
[    2.5] python3[123]: segfault at 7f0000001000 ip 0 sp 0 error 4
[    2.6] ------------[ cut here ]------------
[    2.6] WARNING: CPU: 1 PID: 99 at mm/filemap.c:1234 folio_x+0x1/0x2
[    2.7] BUG: Bad page state in process python3
[    3.0] mmapconf: command end rc=0
"""


def test_kernel_issues_only_during_the_run_and_not_user_faults() -> None:
    issues = vmreport.kernel_issues(DMESG)
    assert len(issues) == 2
    assert "mm/filemap.c" in issues[0] and issues[1].startswith("[    2.7] BUG")


def test_taint_gained_is_an_issue() -> None:
    issues = vmreport.kernel_issues("", taint_before=1 << 12, taint_after=(1 << 12) | (1 << 9))
    assert issues == ["kernel taint gained during the run: W (tainted 4096 -> 4608)"]
    assert vmreport.decode_taint(1 | 1 << 13) == "PE"


def test_guest_facts(tmp_path: Path) -> None:
    (tmp_path / "dmesg.txt").write_text(DMESG)
    (tmp_path / "tainted-before").write_text("0\n")
    (tmp_path / "tainted-after").write_text("0\n")
    (tmp_path / "uptime-start").write_text("1.50\n")
    (tmp_path / "uptime-end").write_text("4.25\n")
    f = vmreport.guest_facts(tmp_path)
    assert f["boot_s"] == 1.5 and f["run_s"] == 2.75 and len(f["kernel_issues"]) == 2


def report(release: str, outcomes: dict[str, str], fs: str = "ext4") -> dict:
    return {
        "schema_version": 1,
        "environment": {
            "kernel_release": release,
            "backings": {"disk": {"fs": fs}, "tmpfs": {"fs": "tmpfs"}},
            "vm": {"fs": fs, "accel": "tcg", "wall_s": 3.0, "kernel_issues": []},
        },
        "summary": {"total": len(outcomes)},
        "results": [
            {"id": i.split("[")[0], "backing": i.split("[")[1][:-1], "outcome": o}
            for i, o in outcomes.items()
        ],
    }


def test_merge_lists_cases_that_differ_between_kernels() -> None:
    a = report("6.1.0", {"x[disk]": "passed", "y[disk]": "skipped", "y[tmpfs]": "skipped"})
    b = report("6.18.0", {"x[disk]": "passed", "y[disk]": "passed", "y[tmpfs]": "skipped"})
    m = vmreport.merge([("6.1", a), ("6.18", b)])
    assert [r["kernel_release"] for r in m["runs"]] == ["6.1.0", "6.18.0"]
    assert m["differences"] == [
        {
            "id": "y",
            "backing": "disk",
            "fs": "ext4",
            "outcomes": {"6.1.0": "skipped", "6.18.0": "passed"},
        }
    ]
    md = vmreport.differences_markdown(m)
    assert "| `y` | disk/ext4 | skipped | passed |" in md
    assert "No case" in vmreport.differences_markdown({"differences": []})


def test_annotate_keeps_the_report_and_adds_vm(tmp_path: Path) -> None:
    p = tmp_path / "report.json"
    p.write_text(json.dumps(report("6.1.0", {"x[disk]": "passed"})))
    vmreport.annotate(p, {"accel": "tcg", "fs": "xfs"})
    r = json.loads(p.read_text())
    assert r["environment"]["vm"] == {"accel": "tcg", "fs": "xfs"}
    assert r["results"][0]["outcome"] == "passed"


def test_reference_readme_separates_behaviour_changes_from_skips(tmp_path: Path) -> None:
    from runner.vm.reference import readme

    reps = {
        "6.1": report("6.1.0", {"x[disk]": "passed", "y[disk]": "skipped", "z[tmpfs]": "passed"}),
        "7.3": report("7.3.0", {"x[disk]": "failed", "y[disk]": "passed", "z[tmpfs]": "passed"}),
    }
    reps["7.3"]["results"][0]["reason"] = "main step 4 (write): got errno EPERM"
    reps["6.1"]["results"][1]["reason"] = "syscall y not available"
    paths = []
    for label, rep in reps.items():
        (tmp_path / label).mkdir()
        p = tmp_path / label / "report.json"
        p.write_text(json.dumps(rep))
        paths.append(p)
    text = readme(paths, tmp_path, ["run", "cases"], links=False)
    behaviour, skips = text.split("### Skipped on some kernels only")
    assert "| `x` | disk/ext4 | passed | failed |" in behaviour
    assert "got errno EPERM" in behaviour and "`y`" not in behaviour
    assert "| `y` | disk/ext4 | skipped | passed |" in skips
    assert "- syscall y not available" in skips
    assert "`z`" not in text and "](6.1/report.json)" not in text


def test_reference_add_keeps_other_reports_and_the_hand_written_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.vm import reference

    old = tmp_path / "6.1" / "report.json"
    old.parent.mkdir()
    old.write_text(json.dumps(report("6.1.0", {"y[disk]": "skipped"})))
    (tmp_path / "README.md").write_text(
        "# generated\n\nstale table\n\n## What the differences mean (by hand)\n\nkept text\n"
    )

    def run_under_kernels(series, argv, report_dir, fs, accel, timeout):
        p = report_dir.resolve() / "7.3" / "report.json"
        p.parent.mkdir()
        p.write_text(json.dumps(report("7.3.0", {"y[disk]": "passed"})))
        (p.parent / "cmd.sh").write_text("not published")
        return [p]

    monkeypatch.setattr(reference.kernels, "fetch", lambda specs: [])
    monkeypatch.setattr(reference, "run_under_kernels", run_under_kernels)
    monkeypatch.chdir(tmp_path.parent)  # a relative --report-dir, as the CLI passes it
    rel = Path(tmp_path.name)
    paths = reference.regenerate(rel, ["7.3"], guest_argv=["run", "cases"], add=True)
    assert paths == [tmp_path / "7.3" / "report.json"]
    assert not (tmp_path / "7.3" / "cmd.sh").exists()
    text = (tmp_path / "README.md").read_text()
    assert "stale table" not in text and "| `y` | disk/ext4 | skipped | passed |" in text
    assert text.endswith("\n## What the differences mean (by hand)\n\nkept text\n")
    assert "6.1.0" in (tmp_path / "matrix.md").read_text()
