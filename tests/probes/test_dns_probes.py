"""The pure evaluation of each public-DNS probe, on hand-built observations."""

from __future__ import annotations

import pytest

from mailtrace.clients.dns import Outcome
from mailtrace.engine.clients import RunClients
from mailtrace.engine.settings import Options
from mailtrace.probes.base import NotTested
from mailtrace.probes.dns import consistency, mx, observer, zone_view
from mailtrace.probes.dns import delegation as deleg
from mailtrace.probes.dns.expect import MICROSOFT_INBOUND, MxExpectation
from mailtrace.probes.dns.zone_view import ServerView
from tests.support.builders import RESOLVER, addresses, delegation, ns, obs, soa

ZONE = "contoso.com."
NS1, NS2 = ns("ns1.contoso.com.", "127.0.1.1"), ns("ns2.contoso.com.", "127.0.1.2")
PP = ["mx0a-001234.pphosted.com", "mx0b-001234.pphosted.com"]
EXPECT = MxExpectation(PP, "proofpoint",
                       ["contoso-com.mail.protection.outlook.com", *MICROSOFT_INBOUND])


def tags(findings):
    return [(f.tag) for f in findings]


# --- observer ---------------------------------------------------------------------------

def test_observer_dead_resolver_is_unreachable():
    check = observer.ResolverCheck([obs(RESOLVER, ".", "NS", Outcome.TIMEOUT)])
    [f] = observer.evaluate(check)
    assert f.tag == "OBSERVER_RESOLVER_UNREACHABLE"
    assert "TIMEOUT" in f.args["resolvers"]


def test_observer_refusing_resolver_is_unreachable():
    check = observer.ResolverCheck([obs(RESOLVER, ".", "NS", Outcome.REFUSED)])
    assert tags(observer.evaluate(check)) == ["OBSERVER_RESOLVER_UNREACHABLE"]


def test_observer_resolver_that_only_knows_the_root_is_unreachable():
    root = obs(RESOLVER, ".", "NS", Outcome.ANSWER, [(".", "NS", 518400, "a.root-servers.net.")])
    tld = obs(RESOLVER, "com.", "NS", Outcome.SERVFAIL)
    [f] = observer.evaluate(observer.ResolverCheck([root], [tld]))
    assert f.tag == "OBSERVER_RESOLVER_UNREACHABLE" and "com. SERVFAIL" in f.args["resolvers"]
    # NXDOMAIN for the TLD is an answer: the resolver does recurse
    nx = obs(RESOLVER, "test.", "NS", Outcome.NXDOMAIN)
    assert tags(observer.evaluate(observer.ResolverCheck([root], [nx]))) == [
        "OBSERVER_RESOLVER_OK"]


def test_observer_one_of_two_resolvers_down_is_partial():
    other = RESOLVER.__class__("resolver", "127.0.0.2", 53)
    check = observer.ResolverCheck([
        obs(RESOLVER, ".", "NS", Outcome.ANSWER, [(".", "NS", 518400, "a.root-servers.net.")]),
        obs(other, ".", "NS", Outcome.SERVFAIL),
    ])
    assert tags(observer.evaluate(check)) == ["OBSERVER_RESOLVER_OK", "OBSERVER_RESOLVER_PARTIAL"]


# --- delegation -------------------------------------------------------------------------

def test_delegation_ok_names_servers_and_serial():
    d = delegation(ZONE, [NS1, NS2])
    check = deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 7), soa(NS2, ZONE, 7)])
    [f] = deleg.evaluate(check)
    assert (f.tag, f.args["serial"]) == ("DNS_DELEGATION_OK", 7)


def test_delegation_all_servfail_is_all_ns_failing():
    d = delegation(ZONE, [NS1, NS2])
    check = deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 0, Outcome.SERVFAIL),
                                            soa(NS2, ZONE, 0, Outcome.SERVFAIL)])
    [f] = deleg.evaluate(check)
    assert f.tag == "DNS_ALL_NS_FAILING"
    assert "SERVFAIL" in f.args["servers"] and len(f.evidence) == 2


def test_delegation_one_server_per_problem():
    d = delegation(ZONE, [NS1, NS2])
    for outcome, tag in [(Outcome.TIMEOUT, "DNS_NS_UNREACHABLE"),
                         (Outcome.SERVFAIL, "DNS_NS_SERVFAIL"),
                         (Outcome.REFUSED, "DNS_NS_LAME"),
                         (Outcome.MALFORMED, "DNS_NS_BAD_REPLY"),
                         (Outcome.MISMATCH, "DNS_NS_BAD_REPLY")]:
        check = deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 7), soa(NS2, ZONE, 0, outcome)])
        [f] = deleg.evaluate(check)
        assert (f.tag, f.args["ns"]) == (tag, "ns2.contoso.com"), outcome


def test_delegation_answer_without_aa_is_lame():
    d = delegation(ZONE, [NS1, NS2])
    check = deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 7), soa(NS2, ZONE, 7, aa=False)])
    assert tags(deleg.evaluate(check)) == ["DNS_NS_LAME"]


def test_delegation_serial_mismatch_names_the_lagging_server():
    d = delegation(ZONE, [NS1, NS2])
    check = deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 9), soa(NS2, ZONE, 7)])
    [f] = deleg.evaluate(check)
    assert (f.tag, f.args["latest"]) == ("DNS_SOA_SERIAL_MISMATCH", 9)
    assert "ns2.contoso.com" in f.args["behind"]


def test_delegation_nxdomain_domain():
    d = delegation(ZONE, [], soa_outcome=Outcome.NXDOMAIN)
    assert tags(deleg.evaluate(deleg.DelegationCheck(ZONE, d, []))) == ["DNS_DOMAIN_NXDOMAIN"]


def test_delegation_no_ns_and_failing_resolution():
    d = delegation(ZONE, [])
    assert tags(deleg.evaluate(deleg.DelegationCheck(ZONE, d, []))) == ["DNS_NS_MISSING"]
    d = delegation(ZONE, [], soa_outcome=Outcome.SERVFAIL)
    servfail = obs(RESOLVER, ZONE, "NS", Outcome.SERVFAIL)
    d = d.__class__(d.apex, d.soa, servfail, None, [], [], [], [])
    [f] = deleg.evaluate(deleg.DelegationCheck(ZONE, d, []))
    assert (f.tag, f.args["outcome"]) == ("DNS_RESOLUTION_FAILED", "SERVFAIL")


def test_delegation_ns_without_address_and_parent_mismatch():
    d = delegation(ZONE, [NS1])
    lame_name = addresses("ns3.contoso.com.")
    parent = obs(ns("a.gtld-servers.com.", "127.0.8.1"), ZONE, "NS", Outcome.REFERRAL,
                 authority=[(ZONE, "NS", 172800, "ns1.contoso.com."),
                            (ZONE, "NS", 172800, "ns9.contoso.com.")])
    d = d.__class__(d.apex, d.soa, d.ns, parent, ["ns1.contoso.com.", "ns3.contoso.com."],
                    ["ns1.contoso.com.", "ns9.contoso.com."], [*d.ns_addresses, lame_name],
                    d.servers)
    found = deleg.evaluate(deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 7)]))
    assert ("DNS_NS_UNRESOLVABLE", "ns3.contoso.com") in [(f.tag, f.args.get("ns")) for f in found]
    assert "DNS_NS_PARENT_CHILD_MISMATCH" in tags(found)


# --- MX ---------------------------------------------------------------------------------

def mx_answer(*pairs: tuple[int, str]):
    return obs(RESOLVER, "contoso.com.", "MX", Outcome.ANSWER,
               [("contoso.com.", "MX", 3600, f"{p} {h}") for p, h in pairs])


def mx_check(answer, targets):
    return mx.MxCheck("contoso.com", EXPECT, answer, targets)


def healthy_targets():
    return [mx.MxTarget(10, h + ".", addresses(h + ".", f"127.0.2.{i}"))
            for i, h in enumerate(PP, 1)]


def test_mx_ok():
    [f] = mx.evaluate(mx_check(mx_answer(*((10, h + ".") for h in PP)), healthy_targets()))
    assert f.tag == "DNS_MX_OK" and "mx0a-001234.pphosted.com" in f.args["mx"]


def test_mx_missing_is_nodata_not_nxdomain():
    nodata = obs(RESOLVER, "contoso.com.", "MX", Outcome.NODATA)
    assert tags(mx.evaluate(mx_check(nodata, []))) == ["DNS_MX_MISSING"]
    nx = obs(RESOLVER, "contoso.com.", "MX", Outcome.NXDOMAIN)
    [f] = mx.evaluate(mx_check(nx, []))
    assert (f.tag, f.args["outcome"]) == ("DNS_MX_LOOKUP_FAILED", "NXDOMAIN")
    for outcome in (Outcome.SERVFAIL, Outcome.TIMEOUT, Outcome.REFUSED):
        [f] = mx.evaluate(mx_check(obs(RESOLVER, "contoso.com.", "MX", outcome), []))
        assert (f.tag, f.args["outcome"]) == ("DNS_MX_LOOKUP_FAILED", outcome.value)


def test_null_mx():
    check = mx_check(mx_answer((0, ".")), [mx.MxTarget(0, ".", None)])
    assert tags(mx.evaluate(check)) == ["DNS_MX_NULL"]


def test_mx_straight_to_exchange_online_bypasses_gateway():
    host = "contoso-com.mail.protection.outlook.com."
    check = mx_check(mx_answer((0, host)), [mx.MxTarget(0, host, addresses(host, "127.0.3.1"))])
    found = mx.evaluate(check)
    assert found[0].tag == "DNS_MX_BYPASSES_GATEWAY"
    assert found[0].args["gateway"] == "proofpoint"
    assert "DNS_MX_EXPECTED_HOST_MISSING" in tags(found)
    assert "DNS_MX_UNEXPECTED_HOST" not in tags(found)


def test_mx_new_microsoft_namespace_also_bypasses():
    host = "contoso-com.o-v1.mx.microsoft."
    check = mx_check(mx_answer((0, host)), [mx.MxTarget(0, host, addresses(host, "127.0.3.9"))])
    assert mx.evaluate(check)[0].tag == "DNS_MX_BYPASSES_GATEWAY"


def test_mx_to_undeclared_host():
    host = "mail.contoso-old.example."
    targets = [*healthy_targets(), mx.MxTarget(20, host, addresses(host, "127.0.9.1"))]
    check = mx_check(mx_answer(*((10, h + ".") for h in PP), (20, host)), targets)
    [f] = mx.evaluate(check)
    assert (f.tag, f.args["hosts"]) == ("DNS_MX_UNEXPECTED_HOST", "mail.contoso-old.example")


def test_mx_targets_unresolvable_all_or_some():
    bad = [mx.MxTarget(10, h + ".", addresses(h + ".")) for h in PP]
    found = mx.evaluate(mx_check(mx_answer(*((10, h + ".") for h in PP)), bad))
    assert "DNS_MX_TARGET_UNRESOLVABLE" in tags(found)
    some = [healthy_targets()[0], mx.MxTarget(10, PP[1] + ".",
                                              addresses(PP[1] + ".", outcome=Outcome.SERVFAIL))]
    [f] = mx.evaluate(mx_check(mx_answer(*((10, h + ".") for h in PP)), some))
    assert f.tag == "DNS_MX_SOME_TARGETS_UNRESOLVABLE" and "SERVFAIL" in f.args["hosts"]


def test_mx_ip_literal_and_cname():
    check = mx_check(mx_answer((10, "127.0.2.1.")), [mx.MxTarget(10, "127.0.2.1.", None)])
    found = tags(mx.evaluate(check))
    assert "DNS_MX_TARGET_IP_LITERAL" in found and "DNS_MX_TARGET_UNRESOLVABLE" not in found
    assert mx.is_ip_literal("[2001:db8::1]") and not mx.is_ip_literal("mx0a.example")
    alias = mx.MxTarget(10, PP[0] + ".", addresses(PP[0] + ".", "127.0.2.1", cname="x.example."))
    found = tags(mx.evaluate(mx_check(mx_answer((10, PP[0] + ".")), [alias])))
    assert "DNS_MX_TARGET_CNAME" in found


# --- consistency ------------------------------------------------------------------------

def mx_at(server, serial_no, *hosts):
    answer = obs(server, "contoso.com.", "MX", Outcome.ANSWER,
                 [("contoso.com.", "MX", 3600, f"10 {h}.") for h in hosts], flags=("AA",))
    return ServerView(server, answer, soa(server, ZONE, serial_no))


def test_consistent_answers():
    check = consistency.ConsistencyCheck("contoso.com", PP,
                                         [mx_at(NS1, 7, *PP), mx_at(NS2, 7, *PP)],
                                         [mx_answer(*((10, h + ".") for h in PP))])
    [f] = consistency.evaluate(check)
    assert (f.tag, f.args["sources"]) == ("DNS_ANSWERS_CONSISTENT", 3)


def test_stale_server_is_named_with_its_answer():
    check = consistency.ConsistencyCheck(
        "contoso.com", PP,
        [mx_at(NS1, 9, *PP), mx_at(NS2, 7, "mail.contoso-old.example")], [])
    [f] = consistency.evaluate(check)
    assert (f.tag, f.args["ns"], f.args["serial"], f.args["latest"]) == (
        "DNS_NS_STALE", "ns2.contoso.com", 7, 9)
    assert "mail.contoso-old.example" in f.args["answer"]


def test_split_brain_and_resolver_cache():
    check = consistency.ConsistencyCheck(
        "contoso.com", PP, [mx_at(NS1, 9, *PP), mx_at(NS2, 9, "mail.contoso-old.example")],
        [mx_answer((10, "mail.contoso-old.example."))])
    found = consistency.evaluate(check)
    assert tags(found) == ["DNS_NS_SPLIT_BRAIN", "DNS_RESOLVER_ANSWER_DIFFERS"]
    assert found[1].args["ttl"] == 3600


def test_consistency_with_no_usable_answer_says_nothing():
    timeout = ServerView(NS1, obs(NS1, "contoso.com.", "MX", Outcome.TIMEOUT),
                                        soa(NS1, ZONE, 0, Outcome.TIMEOUT))
    with pytest.raises(NotTested, match="no name server"):
        consistency.evaluate(consistency.ConsistencyCheck("contoso.com", PP, [timeout], []))


def test_servers_this_machine_cannot_route_to_are_not_judged():
    v6 = ns("ns2.contoso.com.", "2001:db8::53")
    d = delegation(ZONE, [NS1, v6])
    found = deleg.evaluate(deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 7),
                                                          soa(v6, ZONE, 0, Outcome.NO_ROUTE)]))
    assert tags(found) == ["OBSERVER_NO_ROUTE", "DNS_DELEGATION_OK"]
    with pytest.raises(NotTested, match="no route") as raised:
        deleg.evaluate(deleg.DelegationCheck(ZONE, delegation(ZONE, [v6]),
                                             [soa(v6, ZONE, 0, Outcome.NO_ROUTE)]))
    assert [f.tag for f in raised.value.findings] == ["OBSERVER_NO_ROUTE"]


# --- review fixes: judging the zone's own answer, serials, owners, observer limits -----

def test_the_current_answer_is_the_newest_serial_whatever_the_order():
    old = mx_at(NS1, 7, "mail.contoso-old.example")
    new = mx_at(NS2, 9, *PP)
    assert zone_view.current([old, new], PP) is new
    assert zone_view.current([new, old], PP) is new
    # the newest zone version is the broken one: it is still what the zone converges to
    broken_new = ServerView(NS1, obs(NS1, "contoso.com.", "MX", Outcome.NODATA, flags=("AA",)),
                            soa(NS1, ZONE, 10))
    assert zone_view.current([broken_new, new], PP) is broken_new
    # same serial, different data: the answer that fits the topology
    split = mx_at(NS1, 9, "mail.contoso-old.example")
    assert zone_view.current([split, new], PP) is new
    # nothing authoritative: no current answer (the MX probe falls back to the resolvers)
    failing = ServerView(NS1, obs(NS1, "contoso.com.", "MX", Outcome.SERVFAIL), soa(NS1, ZONE, 9))
    lame = ServerView(NS2, obs(NS2, "contoso.com.", "MX", Outcome.ANSWER,
                               [("contoso.com.", "MX", 300, f"10 {PP[0]}.")]), soa(NS2, ZONE, 9))
    assert zone_view.current([failing, lame], PP) is None


def test_mx_findings_follow_the_zone_answer_and_flag_failing_resolvers():
    zone_answer = mx_answer(*((10, h + ".") for h in PP))
    resolvers_fail = obs(RESOLVER, "contoso.com.", "MX", Outcome.SERVFAIL)
    check = mx.MxCheck("contoso.com", EXPECT, zone_answer, healthy_targets(), resolvers_fail)
    [f] = mx.evaluate(check)
    assert (f.tag, f.args["outcome"]) == ("DNS_MX_RESOLVERS_FAIL", "SERVFAIL")


def test_backup_mx_behind_the_gateway_degrades_primary_one_is_a_fault():
    exo = "contoso-com.mail.protection.outlook.com."
    backup = [*healthy_targets(), mx.MxTarget(20, exo, addresses(exo, "127.0.3.1"))]
    answer = mx_answer(*((10, h + ".") for h in PP), (20, exo))
    [f] = mx.evaluate(mx_check(answer, backup))
    assert (f.tag, f.args["hosts"]) == ("DNS_MX_BACKUP_BYPASSES_GATEWAY",
                                        "20 contoso-com.mail.protection.outlook.com")
    primary = [mx.MxTarget(5, exo, addresses(exo, "127.0.3.1")), *healthy_targets()]
    answer = mx_answer((5, exo), *((10, h + ".") for h in PP))
    assert mx.evaluate(mx_check(answer, primary))[0].tag == "DNS_MX_BYPASSES_GATEWAY"


def test_mx_target_alias_of_a_declared_host_is_only_a_warning():
    alias = "mail.contoso.com."
    target = mx.MxTarget(10, alias, addresses(alias, "127.0.2.1", cname=PP[0] + "."))
    found = mx.evaluate(mx_check(mx_answer((10, alias)), [target]))
    assert ("DNS_MX_TARGET_CNAME", PP[0]) in [(f.tag, f.args.get("target")) for f in found]
    assert "DNS_MX_UNEXPECTED_HOST" not in tags(found)
    exo = "contoso-com.mail.protection.outlook.com."
    sneaky = mx.MxTarget(10, alias, addresses(alias, "127.0.3.1", cname=exo))
    assert "DNS_MX_BYPASSES_GATEWAY" in tags(mx.evaluate(mx_check(mx_answer((10, alias)),
                                                                   [sneaky])))


def test_serial_arithmetic_wraps_per_rfc1982():
    assert deleg.serial_newer(2, 1) and not deleg.serial_newer(1, 2)
    assert deleg.serial_newer(5, 4294967290)  # wrapped past 2**32
    assert deleg.latest_serial([4294967290, 5, None]) == 5


def test_serial_mismatch_across_the_wrap():
    d = delegation(ZONE, [NS1, NS2])
    check = deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 4294967290), soa(NS2, ZONE, 3)])
    [f] = deleg.evaluate(check)
    assert (f.tag, f.args["latest"]) == ("DNS_SOA_SERIAL_MISMATCH", 3)


def test_records_follow_the_question_and_its_cname_chain_only():
    answer = obs(RESOLVER, "mx.contoso.com.", "A", Outcome.ANSWER, [
        ("mx.contoso.com.", "CNAME", 300, "Edge.Example.NET."),
        ("edge.example.net.", "A", 300, "127.0.2.9"),
        ("unrelated.example.", "A", 300, "127.0.9.9"),
    ])
    assert [r.data for r in answer.records("A")] == ["127.0.2.9"]
    assert [r.data for r in answer.records("CNAME")] == ["Edge.Example.NET."]


def test_silent_servers_while_resolvers_answer_is_the_observers_problem():
    d = delegation(ZONE, [NS1, NS2])
    d = d.__class__(d.apex, soa(RESOLVER, ZONE, 7, aa=False), d.ns, None, d.child_names, [],
                    d.ns_addresses, d.servers)
    silent = [soa(NS1, ZONE, 0, Outcome.TIMEOUT), soa(NS2, ZONE, 0, Outcome.TIMEOUT)]
    with pytest.raises(NotTested) as raised:
        deleg.evaluate(deleg.DelegationCheck(ZONE, d, silent))
    [f] = raised.value.findings
    assert (f.tag, f.args["zone"]) == ("OBSERVER_DIRECT_DNS_BLOCKED", "contoso.com")
    # servers that answer SERVFAIL did answer: that is the zone's fault
    failing = [soa(NS1, ZONE, 0, Outcome.SERVFAIL), soa(NS2, ZONE, 0, Outcome.TIMEOUT)]
    assert tags(deleg.evaluate(deleg.DelegationCheck(ZONE, d, failing))) == ["DNS_ALL_NS_FAILING"]


def test_a_budget_cut_short_is_not_tested_never_a_fault():
    short = obs(RESOLVER, "contoso.com.", "MX", Outcome.OUT_OF_TIME)
    with pytest.raises(NotTested, match="--timeout"):
        mx.evaluate(mx_check(short, []))
    d = delegation(ZONE, [NS1, NS2])
    with pytest.raises(NotTested, match="--timeout"):
        deleg.evaluate(deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 7),
                                                      soa(NS2, ZONE, 0, Outcome.OUT_OF_TIME)]))


def test_consistency_ignores_non_authoritative_answers_and_judges_by_serial():
    lame = ServerView(
        NS2, obs(NS2, "contoso.com.", "MX", Outcome.ANSWER,
                 [("contoso.com.", "MX", 300, "10 other.example.")]), soa(NS2, ZONE, 9))
    check = consistency.ConsistencyCheck("contoso.com", PP, [mx_at(NS1, 9, *PP), lame], [])
    assert tags(consistency.evaluate(check)) == ["DNS_ANSWERS_CONSISTENT"]
    # the newest serial serves undeclared data: that is the zone's current state (the MX
    # probe judges it) and the server still on the declared data is the stale one
    check = consistency.ConsistencyCheck(
        "contoso.com", PP, [mx_at(NS1, 7, *PP), mx_at(NS2, 9, "mail.contoso-new.example")], [])
    [f] = consistency.evaluate(check)
    assert (f.tag, f.args["ns"], f.args["serial"], f.args["latest"]) == (
        "DNS_NS_STALE", "ns1.contoso.com", 7, 9)


def test_mx_expectation_reads_the_flow():
    from mailtrace.probes.base import ProbeContext, Target
    from mailtrace.probes.dns.expect import mx_expectation
    from mailtrace.topology import FlowGraph, parse_topology

    def expectation(flow: str):
        gateway = "  pp: {kind: proofpoint, flavour: pod, hosts: [mx0a-001234.pphosted.com]}\n"
        topology = parse_topology(f"""
topology: t
domains: [contoso.com]
flow: [{flow}]
tiers:
  public-dns: {{kind: dns}}
  exo: {{kind: exchange-online, inbound_host: contoso-com.mail.protection.outlook.com}}
""" + (gateway if "pp" in flow else ""))
        clients = RunClients(topology, Options([]))
        ctx = ProbeContext(topology, FlowGraph(topology), "public-dns",
                           Target("contoso.com"), clients.dns, 0.0, clients)
        return mx_expectation(ctx)

    behind = expectation('"public-dns -> pp -> exo"')
    assert behind.gateway == "pp" and behind.hosts == ["mx0a-001234.pphosted.com"]
    assert "contoso-com.mail.protection.outlook.com" in behind.bypass_hosts
    # a second, declared path straight to Exchange Online: its host is no bypass
    both = expectation('"public-dns -> pp -> exo", "public-dns -> exo"')
    assert both.bypass_hosts == []
    assert set(both.hosts) == {"mx0a-001234.pphosted.com",
                               "contoso-com.mail.protection.outlook.com"}
    direct = expectation('"public-dns -> exo"')
    assert (direct.gateway, direct.bypass_hosts) == (None, [])


def test_a_server_that_answers_soa_but_fails_mx_is_named():
    broken = ServerView(NS2, obs(NS2, "contoso.com.", "MX", Outcome.SERVFAIL), soa(NS2, ZONE, 9))
    check = consistency.ConsistencyCheck("contoso.com", PP, [mx_at(NS1, 9, *PP), broken], [])
    [f] = consistency.evaluate(check)
    assert (f.tag, f.args["ns"], f.args["outcome"]) == (
        "DNS_NS_MX_QUERY_FAILS", "ns2.contoso.com", "SERVFAIL")


def test_parent_delegating_only_to_failing_servers_is_a_fault():
    ns3 = ns("ns3.contoso.com.", "127.0.1.3")
    parent = obs(ns("a.gtld-servers.com.", "127.0.8.1"), ZONE, "NS", Outcome.REFERRAL,
                 authority=[(ZONE, "NS", 172800, "ns3.contoso.com.")])
    d = delegation(ZONE, [NS1, NS2, ns3])
    d = d.__class__(d.apex, d.soa, d.ns, parent, ["ns1.contoso.com.", "ns2.contoso.com."],
                    ["ns3.contoso.com."], d.ns_addresses, d.servers)
    found = deleg.evaluate(deleg.DelegationCheck(
        ZONE, d, [soa(NS1, ZONE, 7), soa(NS2, ZONE, 7), soa(ns3, ZONE, 0, Outcome.TIMEOUT)]))
    assert "DNS_DELEGATED_NS_ALL_FAILING" in tags(found)


def test_nxdomain_from_a_resolver_is_overruled_by_the_parent():
    parent = obs(ns("a.gtld-servers.com.", "127.0.8.1"), ZONE, "NS", Outcome.REFERRAL,
                 authority=[(ZONE, "NS", 172800, "ns1.contoso.com.")])
    d = delegation(ZONE, [NS1], soa_outcome=Outcome.NXDOMAIN)
    d = d.__class__(d.apex, d.soa, d.ns, parent, [], ["ns1.contoso.com."], d.ns_addresses,
                    d.servers)
    found = deleg.evaluate(deleg.DelegationCheck(ZONE, d, [soa(NS1, ZONE, 7)]))
    assert "DNS_DOMAIN_NXDOMAIN" not in tags(found)
    parent_nx = obs(ns("a.gtld-servers.com.", "127.0.8.1"), ZONE, "NS", Outcome.NXDOMAIN)
    d = d.__class__(d.apex, d.soa, d.ns, parent_nx, [], [], [], [])
    assert tags(deleg.evaluate(deleg.DelegationCheck(ZONE, d, []))) == ["DNS_DOMAIN_NXDOMAIN"]


def test_all_servers_silent_while_the_parent_answered_is_the_zones_fault():
    parent = obs(ns("a.gtld-servers.com.", "127.0.8.1"), ZONE, "NS", Outcome.REFERRAL,
                 authority=[(ZONE, "NS", 172800, "ns1.contoso.com."),
                            (ZONE, "NS", 172800, "ns2.contoso.com.")])
    d = delegation(ZONE, [NS1, NS2])
    d = d.__class__(d.apex, soa(RESOLVER, ZONE, 7, aa=False), d.ns, parent, d.child_names,
                    d.child_names, d.ns_addresses, d.servers)
    silent = [soa(NS1, ZONE, 0, Outcome.TIMEOUT), soa(NS2, ZONE, 0, Outcome.TIMEOUT)]
    assert tags(deleg.evaluate(deleg.DelegationCheck(ZONE, d, silent))) == ["DNS_ALL_NS_FAILING"]
