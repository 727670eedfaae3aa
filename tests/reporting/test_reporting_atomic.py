"""Every report file is written to a temporary name and renamed: a failure or a kill in the
middle of a write leaves the previous complete file, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from reporting_sample import make_report

from runner.errors import ReportError
from runner.report.formats import write_formats

ROOT = Path(__file__).resolve().parents[2]


def test_an_error_mid_write_keeps_the_old_files(tmp_path: Path, monkeypatch) -> None:
    write_formats(make_report(), tmp_path, ["junit", "html", "md", "ktap"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    changed = make_report(**{"article-page-size[anon]": "failed"})
    for fmt in ("junit", "html", "md", "ktap"):
        with pytest.raises(ReportError, match="No space left on device"):
            write_formats(changed, tmp_path, [fmt])
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # same files, same bytes, no temporary left behind


def test_a_kill_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    """A child writes a large report and is SIGKILLed after the data is written but before
    the rename: report.html must still be the old, complete page."""
    write_formats(make_report(), tmp_path, ["html"])
    old = (tmp_path / "report.html").read_bytes()
    child = textwrap.dedent(
        f"""
        import os, sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from reporting_sample import make_report, result
        from runner.report.formats import write_formats

        def stall(fd):
            print("writing", flush=True)
            time.sleep(60)

        os.fsync = stall
        big = make_report()
        big["results"] += [result(f"case-{{i}}", "disk", "passed") for i in range(3000)]
        write_formats(big, Path({str(tmp_path)!r}), ["html"])
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".report.html.")]
        assert temps and temps[0].stat().st_size > len(old)  # the new page is being written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert (tmp_path / "report.html").read_bytes() == old
