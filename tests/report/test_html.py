"""The HTML report, on hand-built reports: one self-contained page with the verdict, the
flow drawn with the failing tier marked, the journey and what needs attention, evidence
folded except the localized tier's, the fix with its values, and how the run was made."""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from mailtrace.core.findings import Verdict
from mailtrace.report import html
from mailtrace.report import json as json_report
from tests.support.reports import RECIPIENT, mailbox_full_report


class Page(HTMLParser):
    """The elements of a page with their attributes and the text inside them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.stack: list[tuple[str, dict[str, str], list[str]]] = []
        self.texts: dict[int, str] = {}
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self.stack.append((tag, dict(self.elements[-1][1]), []))

    def handle_data(self, data: str) -> None:
        for _, _, texts in self.stack:
            texts.append(data)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, attrs, texts = self.stack.pop()
            self.texts[len(self.texts)] = f"{open_tag}|{attrs.get('id', '')}|{''.join(texts)}"
            if open_tag == tag:
                break

    def by_id(self, ident: str) -> str:
        return next(t.split("|", 2)[2] for t in self.texts.values()
                    if t.split("|", 2)[1] == ident)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements
                if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def test_the_page_fetches_nothing_and_runs_nothing():
    text = html.render(mailbox_full_report())
    page = Page(text)
    assert not page.find("script") and not page.find("link") and not page.find("img")
    assert not re.search(r"\bsrc=|url\((?!#)|@import", text)  # url(#arrow): in the page
    [csp] = page.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert csp["content"].startswith("default-src 'none'")


def test_the_verdict_box_is_coloured_and_answers_in_one_line():
    page = Page(html.render(mailbox_full_report()))
    [box] = page.find("section", id="verdict")
    assert box["class"] == "verdict fault"
    verdict = page.by_id("verdict")
    assert "FAULT" in verdict and "exchange-online" in verdict and "EXO_MAILBOX_FULL" in verdict
    assert "the mailbox of alice@contoso.com is full" in verdict
    # The attention list is rendered under the verdict.
    assert "Also needs attention" in verdict and "SMTP_TLS_CERT_EXPIRING" in verdict


def test_the_flow_is_the_graphs_own_svg_coloured_by_status_with_the_fault_marked():
    text = html.render(mailbox_full_report())
    svg = re.search(r"<svg.*?</svg>", text, re.S)
    assert svg is not None
    root = ET.fromstring(svg.group(0))
    ns = "{http://www.w3.org/2000/svg}"
    groups = {g.findtext(f"{ns}text"): g.get("class") for g in root.iter(f"{ns}g")}
    assert groups == {"public-dns": "tier pass", "proofpoint": "tier warn",
                      "exchange-online": "tier fail marked"}
    marked = next(g for g in root.iter(f"{ns}g") if "marked" in (g.get("class") or ""))
    rect = marked.find(f"{ns}rect")
    assert rect is not None and float(rect.get("stroke-width", "0")) > 1


def test_the_journey_shows_where_the_message_stopped():
    page = Page(html.render(mailbox_full_report()))
    journey = page.by_id("journey")
    assert "carol@fabrikam.example" in journey and "<m1@fabrikam.example>" in journey
    assert [row["class"] for row in page.find("tr") if row.get("class")] == ["stop"]
    assert "550 5.2.2 mailbox full" in journey


def test_no_journey_no_section():
    report = dataclasses.replace(mailbox_full_report(), journey=[])
    assert "id='journey'" not in html.render(report)


def test_evidence_is_folded_except_the_failing_tiers():
    text = html.render(mailbox_full_report())
    sections = dict(re.findall(r"<section class='tier \w+' id='tier-([\w-]+)'>(.*?)</section>",
                               text, re.S))
    assert set(sections) == {"observer", "public-dns", "proofpoint", "exchange-online"}
    assert "<details open>" in sections["exchange-online"]
    for folded in ("observer", "public-dns", "proofpoint"):
        assert "<details>" in sections[folded] and "<details open>" not in sections[folded]
    # Evidence is shown as each kind reads (a dig line, a transcript, the API call), never
    # as a Python repr.
    assert "contoso.com. MX → ANSWER" in sections["public-dns"]
    assert "C: EHLO probe.example" in sections["proofpoint"]
    assert "get MailTips: POST /v1.0/users/5f0a/getMailTips → 200" in sections["exchange-online"]
    assert "{&#x27;" not in text and "{'" not in text


def test_the_fix_names_the_recipient_not_a_placeholder():
    page = Page(html.render(mailbox_full_report()))
    fix = page.by_id("fix")
    assert f"Get-EXOMailboxStatistics -Identity {RECIPIENT}" in fix
    assert "<address>" not in fix and "PS>" in fix


def test_run_metadata_in_the_page_and_the_json():
    report = mailbox_full_report()
    run = Page(html.render(report)).by_id("run")
    for value in ("2026-11-29T10:05:00Z", "mailtrace-diagnostics 0.1.0", "admin-laptop",
                  "192.0.2.53:53", "[2001:db8::53]:53", "ab" * 32, "contoso"):
        assert value in run
    data = json.loads(json_report.render(report))
    assert data["run"] == {"started_at": "2026-11-29T10:05:00Z",
                           "mailtrace": "mailtrace-diagnostics 0.1.0",
                           "topology_file": report.run.topology_file,
                           "topology_sha256": "ab" * 32,
                           "vantage": {"host": "admin-laptop",
                                       "resolvers": ["192.0.2.53:53", "[2001:db8::53]:53"]}}
    assert data["journey"][-1]["event"] == "failed"
    assert data["verdict"]["attention"][0]["tag"] == "SMTP_TLS_CERT_EXPIRING"


def test_a_healthy_report_has_no_fix_and_a_green_box():
    report = mailbox_full_report()
    report = dataclasses.replace(report, verdict=Verdict("healthy", None, None, "No fault."))
    page = Page(html.render(report))
    assert page.find("section", id="verdict")[0]["class"] == "verdict healthy"
    assert "id='fix'" not in html.render(report)


def test_text_from_the_world_is_escaped():
    report = mailbox_full_report()
    report = dataclasses.replace(report, verdict=dataclasses.replace(
        report.verdict, summary="<img src=x onerror=alert(1)>"))
    text = html.render(report)
    assert "<img" not in text and "&lt;img src=x" in text
