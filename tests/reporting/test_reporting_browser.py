"""The HTML report in a real browser: Debian's headless Chromium, driven over DevTools.

Checks that the counts the page shows are report.json's, and that the filters (outcome, tag,
backing, text, the count buttons, the URL fragment) hide and show exactly the right rows.
Skips, saying why, where Chromium is absent (scripts/install-browser.sh installs it; CI runs
that script first).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from cdp import FLAGS, Browser, find_chromium
from reporting_sample import make_report

from runner.report.formats import write_formats

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium is not installed (run scripts/install-browser.sh)",
)

VISIBLE = "[...document.querySelectorAll('tr.result')].filter(r => !r.hidden)"
VISIBLE_NAMES = f"{VISIBLE}.map(r => r.dataset.name).sort()"


@pytest.fixture(scope="module")
def report() -> dict:
    r = make_report()
    r["results"][6]["outcome"] = "flaky"  # an outcome this page has no special case for
    r["results"][6]["outcomes_seen"] = ["failed", "passed"]
    return r


@pytest.fixture(scope="module")
def page_file(report: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    (out / "report.json").write_text(json.dumps(report))
    (path,) = write_formats(json.loads((out / "report.json").read_text()), out, ["html"])
    return path


@pytest.fixture(scope="module")
def browser(page_file: Path):
    pytest.importorskip("websocket", reason="websocket-client drives Chromium: pip install it")
    with Browser(page_file.as_uri()) as b:
        b.wait_for("document.body && document.body.dataset.ready === 'true'")
        yield b


def js_literal(names: list[str]) -> str:
    """A JS string literal holding what JSON.stringify makes of ``names`` (no spaces)."""
    return json.dumps(json.dumps(names, separators=(",", ":")))


def names(report: dict, pred) -> list[str]:
    return sorted(r["name"] for r in report["results"] if pred(r))


def reset(b: Browser) -> None:
    b.click("#f-reset")
    b.wait_for(f"{VISIBLE}.length === document.querySelectorAll('tr.result').length")


def test_counts_shown_match_report_json(browser: Browser, report: dict) -> None:
    total = len(report["results"])
    shown = browser.js(
        "Object.fromEntries([...document.querySelectorAll('[id^=count-]')]"
        ".map(e => [e.id.slice(6), Number(e.textContent)]))"
    )
    expected = {
        o: sum(1 for r in report["results"] if r["outcome"] == o)
        for o in {r["outcome"] for r in report["results"]}
    }
    assert shown["total"] == total
    for outcome, n in expected.items():
        assert shown[outcome] == n, outcome
    # summary outcomes report.json lists, even at zero, are shown as such
    for outcome in ("passed", "failed", "skipped", "error", "timeout"):
        assert shown[outcome] == sum(1 for r in report["results"] if r["outcome"] == outcome)
    assert browser.js("Number(document.getElementById('shown').textContent)") == total
    assert browser.js(f"{VISIBLE}.length") == total


def test_outcome_filter_hides_and_shows(browser: Browser, report: dict) -> None:
    browser.js(
        "const s = document.getElementById('f-outcome'); s.value = 'failed';"
        "s.dispatchEvent(new Event('change'))"
    )
    assert browser.js(VISIBLE_NAMES) == names(report, lambda r: r["outcome"] == "failed")
    assert browser.js("document.getElementById('shown').textContent") == "1"
    assert browser.js("location.hash") == "#outcome=failed"
    reset(browser)
    assert browser.js(VISIBLE_NAMES) == names(report, lambda r: True)


def test_tag_and_backing_filters_combine(browser: Browser, report: dict) -> None:
    browser.js(
        "const t = document.getElementById('f-tag'); t.value = 'sigbus';"
        "t.dispatchEvent(new Event('change'))"
    )
    assert browser.js(VISIBLE_NAMES) == names(report, lambda r: "sigbus" in r["tags"])
    browser.js(
        "const b = document.getElementById('f-backing'); b.value = 'memfd';"
        "b.dispatchEvent(new Event('change'))"
    )
    assert browser.js(VISIBLE_NAMES) == ["article-sigbus-past-eof[memfd]"]
    reset(browser)


def test_typing_in_the_text_filter(browser: Browser, report: dict) -> None:
    browser.click("#f-text")
    browser.type_text("CACHESTAT")  # case-insensitive; matches tags and the skip reason
    want = names(report, lambda r: "cachestat" in r["tags"])
    browser.wait_for(f"JSON.stringify({VISIBLE_NAMES}) === {js_literal(want)}")
    assert browser.js("document.getElementById('no-match').hidden") is True
    browser.type_text(" nothing-matches-this")
    browser.wait_for(f"{VISIBLE}.length === 0")
    assert browser.js("document.getElementById('no-match').hidden") is False
    reset(browser)


def test_clicking_a_count_filters_by_that_outcome_and_again_clears(
    browser: Browser, report: dict
) -> None:
    browser.click("button[data-outcome='skipped']")
    assert browser.js(VISIBLE_NAMES) == names(report, lambda r: r["outcome"] == "skipped")
    browser.click("button[data-outcome='skipped']")
    assert browser.js(f"{VISIBLE}.length") == len(report["results"])


def test_fragment_sets_the_filter(browser: Browser, page_file: Path, report: dict) -> None:
    browser.js("location.hash = 'backing=disk&outcome=passed'")
    want = names(report, lambda r: r["backing"] == "disk" and r["outcome"] == "passed")
    browser.wait_for(f"JSON.stringify({VISIBLE_NAMES}) === {js_literal(want)}")
    assert browser.js("document.getElementById('f-backing').value") == "disk"
    reset(browser)


def test_details_show_claim_refs_and_steps(browser: Browser) -> None:
    row = "tr[data-name='article-sigbus-past-eof[tmpfs]']"
    browser.click(f"{row} summary")
    text = browser.wait_for(
        f'document.querySelector("{row} details").open && '
        f'document.querySelector("{row} details").innerText'
    )
    assert "seed article §3.1" in text
    assert "SIGBUS/BUS_ADRERR at m+4096" in text and "no signal, value 00" in text


def test_dump_dom_with_a_fragment(page_file: Path, report: dict) -> None:
    """Without DevTools: the page applies a filter from its URL on load."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                find_chromium(),
                *[f for f in FLAGS if "remote-debugging" not in f],
                f"--user-data-dir={profile}",
                "--dump-dom",
                page_file.as_uri() + "#outcome=timeout",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    dom = proc.stdout
    assert 'data-ready="true"' in dom, proc.stderr[-2000:]
    import re

    rows = re.findall(r'<tr class="result"[^>]*>', dom)
    shown = sorted(
        re.search(r'data-name="([^"]*)"', r).group(1) for r in rows if " hidden" not in r
    )
    assert len(rows) == len(report["results"])
    assert shown == names(report, lambda r: r["outcome"] == "timeout")
    assert '<span id="shown">1</span>' in dom
