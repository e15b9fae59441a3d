"""The one rule of verify and precheck: a finding that contradicts what the topology
declares makes its record ``differs`` and a change that introduces it unsafe, whatever its
level; a warning about what the topology does not declare stays a warning."""

from __future__ import annotations

import pytest

from mailtrace.clients.dns import DnsObservation, Outcome, Record, Role, Server
from mailtrace.core.findings import Finding
from mailtrace.core.network import Endpoint
from mailtrace.report.precheck import PrecheckReport
from mailtrace.report.verify import ExpectedRecord, ServerAnswer, does_not_fit
from mailtrace.topology.change import Overlaid, parse_change
from mailtrace.usecases.verify import judge

SPF = ExpectedRecord("SPF", "contoso.com.", "TXT", "v=spf1")
PLUS_ALL = ("v=spf1 include:spf.protection.outlook.com +all",)
CONTRADICTS = Finding("SPF_ALL_DIFFERS", {"domain": "contoso.com", "found": "+all",
                                          "at": "contoso.com", "expected": "-all"})
WARNS = Finding("SPF_ALL_PASS", {"domain": "contoso.com", "found": "+all",
                                 "at": "contoso.com"})
FAILS = Finding("SPF_LOOKUP_LIMIT", {"domain": "contoso.com", "lookups": 11, "limit": 10})


def answer(role: Role, address: str, serial: int | None = None) -> ServerAnswer:
    server = Server(role, address)
    obs = DnsObservation(server, Endpoint(address, 53), "contoso.com.", "TXT", Outcome.ANSWER,
                         answer=(Record("contoso.com.", "TXT", 300, f'"{PLUS_ALL[0]}"'),))
    return ServerAnswer(server, obs, PLUS_ALL, 0.0, serial)


SERVERS = [answer("authoritative", "127.0.1.1", 1), answer("authoritative", "127.0.1.2", 1)]
RESOLVERS = [answer("resolver", "127.0.0.53")]


@pytest.mark.parametrize(("fit", "status", "reason"), [
    ([WARNS], "matches", ""),
    ([CONTRADICTS, WARNS], "differs", "does not fit the topology: SPF_ALL_DIFFERS"),
    ([FAILS], "differs", "does not fit the topology: SPF_LOOKUP_LIMIT"),
])
def test_a_record_that_contradicts_the_topology_differs(fit, status, reason):
    report = judge(SPF, SERVERS, RESOLVERS, fit)
    assert (report.status, report.reason) == (status, reason)
    assert report.findings == fit  # every finding is still shown


def test_the_rule_is_the_catalogs():
    assert does_not_fit(CONTRADICTS) and does_not_fit(FAILS) and not does_not_fit(WARNS)
    assert not does_not_fit(Finding("SPF_LOOKUPS", {"domain": "contoso.com", "lookups": 2,
                                                    "voids": 0}))


def precheck(before: list[Finding], after: list[Finding]) -> PrecheckReport:
    change = parse_change("records:\n  - {action: replace, name: \"@\", type: TXT, "
                          f"values: [\"{PLUS_ALL[0]}\"]}}\n", "change.yaml")
    return PrecheckReport("contoso", "contoso.com", change, Overlaid({}, {}), before, after)


def test_a_change_that_introduces_a_contradiction_is_unsafe():
    report = precheck([], [CONTRADICTS, WARNS])
    assert [f.tag for f in report.unsafe] == ["SPF_ALL_DIFFERS"]
    assert (report.verdict, report.exit_code) == ("unsafe", 1)


def test_a_new_warning_the_topology_does_not_declare_is_not_unsafe():
    report = precheck([], [WARNS])
    assert [f.tag for f in report.new] == ["SPF_ALL_PASS"] and report.unsafe == []
    assert report.verdict == "safe"


def test_a_contradiction_already_live_is_not_the_changes_doing():
    report = precheck([CONTRADICTS], [CONTRADICTS])
    assert report.unsafe == [] and report.verdict == "safe"


def _nxdomain(role: Role, address: str) -> ServerAnswer:
    server = Server(role, address)
    obs = DnsObservation(server, Endpoint(address, 53), "contoso.com.", "TXT", Outcome.NXDOMAIN,
                         rcode="NXDOMAIN")
    return ServerAnswer(server, obs, (), 0.0)


def test_a_name_that_does_not_exist_differs_and_says_nxdomain():
    # No zone to ask (no authoritative server found) and the resolvers say NXDOMAIN: the
    # record is not served anywhere, as triage says, not "no authoritative server answered".
    report = judge(SPF, [], [_nxdomain("resolver", "127.0.0.53")], [])
    assert (report.status, report.current) == ("differs", ())
    assert "NXDOMAIN" in report.reason and "does not exist" in report.reason
    assert report.disagreeing == ["resolver 127.0.0.53:53"]


def test_silent_servers_are_still_inconclusive():
    server = Server("resolver", "127.0.0.53")
    silent = ServerAnswer(server, DnsObservation(server, Endpoint("127.0.0.53", 53),
                                                 "contoso.com.", "TXT", Outcome.TIMEOUT),
                          None, 0.0)
    report = judge(SPF, [], [silent], [])
    assert (report.status, report.reason) == ("inconclusive", "no authoritative server answered")


def test_a_record_whose_fit_probe_gave_no_result_is_inconclusive_not_matching():
    # Every server agrees, but the probe judging the record overran its deadline: its
    # fit to the topology is unknown (a missing MX must never read as converged).
    report = judge(SPF, SERVERS, RESOLVERS, [], "probe auth.records: no result within 8 s")
    assert report.status == "inconclusive" and "not checked" in report.reason
    assert judge(SPF, SERVERS, RESOLVERS, [CONTRADICTS], "late").status == "differs"


def test_which_records_a_probe_that_gave_no_result_leaves_unjudged():
    from mailtrace.core.findings import ProbeResult, Status, TierResult
    from mailtrace.usecases.verify import unjudged, unjudged_reason

    timeout = Finding("ENGINE_PROBE_TIMEOUT", {"probe": "dns.mx", "seconds": 8.0})
    tier = TierResult("dns", "dns", Status.NOT_TESTED, [
        ProbeResult("dns.mx", "dns", Status.NOT_TESTED, [timeout], "no result within 8.0 s"),
        ProbeResult("auth.records", "dns", Status.PASS, [])])
    unfinished = unjudged(tier)
    assert unfinished == {"dns.mx": "no result within 8.0 s"}
    assert unjudged_reason("MX", unfinished) == "probe dns.mx: no result within 8.0 s"
    assert unjudged_reason("SPF", unfinished) is None
    assert unjudged_reason("DKIM selector1", {"auth.records": "x"}) == "probe auth.records: x"
