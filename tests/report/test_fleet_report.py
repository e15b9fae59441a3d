"""A fleet's lines and summary, pure: the domain's status is its worst vantage's, failing
records carry the findings (or cause) that fail them, vantages that disagree are named,
and the summary's memory holds counts and a few names, not the fleet."""

from __future__ import annotations

import json

from mailtrace.report.fleet import FleetSummary, domain_doc, dumps, error_doc


def record(label: str, status: str = "matches", cause: str | None = None,
           tags: tuple[str, ...] = (), resolvers: tuple[str, ...] = ("x",)) -> dict:
    return {"record": label, "status": status, "cause": cause, "reason": "",
            "findings": [{"tag": t, "args": {}} for t in tags],
            "servers": [{"server": "r", "role": "resolver", "outcome": "ANSWER",
                         "answer": list(resolvers)},
                        {"server": "ns1", "role": "authoritative", "outcome": "ANSWER",
                         "answer": ["x"]}]}


def vantage(status: str, *records: dict) -> dict:
    return {"status": status, "records": list(records)}


def test_the_worst_vantage_decides_and_regions_that_differ_are_named():
    eu = vantage("converged", record("MX"), record("SPF", resolvers=("new",)))
    us = vantage("propagating", record("MX"),
                 record("SPF", "propagating", "cached", resolvers=("old",)))
    doc = domain_doc(7, "client-1.example", "contoso", {"us": us, "eu": eu})
    assert doc["status"] == "propagating" and list(doc["vantages"]) == ["eu", "us"]
    assert [(f["record"], f["cause"], f["vantages"]) for f in doc["failing"]] == [
        ("SPF", "cached", ["us"])]
    (regional,) = doc["vantages_differ"]
    assert regional["record"] == "SPF"
    assert regional["status"] == {"eu": "matches", "us": "propagating"}
    assert regional["resolvers"] == {"eu": [["new"]], "us": [["old"]]}


def test_failing_records_carry_only_the_findings_that_fail_them():
    doc = domain_doc(1, "a.example", "contoso", {"default": vantage(
        "differs",
        record("SPF", "differs", "fit", ("SPF_EXPECTED_TERM_MISSING", "SPF_LOOKUPS")),
        record("MX", "differs", "stale-server"))})
    assert doc["status"] == "differs"
    failing = {f["record"]: f for f in doc["failing"]}
    assert failing["SPF"]["tags"] == ["SPF_EXPECTED_TERM_MISSING"]  # SPF_LOOKUPS is a note
    assert failing["MX"]["cause"] == "stale-server" and failing["MX"]["tags"] == []
    assert doc["vantages_differ"] == []
    line = dumps(doc)
    assert "\n" not in line and json.loads(line) == doc


def test_the_summary_groups_counts_and_keeps_a_few_names():
    summary = FleetSummary(keep=3)
    for i in range(10):
        summary.add(domain_doc(i, f"d{i}.example", "contoso", {"default": vantage(
            "differs", record("MX", "differs", "fit", ("DNS_MX_MISSING",)))}))
    summary.add(domain_doc(11, "ok.example", "contoso", {"default": vantage("converged")}))
    summary.add(error_doc(12, "not UTF-8 text", text="?"))
    summary.duplicate(13, 2, "d2.example")
    assert summary.statuses == {"differs": 10, "converged": 1}
    group = summary.failing["DNS_MX_MISSING"]
    assert group.count == 10 and group.examples == ["d0.example", "d1.example", "d2.example"]
    assert summary.exit_code == 1
    text = summary.text(2.0)
    assert "11 domains verified in 2.0 s" in text and "... and 7 more" in text
    assert "line 12: not UTF-8 text" in text and "line 13: d2.example (first on line 2)" in text


def test_exit_status_over_the_fleet():
    summary = FleetSummary()
    summary.add(domain_doc(1, "a.example", "t", {"default": vantage("converged")}))
    assert summary.exit_code == 0
    summary.add(error_doc(2, "no topology", domain="b.example"))
    assert summary.exit_code == 3  # a domain that could not be verified: not healthy either
    summary.add(domain_doc(3, "c.example", "t", {"default": vantage("inconclusive")}))
    assert summary.exit_code == 3
    summary.add(domain_doc(4, "d.example", "t", {"default": vantage("propagating")}))
    assert summary.exit_code == 1
