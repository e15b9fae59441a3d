"""The HTML report in a real browser: Debian's ``chromium``, headless.

The page must load with no console message at all (it has no script, so any message is an
error: a blocked fetch — the page's Content-Security-Policy refuses every one —, a parse
problem), and the rendered document must show the verdict and the flow's SVG. Skipped,
naming the package, when chromium is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailtrace.report import html
from mailtrace.report.model import TriageReport
from tests.support.labrun import triage
from tests.support.reports import mailbox_full_report

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (Debian package chromium)")
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", f"--user-data-dir={profile}", "--enable-logging=stderr",
         "--v=0", "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,2400",
         *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)


def _load(report: TriageReport, tmp_path: Path) -> tuple[str, list[str]]:
    """The document as the browser built it, and every console message it logged."""
    page = tmp_path / "report.html"
    page.write_text(html.render(report), encoding="utf-8")
    done = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def _check(dom: str, console: list[str], status: str, tier: str, tag: str) -> None:
    assert console == []
    verdict = re.search(r'<section class="verdict (\w+)" id="verdict">(.*?)</section>', dom,
                        re.S)
    assert verdict is not None, dom[:2000]
    assert verdict.group(1) == status
    assert tier in verdict.group(2) and tag in verdict.group(2)
    svg = re.search(r"<svg[^>]*>(.*?)</svg>", dom, re.S)
    assert svg is not None
    assert status != "fault" or 'class="tier fail marked"' in svg.group(1)
    assert tier in svg.group(1)


def test_a_failing_triage_report_loads_clean_and_shows_its_verdict_and_flow(tmp_path):
    report = triage("mx-missing")
    dom, console = _load(report, tmp_path)
    _check(dom, console, "fault", "public-dns", "DNS_MX_MISSING")
    # A screenshot renders too (kept beside the page for whoever looks at a failure).
    shot = _chromium(tmp_path / "report.html", tmp_path / "profile",
                     f"--screenshot={tmp_path / 'report.png'}")
    assert shot.returncode == 0 and (tmp_path / "report.png").stat().st_size > 10_000


def test_a_report_with_a_journey_and_attention_loads_clean(tmp_path):
    dom, console = _load(mailbox_full_report(), tmp_path)
    _check(dom, console, "fault", "exchange-online", "EXO_MAILBOX_FULL")
    assert 'id="journey"' in dom and "Also needs attention" in dom


def test_the_browser_reports_a_fetch_the_page_would_make(tmp_path):
    # The check above can fail: a page that tries to fetch anything is refused by its own
    # policy, and the browser says so on its console.
    if CHROMIUM is None:
        pytest.skip("chromium not installed (Debian package chromium)")
    page = tmp_path / "bad.html"
    page.write_text(html.render(mailbox_full_report()).replace(
        "</body>", "<img src='https://example.com/pixel.png'></body>"), encoding="utf-8")
    done = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert any(":CONSOLE" in line and "Content Security Policy" in line
               for line in done.stderr.splitlines())
