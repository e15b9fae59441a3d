"""The lab's DNS servers, over real loopback sockets with dnspython as the client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import socket
import struct
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.lab import scenarios
from mailtrace.lab.dns_server import AuthoritativeServer, Fault, FaultMode, ForwardingResolver
from mailtrace.lab.lab import ConnectTo, Lab, example_topology

EXAMPLE_ZONE = """
$ORIGIN example.com.
$TTL 600
@       3600 IN SOA ns1 hostmaster 2026112901 7200 3600 1209600 300
@            IN NS  ns1
ns1          IN A   127.0.9.1
www          IN A   127.0.9.80
alias        IN CNAME www
out          IN CNAME www.contoso.com.
loop1        IN CNAME loop2
loop2        IN CNAME loop1
deep.ent.a   IN A   127.0.9.81
*.wild       IN TXT "from the wildcard"
sub          IN NS  ns.sub
ns.sub       IN A   127.0.9.53
big          IN TXT "{chunk}" "{chunk}" "{chunk}"
""".replace("{chunk}", "x" * 200)

SHORT_SOA_ZONE = """
$ORIGIN short.test.
@  60 IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ 300 IN NS  ns1
ns1   IN A   127.0.9.2
"""

Addr = tuple[str, int]


def lab_zone(name: str) -> str:
    return resources.files("mailtrace.lab").joinpath(f"zones/{name}.zone").read_text()


@contextlib.asynccontextmanager
async def serving(*services: AuthoritativeServer | ForwardingResolver) -> AsyncIterator[None]:
    for service in services:
        await service.start()
    try:
        yield
    finally:
        for service in reversed(services):
            await service.stop()


async def ask(
    addr: Addr,
    name: str,
    rdtype: str,
    *,
    tcp: bool = False,
    edns: bool = True,
    timeout: float = 2.0,
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False)
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await send(query, addr[0], timeout=timeout, port=addr[1])


def example_server(**kwargs: Any) -> AuthoritativeServer:
    return AuthoritativeServer([EXAMPLE_ZONE, SHORT_SOA_ZONE], **kwargs)


def with_server(body: Callable[[AuthoritativeServer], Awaitable[None]], **kwargs: Any) -> None:
    async def main() -> None:
        server = example_server(**kwargs)
        async with serving(server):
            await body(server)

    asyncio.run(main())


# -- authoritative behaviour ---------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True])
def test_authoritative_answer_over_udp_and_tcp_on_one_port(tcp: bool) -> None:
    async def body(server: AuthoritativeServer) -> None:
        reply = await ask(server.address, "WWW.Example.COM", "A", tcp=tcp)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.AA and not reply.flags & dns.flags.RA
        (rrset,) = reply.answer
        assert rrset.ttl == 600 and [r.to_text() for r in rrset] == ["127.0.9.80"]
        assert server.queries == 1

    with_server(body)


@pytest.mark.parametrize(("name", "ttl"), [("nope.example.com", 300), ("nope.short.test", 60)])
def test_nxdomain_has_soa_with_negative_ttl(name: str, ttl: int) -> None:
    async def body(server: AuthoritativeServer) -> None:
        reply = await ask(server.address, name, "A")
        assert reply.rcode() == dns.rcode.NXDOMAIN and reply.flags & dns.flags.AA
        assert not reply.answer
        (soa,) = reply.authority
        assert soa.rdtype == dns.rdatatype.SOA and soa.ttl == ttl  # RFC 2308 section 3

    with_server(body)


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [("www.example.com", "AAAA"), ("ent.a.example.com", "A"), ("a.example.com", "TXT")],
)
def test_nodata_for_missing_type_and_empty_non_terminal(name: str, rdtype: str) -> None:
    async def body(server: AuthoritativeServer) -> None:
        reply = await ask(server.address, name, rdtype)
        assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
        assert not reply.answer
        assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]

    with_server(body)


def test_referral_below_a_zone_cut() -> None:
    async def body(server: AuthoritativeServer) -> None:
        reply = await ask(server.address, "www.sub.example.com", "A")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.flags & dns.flags.AA
        assert not reply.answer
        (ns,) = reply.authority
        assert ns.rdtype == dns.rdatatype.NS and ns.name == dns.name.from_text("sub.example.com")
        (glue,) = reply.additional
        assert glue.name == dns.name.from_text("ns.sub.example.com")
        assert glue[0].to_text() == "127.0.9.53"

    with_server(body)


def test_refused_outside_every_zone() -> None:
    async def body(server: AuthoritativeServer) -> None:
        reply = await ask(server.address, "contoso.com", "MX")
        assert reply.rcode() == dns.rcode.REFUSED and not reply.flags & dns.flags.AA

    with_server(body)


def test_cname_returned_and_chased_inside_the_zone_only() -> None:
    async def body(server: AuthoritativeServer) -> None:
        alias = await ask(server.address, "alias.example.com", "A")
        assert [r.rdtype for r in alias.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        out = await ask(server.address, "out.example.com", "A")
        assert [r.rdtype for r in out.answer] == [dns.rdatatype.CNAME]
        assert out.rcode() == dns.rcode.NOERROR and not out.authority
        looped = await ask(server.address, "loop1.example.com", "A")
        assert len(looped.answer) == 2
        asked_cname = await ask(server.address, "alias.example.com", "CNAME")
        assert [r.rdtype for r in asked_cname.answer] == [dns.rdatatype.CNAME]

    with_server(body)


def test_wildcard_synthesis() -> None:
    async def body(server: AuthoritativeServer) -> None:
        reply = await ask(server.address, "anything.wild.example.com", "TXT")
        (rrset,) = reply.answer
        assert rrset.name == dns.name.from_text("anything.wild.example.com")

    with_server(body)


def test_edns_echoed_and_udp_size_limit_truncates() -> None:
    async def body(server: AuthoritativeServer) -> None:
        plain = await ask(server.address, "big.example.com", "TXT", edns=False)
        assert plain.edns < 0 and plain.flags & dns.flags.TC and not plain.answer
        over_tcp = await ask(server.address, "big.example.com", "TXT", edns=False, tcp=True)
        assert over_tcp.answer and not over_tcp.flags & dns.flags.TC
        large = await ask(server.address, "big.example.com", "TXT")
        assert large.edns == 0 and large.answer and not large.flags & dns.flags.TC
        bad_version = dns.message.make_query("www.example.com", "A", use_edns=1)
        reply = await dns.asyncquery.udp(bad_version, "127.0.0.1", 2, port=server.port)
        assert reply.rcode() == dns.rcode.BADVERS

    with_server(body)


def test_notimp_and_formerr() -> None:
    async def body(server: AuthoritativeServer) -> None:
        notify = dns.message.make_query("example.com", "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        reply = await dns.asyncquery.udp(notify, "127.0.0.1", 2, port=server.port)
        assert reply.rcode() == dns.rcode.NOTIMP
        two = dns.message.make_query("www.example.com", "A")
        two.question.append(
            dns.rrset.RRset(
                dns.name.from_text("ns1.example.com"), dns.rdataclass.IN, dns.rdatatype.A
            )
        )
        reply = await dns.asyncquery.udp(two, "127.0.0.1", 2, port=server.port)
        assert reply.rcode() == dns.rcode.FORMERR
        axfr = await ask(server.address, "example.com", "AXFR", tcp=True)
        assert axfr.rcode() == dns.rcode.REFUSED

    with_server(body)


def test_several_queries_on_one_tcp_connection() -> None:
    async def body(server: AuthoritativeServer) -> None:
        reader, writer = await asyncio.open_connection(*server.address)
        for name in ("www.example.com", "ns1.example.com"):
            wire = dns.message.make_query(name, "A").to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = dns.message.from_wire(await reader.readexactly(length))
            assert reply.answer[0].name == dns.name.from_text(name)
        writer.close()
        await writer.wait_closed()

    with_server(body)


# -- faults ------------------------------------------------------------------------------------


def test_fault_drop_never_answers() -> None:
    async def body(server: AuthoritativeServer) -> None:
        with pytest.raises(dns.exception.Timeout):
            await ask(server.address, "www.example.com", "A", timeout=0.3)
        assert server.queries == 1

    with_server(body, fault=Fault("drop"))


@pytest.mark.parametrize(
    ("mode", "rcode"),
    [
        ("servfail", dns.rcode.SERVFAIL),
        ("refused", dns.rcode.REFUSED),
        ("formerr", dns.rcode.FORMERR),
    ],
)
def test_fault_rcodes(mode: FaultMode, rcode: dns.rcode.Rcode) -> None:
    async def body(server: AuthoritativeServer) -> None:
        for tcp in (False, True):
            reply = await ask(server.address, "www.example.com", "A", tcp=tcp)
            assert reply.rcode() == rcode
            assert not reply.answer

    with_server(body, fault=Fault(mode))


def test_fault_truncate_is_udp_only() -> None:
    async def body(server: AuthoritativeServer) -> None:
        udp = await ask(server.address, "www.example.com", "A")
        assert udp.flags & dns.flags.TC and not udp.answer
        tcp = await ask(server.address, "www.example.com", "A", tcp=True)
        assert not tcp.flags & dns.flags.TC and tcp.answer
        query = dns.message.make_query("www.example.com", "A")
        reply, used_tcp = await dns.asyncquery.udp_with_fallback(
            query, "127.0.0.1", 2, port=server.port
        )
        assert used_tcp and reply.answer

    with_server(body, fault=Fault("truncate"))


def test_fault_garbage() -> None:
    async def body(server: AuthoritativeServer) -> None:
        for tcp in (False, True):
            with pytest.raises(dns.exception.DNSException):
                await ask(server.address, "www.example.com", "A", tcp=tcp, timeout=1)

    with_server(body, fault=Fault("garbage"))


def test_fault_wrong_question() -> None:
    async def body(server: AuthoritativeServer) -> None:
        with pytest.raises(dns.query.BadResponse):
            await ask(server.address, "www.example.com", "A")
        query = dns.message.make_query("www.example.com", "A")
        reader, writer = await asyncio.open_connection(*server.address)
        wire = query.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        reply = dns.message.from_wire(await reader.readexactly(length))
        writer.close()
        await writer.wait_closed()
        assert reply.id == query.id
        assert reply.question[0].name != query.question[0].name

    with_server(body, fault=Fault("wrong-question"))


def test_fault_restricted_to_qnames_and_qtypes() -> None:
    fault = Fault("servfail", qnames=frozenset({"WWW.example.com"}), qtypes=frozenset({"a"}))
    assert fault.qnames == frozenset({"www.example.com."})
    assert fault.qtypes == frozenset({"A"})

    async def body(server: AuthoritativeServer) -> None:
        hit = await ask(server.address, "www.example.com.", "A")
        assert hit.rcode() == dns.rcode.SERVFAIL
        other_type = await ask(server.address, "www.example.com", "AAAA")
        other_name = await ask(server.address, "ns1.example.com", "A")
        assert other_type.rcode() == other_name.rcode() == dns.rcode.NOERROR

    with_server(body, fault=fault)


def test_fault_delay_applies_to_every_answer() -> None:
    async def body(server: AuthoritativeServer) -> None:
        started = time.monotonic()
        await ask(server.address, "www.example.com", "A")
        assert time.monotonic() - started >= 0.15

    with_server(body, fault=Fault(delay=0.15))


def test_fault_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown fault mode"):
        Fault("explode")  # type: ignore[arg-type]


# -- hostile clients ---------------------------------------------------------------------------


def test_hostile_udp_and_tcp_clients_do_not_kill_the_server() -> None:
    async def body(server: AuthoritativeServer) -> None:
        response = dns.message.make_response(dns.message.make_query("www.example.com", "A"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for junk in (b"", b"\x00", b"\xff" * 11, b"\x12\x34" + b"\xff" * 40, b"x" * 4000):
                sock.sendto(junk, server.address)
            sock.sendto(response.to_wire(), server.address)  # a response: never answered
        for junk in (b"\x00\x05hello", b"\x00\x00", b"\xff\xff" + b"a" * 10, b"\x00"):
            reader, writer = await asyncio.open_connection(*server.address)
            writer.write(junk)
            await writer.drain()
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 2) == b""  # the server hung up
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.05)
        for tcp in (False, True):
            reply = await ask(server.address, "www.example.com", "A", tcp=tcp)
            assert reply.answer

    with_server(body)


def test_idle_tcp_connection_is_closed() -> None:
    async def body(server: AuthoritativeServer) -> None:
        reader, writer = await asyncio.open_connection(*server.address)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        await writer.wait_closed()

    with_server(body, idle_timeout=0.2)


def test_stop_cancels_open_connections_and_queries_in_flight() -> None:
    async def main() -> None:
        server = example_server(fault=Fault(delay=30))
        await server.start()
        reader, writer = await asyncio.open_connection(*server.address)
        wire = dns.message.make_query("www.example.com", "A").to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(wire, server.address)
        await asyncio.sleep(0.05)
        assert server.queries == 2
        started = time.monotonic()
        await server.stop()
        assert time.monotonic() - started < 1
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        await writer.wait_closed()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), max_size=6),
    st.binary(max_size=8),
)
def test_mutated_queries_never_escape_the_handler(
    edits: list[tuple[int, int]], tail: bytes
) -> None:
    wire = bytearray(dns.message.make_query("www.example.com", "A", use_edns=0).to_wire())
    for index, value in edits:
        wire[index % len(wire)] = value
    server = example_server()

    async def main() -> None:
        try:
            reply = await server._respond(bytes(wire) + tail, tcp=False)
        except Exception as exc:  # only the "cannot parse" signal is allowed out
            assert type(exc).__name__ == "_Unparsable"
        else:
            assert reply is None or dns.message.from_wire(reply).flags & dns.flags.QR

    asyncio.run(main())


# -- forwarding resolver -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def contoso_world(
    *faults: Fault, timeout: float = 1.0
) -> AsyncIterator[tuple[ForwardingResolver, list[AuthoritativeServer]]]:
    """contoso.com on two servers (with `faults`), onmicrosoft.com on one, and a resolver."""
    contoso = [
        AuthoritativeServer([lab_zone("contoso.com")], fault=fault)
        for fault in [*faults, Fault(), Fault()][:2]
    ]
    onmicrosoft = AuthoritativeServer([lab_zone("onmicrosoft.com")])
    async with serving(*contoso, onmicrosoft):
        resolver = ForwardingResolver(
            {
                "contoso.com": [s.address for s in contoso],
                "onmicrosoft.com.": [onmicrosoft.address],
            },
            timeout=timeout,
        )
        async with serving(resolver):
            yield resolver, contoso


def test_resolver_forwards_with_ra_without_aa_keeping_ttls() -> None:
    async def main() -> None:
        async with contoso_world() as (resolver, _):
            reply = await ask(resolver.address, "contoso.com", "MX")
            assert reply.flags & dns.flags.RA and not reply.flags & dns.flags.AA
            assert reply.answer[0].ttl == 3600 and len(reply.answer[0]) == 2
            missing = await ask(resolver.address, "nope.contoso.com", "A", tcp=True)
            assert missing.rcode() == dns.rcode.NXDOMAIN
            assert missing.authority[0].rdtype == dns.rdatatype.SOA

    asyncio.run(main())


def test_resolver_answers_for_the_root_and_nxdomain_elsewhere() -> None:
    async def main() -> None:
        async with contoso_world() as (resolver, _):
            soa = await ask(resolver.address, ".", "SOA")
            assert soa.rcode() == dns.rcode.NOERROR and soa.answer[0].rdtype == dns.rdatatype.SOA
            ns = await ask(resolver.address, ".", "NS")
            assert ns.answer[0][0].to_text() == "a.root-servers.lab."
            elsewhere = await ask(resolver.address, "example.org", "A")
            assert elsewhere.rcode() == dns.rcode.NXDOMAIN
            assert elsewhere.authority[0].name == dns.name.root

    asyncio.run(main())


def test_resolver_servfails_when_every_authoritative_fails() -> None:
    async def main() -> None:
        async with contoso_world(Fault("servfail"), Fault("garbage")) as (resolver, _):
            reply = await ask(resolver.address, "contoso.com", "MX")
            assert reply.rcode() == dns.rcode.SERVFAIL and not reply.answer

    asyncio.run(main())


def test_resolver_tries_endpoints_in_order() -> None:
    async def main() -> None:
        async with contoso_world(Fault("drop"), timeout=0.2) as (resolver, servers):
            reply = await ask(resolver.address, "contoso.com", "MX")
            assert reply.rcode() == dns.rcode.NOERROR and reply.answer
            assert [s.queries for s in servers] == [1, 1]

    asyncio.run(main())


def test_resolver_retries_truncated_answers_over_tcp() -> None:
    async def main() -> None:
        async with contoso_world(Fault("truncate"), Fault("truncate")) as (resolver, _):
            reply = await ask(resolver.address, "contoso.com", "MX")
            assert reply.rcode() == dns.rcode.NOERROR and len(reply.answer[0]) == 2

    asyncio.run(main())


def test_resolver_chases_cname_across_zones() -> None:
    async def main() -> None:
        async with contoso_world() as (resolver, _):
            reply = await ask(resolver.address, "selector1._domainkey.contoso.com", "TXT")
            assert [r.rdtype for r in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.TXT]
            key = b"".join(reply.answer[1][0].strings).decode()
            assert key.startswith("v=DKIM1; k=rsa; p=MIIB")
            plain = await ask(
                resolver.address, "selector1._domainkey.contoso.com", "TXT", edns=False
            )
            assert plain.flags & dns.flags.TC  # > 512 octets: clients must use TCP

    asyncio.run(main())


def test_resolver_refuses_non_loopback_forwarders() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ForwardingResolver({"contoso.com": [("192.0.2.1", 53)]})


# -- zones, scenarios, lab ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "contoso.com",
        "pphosted.com",
        "outlook.com",
        "ppe-hosted.com",
        "fabrikam.com",
        "northwind.com",
        "onmicrosoft.com",
    ],
)
def test_lab_zones_use_loopback_addresses_only(origin: str) -> None:
    zone = dns.zone.from_text(lab_zone(origin), origin=origin, relativize=False)
    zone.check_origin()
    for _, rdataset in zone.iterate_rdatasets():
        assert rdataset.rdtype != dns.rdatatype.AAAA
        if rdataset.rdtype == dns.rdatatype.A:
            assert all(r.to_text().startswith("127.") for r in rdataset)


def test_dkim_keys_are_2048_bit_rsa_subject_public_key_info() -> None:
    zone = dns.zone.from_text(lab_zone("onmicrosoft.com"), relativize=False)
    for selector in ("selector1", "selector2"):
        name = f"{selector}-contoso-com._domainkey.contoso.onmicrosoft.com."
        rdataset = zone.find_rdataset(name, "TXT")
        text = b"".join(rdataset[0].strings).decode()
        der = base64.b64decode(text.split("p=", 1)[1], validate=True)
        assert len(der) == 294 and der[:2] == b"\x30\x82"  # RSA-2048 SubjectPublicKeyInfo


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(scenarios.UnknownScenario) as info:
        scenarios.get("no-such")
    assert "healthy" in str(info.value) and isinstance(info.value, KeyError)


def test_example_topology_says_where_it_looked() -> None:
    with pytest.raises(FileNotFoundError, match="topologies"):
        example_topology("no-such-topology.yaml")


# (qname, qtype, server: None = the resolver, expected rcode, text in the answer)
SCENARIO_CHECKS: dict[str, tuple[str, str, str | None, str, str]] = {
    "healthy": ("contoso.com", "MX", None, "NOERROR", "mx0a-001234.pphosted.com."),
    "mx-missing": ("contoso.com", "MX", None, "NOERROR", ""),
    "mx-bypasses-gateway": (
        "contoso.com",
        "MX",
        None,
        "NOERROR",
        "0 contoso-com.mail.protection.outlook.com.",
    ),
    "mx-target-unresolvable": ("mx0a-009999.pphosted.com", "A", None, "NXDOMAIN", ""),
    "stale-ns": ("contoso.com", "MX", "ns2.contoso.com", "NOERROR", "mail.contoso-old.example."),
    "all-ns-servfail": ("contoso.com", "MX", None, "SERVFAIL", ""),
    "observer-resolver-dead": (".", "SOA", None, "timeout", ""),
    "essentials-healthy": ("fabrikam.com", "MX", None, "NOERROR", "mx1-us1.ppe-hosted.com."),
    "direct-healthy": ("northwind.com", "MX", None, "NOERROR", "northwind-com.mail.protection"),
    # the Proofpoint API scenarios keep healthy DNS: the fault is in what the gateway says
    **{name: ("contoso.com", "MX", None, "NOERROR", "mx0a-001234.pphosted.com.")
       for name in ("pp-rejected-by-rule", "pp-quarantined", "pp-onward-delivery-failed",
                    "pp-api-unauthorized", "pp-api-throttled")},
    "pp-essentials-wrong-destination": ("fabrikam.com", "MX", None, "NOERROR",
                                        "mx1-us1.ppe-hosted.com."),
    # the only MX is an alias: a resolver follows the CNAME to one gateway host
    "mx-one-host-cname": ("contoso.com", "MX", None, "NOERROR", "10 mail.contoso.com."),
}
# The Exchange Online scenarios change the tenant (its Graph), not DNS: healthy zones.
SCENARIO_CHECKS.update({name: SCENARIO_CHECKS["healthy"] for name in (
    "exo-recipient-missing", "exo-account-disabled", "exo-no-mailbox-plan",
    "exo-rule-deletes-all", "exo-mailbox-full", "exo-service-incident",
    "exo-trace-quarantined", "exo-graph-forbidden", "exo-graph-throttled")})


def test_every_scenario_that_changes_dns_has_a_check() -> None:
    changes_dns = {n for n, s in scenarios.SCENARIOS.items() if s.zone_edits or s.faults}
    assert changes_dns <= set(SCENARIO_CHECKS)


def _check(name: str) -> tuple[str, str, str | None, str, str]:
    """The scenario's own check, or, for one that leaves DNS alone, its domain's MX."""
    if name in SCENARIO_CHECKS:
        return SCENARIO_CHECKS[name]
    domain = scenarios.get(name).recipient.rpartition("@")[2]
    return (domain, "MX", None, "NOERROR", "IN MX")


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_scenario_lab_starts_injects_and_stops_cleanly(name: str) -> None:
    qname, qtype, server_name, rcode, text = _check(name)
    ports: list[int] = []  # DNS: UDP and TCP
    tcp_ports: list[int] = []  # SMTP

    async def main() -> None:
        async with Lab(scenarios.get(name)) as lab:
            assert lab.recipient == scenarios.get(name).recipient
            addr = lab.servers[server_name].address if server_name else lab.resolver
            if rcode == "timeout":
                with pytest.raises(dns.exception.Timeout):
                    await ask(addr, qname, qtype, timeout=0.3)
            else:
                reply = await ask(addr, qname, qtype)
                assert dns.rcode.to_text(reply.rcode()) == rcode
                assert text in " ".join(r.to_text() for r in reply.answer)
                assert bool(reply.answer) == bool(text)
            ports.extend(s.port for s in lab.servers.values())
            ports.append(lab.resolver[1])
            tcp_ports.extend(s.port for s in lab.smtp_servers.values())
        assert asyncio.all_tasks() == {asyncio.current_task()}

    gc.collect()  # what earlier tests left behind is not this lab's to answer for
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    # Every socket really closed: this process holds none of the lab's ports any more.
    # (Binding them again would race with other processes on a shared machine.)
    held = _ports_held_by_this_process()
    if held is None:
        pytest.skip("no /proc: cannot list this process's sockets")
    assert not held & {("udp", p) for p in ports}
    assert not held & {("tcp", p) for p in (*ports, *tcp_ports)}


def _ports_held_by_this_process() -> set[tuple[str, int]] | None:
    """(protocol, local port) of every socket this process has open, from /proc (Linux):
    a server in TIME_WAIT belongs to no process, one still open does."""
    import contextlib
    import os
    from pathlib import Path

    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone already
            inodes.add(os.readlink(f"/proc/self/fd/{fd}"))
    mine = {link[8:-1] for link in inodes if link.startswith("socket:[")}
    held: set[tuple[str, int]] = set()
    for proto in ("tcp", "udp", "tcp6", "udp6"):
        table = Path(f"/proc/net/{proto}")
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in mine:
                held.add((proto.rstrip("6"), int(fields[1].rsplit(":", 1)[1], 16)))
    return held


def test_stale_ns_serves_old_serial_only_on_ns2() -> None:
    async def main() -> None:
        async with Lab(scenarios.get("stale-ns")) as lab:
            serials = {}
            for host in ("ns1.contoso.com", "ns2.contoso.com"):
                reply = await ask(lab.servers[host].address, "contoso.com", "SOA")
                serials[host] = reply.answer[0][0].serial
            assert serials == {"ns1.contoso.com": 2026112901, "ns2.contoso.com": 2026110101}
            fresh = await ask(lab.resolver, "contoso.com", "MX")  # ns1 is asked first
            assert "pphosted" in fresh.answer[0].to_text()

    asyncio.run(main())


def test_lab_wiring_connect_to_forwarders_and_delay() -> None:
    async def main() -> None:
        async with Lab(scenarios.get("healthy"), dns_delay=0.05) as lab:
            assert set(lab.servers) == {
                "a.gtld-servers.com",
                "ns1.contoso.com",
                "ns2.contoso.com",
                "ns1.pphosted.com",
                "ns1.outlook.com",
                "ns1.ppe-hosted.com",
                "ns1.fabrikam.com",
                "ns2.fabrikam.com",
                "ns1.northwind.com",
                "ns2.northwind.com",
                "ns1.onmicrosoft.com",
                # the signed root and microsoft. above, the hybrid and Mimecast worlds
                "a.root-servers.net",
                "a.nic.microsoft",
                "ns1.mx.microsoft",
                "ns1.mimecast.com",
                "ns1.litware.com",
                "ns2.litware.com",
                "ns1.adatum.com",
                "ns2.adatum.com",
            }
            redirect = {c.host: c for c in lab.connect_to}
            ns1 = lab.servers["ns1.contoso.com"]
            assert redirect["ns1.contoso.com"] == ConnectTo(
                "ns1.contoso.com", 53, "127.0.0.1", ns1.port
            )
            assert str(redirect["ns1.contoso.com"]) == f"ns1.contoso.com:53:127.0.0.1:{ns1.port}"
            contoso = lab.dns_resolver.forwarders[dns.name.from_text("contoso.com")]
            assert contoso == [ns1.address, lab.servers["ns2.contoso.com"].address]
            assert all(s.fault.delay == 0.05 for s in lab.servers.values())
            assert lab.dns_resolver.fault.delay == 0.05
            text = "\n".join(lab.describe())
            assert f"-p {lab.resolver[1]} contoso.com MX" in text
            assert f"127.0.0.1:{lab.servers['ns2.contoso.com'].port}" in text
            assert redirect["ns2.contoso.com"] in lab.access().connect_to

    asyncio.run(main())


def test_lab_rejects_faults_for_unknown_servers() -> None:
    bad = scenarios.Scenario(
        "bad",
        "",
        "x.yaml",
        "a@contoso.com",
        scenarios.Expectation("healthy"),
        faults={"ns9.contoso.com": Fault("drop")},
    )
    with pytest.raises(ValueError, match="unknown"):
        Lab(bad)
