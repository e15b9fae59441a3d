"""The DNS client against real servers on loopback: outcomes never confused, deadlines
kept, TCP on truncation, --connect-to honoured, identical queries shared."""

from __future__ import annotations

import asyncio
import time

import dns.flags
import dns.message
import pytest

from mailtrace.clients.dns import DnsClient, Outcome, Server, classify
from mailtrace.core.network import ConnectTo, Redirects, parse_connect_to, parse_resolver
from mailtrace.lab.dns_server import AuthoritativeServer, Fault

ZONE = """$ORIGIN example.com.
$TTL 300
@ IN SOA ns1.example.com. hostmaster.example.com. 7 3600 600 86400 300
@ IN NS ns1.example.com.
ns1 IN A 127.0.1.1
@ 3600 IN MX 10 mx.example.com.
mx IN A 127.0.2.1
big IN TXT "{pad}" "{pad}" "{pad}"
""".replace("{pad}", "x" * 250)

NS1 = Server("authoritative", "127.0.1.1", 53, "ns1.example.com.")


async def with_server(fault: Fault, body):
    async with AuthoritativeServer([ZONE], fault=fault) as server:
        redirects = Redirects((ConnectTo("ns1.example.com", 53, "127.0.0.1", server.port),))
        client = DnsClient(resolvers=[], redirects=redirects, attempt_timeout=0.3)
        return await body(client, server)


def ask(qname: str, qtype: str, fault: Fault | None = None, deadline: float = 2.0):
    async def body(client, server):
        return await client.query(NS1, qname, qtype, time.monotonic() + deadline)

    return asyncio.run(with_server(fault or Fault(), body))


def test_answer_with_ttl_flags_and_redirect_evidence():
    obs = ask("example.com", "MX")
    assert obs.outcome is Outcome.ANSWER and obs.authoritative
    assert [(r.type, r.ttl, r.data) for r in obs.answer] == [("MX", 3600, "10 mx.example.com.")]
    ev = obs.evidence()
    assert ev["server"] == "ns1.example.com (127.0.1.1:53)"
    assert ev["connected_to"].startswith("127.0.0.1:")
    assert ev["flags"] == ["AA"]


def test_nxdomain_nodata_servfail_refused_timeout_are_distinct():
    assert ask("nope.example.com", "A").outcome is Outcome.NXDOMAIN
    assert ask("mx.example.com", "MX").outcome is Outcome.NODATA
    assert ask("example.com", "MX", Fault(mode="servfail")).outcome is Outcome.SERVFAIL
    assert ask("example.com", "MX", Fault(mode="refused")).outcome is Outcome.REFUSED
    assert ask("example.com", "MX", Fault(mode="formerr")).outcome is Outcome.FORMERR
    assert ask("example.com", "MX", Fault(mode="garbage")).outcome is Outcome.MALFORMED
    assert ask("example.com", "MX", Fault(mode="wrong-question")).outcome is Outcome.MISMATCH
    assert ask("outside.test", "A").outcome is Outcome.REFUSED


def test_silent_server_times_out_inside_the_deadline_with_the_attempts():
    started = time.monotonic()
    obs = ask("example.com", "MX", Fault(mode="drop"), deadline=1.0)
    elapsed = time.monotonic() - started
    assert obs.outcome is Outcome.TIMEOUT
    assert 0.9 <= elapsed < 1.3
    assert len(obs.attempts) >= 3 and {a.result for a in obs.attempts} == {"timeout"}
    assert "attempts" in obs.evidence()


def test_budget_too_short_for_one_fair_attempt_is_out_of_time_not_timeout():
    obs = ask("example.com", "MX", Fault(delay=0.5), deadline=0.2)
    assert obs.outcome is Outcome.OUT_OF_TIME


def test_a_late_reply_to_an_earlier_send_is_still_accepted():
    # attempt timeout 0.3 s, the server answers each query after 0.5 s: the reply to
    # the first send arrives after the resend and must not be thrown away.
    obs = ask("example.com", "MX", Fault(delay=0.5), deadline=2.0)
    assert obs.outcome is Outcome.ANSWER
    assert [a.result for a in obs.attempts] == ["timeout", "reply"]
    assert obs.elapsed_ms < 800


def test_truncated_udp_answer_is_retried_over_tcp():
    obs = ask("example.com", "MX", Fault(mode="truncate"))
    assert (obs.outcome, obs.transport) == (Outcome.ANSWER, "tcp")
    assert [(a.transport, a.result) for a in obs.attempts] == [
        ("udp", "truncated"), ("tcp", "reply")]


def test_large_answer_over_edns_limit_goes_tcp():
    obs = ask("big.example.com", "TXT")
    assert obs.outcome is Outcome.ANSWER
    assert obs.transport in ("udp", "tcp")  # 750 bytes fit the 1232-byte EDNS payload
    assert len(obs.answer[0].data) > 750


def test_nothing_listening_is_a_network_error_or_timeout():
    async def body(client, server):
        dead = Server("authoritative", "127.0.0.1", 1, "dead.example.")
        return await client.query(dead, "example.com", "SOA", time.monotonic() + 1.0)

    obs = asyncio.run(with_server(Fault(), body))
    assert obs.outcome is Outcome.NETWORK_ERROR  # ICMP unreachable, not a 1 s timeout
    assert "ConnectionRefused" in (obs.error or "")


@pytest.fixture(params=["selector", "transport"])
def udp_path(request, monkeypatch):
    """Both ways a UDP exchange waits: the loop's selector reading the socket, and the
    asyncio transport a loop without one (Windows' proactor) falls back to."""
    if request.param == "transport":
        from mailtrace.clients import dns_udp

        monkeypatch.setattr(dns_udp, "open_udp", lambda family, destination: None)
    return request.param


def test_both_udp_paths_answer_resend_and_keep_a_late_reply(udp_path):
    assert ask("example.com", "MX").outcome is Outcome.ANSWER
    obs = ask("example.com", "MX", Fault(delay=0.5), deadline=2.0)
    assert obs.outcome is Outcome.ANSWER
    assert [a.result for a in obs.attempts] == ["timeout", "reply"]
    silent = ask("example.com", "MX", Fault(mode="drop"), deadline=1.0)
    assert silent.outcome is Outcome.TIMEOUT
    # 0.3 s, 0.6 s, then what is left of the second
    assert [a.result for a in silent.attempts] == ["timeout", "timeout", "timeout"]


def test_both_udp_paths_report_a_refused_port_at_once(udp_path):
    async def body(client, server):
        dead = Server("authoritative", "127.0.0.1", 1, "dead.example.")
        return await client.query(dead, "example.com", "SOA", time.monotonic() + 1.0)

    obs = asyncio.run(with_server(Fault(), body))
    assert obs.outcome is Outcome.NETWORK_ERROR and "ConnectionRefused" in (obs.error or "")
    assert obs.elapsed_ms < 500


def test_a_wrong_question_on_either_udp_path_is_a_mismatch(udp_path):
    obs = ask("example.com", "MX", Fault(mode="wrong-question"))
    assert obs.outcome is Outcome.MISMATCH


def test_identical_queries_in_flight_are_shared():
    async def body(client, server):
        deadline = time.monotonic() + 2
        results = await asyncio.gather(*(client.query(NS1, "example.com", "MX", deadline)
                                         for _ in range(5)))
        return results, server.queries

    results, queries = asyncio.run(with_server(Fault(delay=0.1), body))
    assert queries == 1 and len({id(r) for r in results}) == 1


def test_a_shorter_deadline_joining_a_shared_query_still_returns_in_time():
    async def body(client, server):
        slow = asyncio.ensure_future(client.query(NS1, "example.com", "MX", time.monotonic() + 2))
        await asyncio.sleep(0)
        started = time.monotonic()
        quick = await client.query(NS1, "example.com", "MX", time.monotonic() + 0.1)
        took = time.monotonic() - started
        return (await slow), quick, took

    slow, quick, took = asyncio.run(with_server(Fault(delay=0.2), body))
    assert slow.outcome is Outcome.ANSWER
    assert quick.outcome is Outcome.OUT_OF_TIME and took < 0.3  # 0.1 s: no fair attempt


def test_classify_referral_vs_nodata():
    q = dns.message.make_query("sub.example.com", "A")
    r = dns.message.make_response(q)
    r.authority.append(
        dns.rrset.from_text("sub.example.com.", 300, "IN", "NS", "ns.sub.example.com."))
    assert classify(r) is Outcome.REFERRAL
    r.flags |= dns.flags.AA
    assert classify(r) is Outcome.NODATA


@pytest.mark.parametrize(("text", "expected"), [
    ("192.0.2.1", ("192.0.2.1", 53)),
    ("192.0.2.1:5353", ("192.0.2.1", 5353)),
    ("[2001:db8::1]:53", ("2001:db8::1", 53)),
    ("2001:db8::1", ("2001:db8::1", 53)),
])
def test_parse_resolver(text, expected):
    e = parse_resolver(text)
    assert (e.address, e.port) == expected


def test_parse_connect_to_and_redirect_by_name_or_address():
    rule = parse_connect_to("NS1.Example.com.:53:127.0.0.1:5300")
    assert str(rule) == "ns1.example.com:53:127.0.0.1:5300"
    six = parse_connect_to("mx.example.com:25:[::1]:2525")
    assert (six.addr, six.to_port) == ("::1", 2525)
    redirects = Redirects((rule, parse_connect_to("192.0.2.7:53:127.0.0.2:5301")))
    assert str(redirects.resolve("ns1.example.com.", "192.0.2.1", 53)) == "127.0.0.1:5300"
    assert str(redirects.resolve(None, "192.0.2.7", 53)) == "127.0.0.2:5301"
    assert str(redirects.resolve("ns1.example.com", "192.0.2.1", 25)) == "192.0.2.1:25"


COM = """$ORIGIN com.
$TTL 300
@ IN SOA a.gtld-servers.com. h.com. 1 3600 600 86400 300
@ IN NS a.gtld-servers.com.
a.gtld-servers IN A 127.0.8.1
contoso IN NS ns1.contoso.com.
ns1.contoso IN A 127.0.1.1
"""
CONTOSO = """$ORIGIN contoso.com.
$TTL 300
@ IN SOA ns1.contoso.com. h.contoso.com. 1 3600 600 86400 300
@ IN NS ns1.contoso.com.
ns1 IN A 127.0.1.1
"""


def test_parent_and_child_on_one_server_is_not_a_mismatch():
    """A server that serves the parent and the child answers the delegation question with
    authority (no referral): its NS set is still the parent's view."""
    from mailtrace.lab.dns_server import ForwardingResolver

    async def main():
        async with AuthoritativeServer([COM, CONTOSO]) as both:
            ep = [("127.0.0.1", both.port)]
            async with ForwardingResolver({"com.": ep, "contoso.com.": ep}) as resolver:
                redirects = Redirects((
                    ConnectTo("a.gtld-servers.com", 53, "127.0.0.1", both.port),
                    ConnectTo("ns1.contoso.com", 53, "127.0.0.1", both.port)))
                client = DnsClient([Server("resolver", "127.0.0.1", resolver.port)], redirects)
                return await client.delegation("contoso.com", time.monotonic() + 3)

    d = asyncio.run(main())
    assert d.parent is not None and d.parent.outcome is Outcome.ANSWER
    assert d.parent_names == d.child_names == ["ns1.contoso.com."]


def test_unreachable_parent_does_not_eat_the_deadline():
    from mailtrace.lab.dns_server import ForwardingResolver

    async def main():
        async with AuthoritativeServer([COM, CONTOSO]) as both:
            ep = [("127.0.0.1", both.port)]
            async with ForwardingResolver({"com.": ep, "contoso.com.": ep}) as resolver:
                # only the child is redirected: the parent's server is "down"
                redirects = Redirects((ConnectTo("ns1.contoso.com", 53, "127.0.0.1", both.port),
                                       ConnectTo("a.gtld-servers.com", 53, "127.0.0.1", 9)))
                client = DnsClient([Server("resolver", "127.0.0.1", resolver.port)], redirects,
                                   attempt_timeout=0.3)
                started = time.monotonic()
                d = await client.delegation("contoso.com", time.monotonic() + 8)
                return d, time.monotonic() - started

    d, took = asyncio.run(main())
    assert d.parent is None and d.servers and took < 1.0


def test_no_route_from_here_is_its_own_outcome(monkeypatch):
    import errno

    async def unreachable(self, message, via, deadline, attempts):
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(DnsClient, "_udp", unreachable)
    client = DnsClient(resolvers=[])
    v6 = Server("authoritative", "2001:db8::53", 53, "ns2.example.com.")
    obs = asyncio.run(client.query(v6, "example.com", "SOA", time.monotonic() + 1))
    assert obs.outcome is Outcome.NO_ROUTE and not obs.outcome.answered


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_a_resolver_on_ipv6_answers_over_udp_and_tcp():
    # --resolver '[::1]:PORT': the connected UDP socket is IPv6, and so is the TCP retry.
    async def body(fault):
        async with AuthoritativeServer([ZONE], host="::1", fault=fault) as server:
            resolver = parse_resolver(f"[::1]:{server.port}")
            client = DnsClient([Server("resolver", resolver.address, resolver.port)],
                               attempt_timeout=0.5)
            return await client.query(client.resolvers[0], "example.com", "MX",
                                      time.monotonic() + 3)

    mx = asyncio.run(body(Fault()))
    assert mx.outcome is Outcome.ANSWER, mx.error
    assert mx.records("MX")[0].data == "10 mx.example.com."
    assert mx.evidence()["server"].startswith("resolver [::1]:")
    truncated = asyncio.run(body(Fault(mode="truncate")))
    assert (truncated.outcome, truncated.transport) == (Outcome.ANSWER, "tcp"), truncated.error
