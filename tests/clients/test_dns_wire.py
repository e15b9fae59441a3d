"""The client's own wire reader and writer say exactly what dnspython says.

Generated replies (names with any octet, mixed case, compression; every type the reader
takes; duplicates, singleton types, TTLs with the top bit set), and the same bytes cut
or altered: whenever the reader takes a message, dnspython reads the same records, flags,
rcode and question from it; whenever dnspython refuses a message, the reader does too.
"""

from __future__ import annotations

import dns.flags
import dns.ipv6
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtrace.clients import dns_wire
from mailtrace.clients.dns import classify, classify_reply, reply_of

LABEL = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,12}", fullmatch=True),
    st.binary(min_size=1, max_size=10),
)
NAME = st.lists(LABEL, min_size=0, max_size=4).map(
    lambda labels: dns.name.Name([*(lb.encode() if isinstance(lb, str) else lb
                                    for lb in labels), b""]))
TTL = st.one_of(st.integers(0, 86400), st.integers(0x7FFFFFF0, 0xFFFFFFFF))


@st.composite
def rdata(draw: st.DrawFn) -> tuple[dns.name.Name, int, int, dns.rdata.Rdata]:
    from dns.rdtypes.ANY import CNAME, MX, NS, PTR, SOA, TXT
    from dns.rdtypes.IN import AAAA, A

    kind = draw(st.sampled_from(["A", "AAAA", "NS", "CNAME", "PTR", "MX", "TXT", "SOA"]))
    IN, rdtype = dns.rdataclass.IN, dns.rdatatype.from_text(kind)
    if kind == "A":
        rd: dns.rdata.Rdata = A.A(IN, rdtype, ".".join(
            str(draw(st.integers(0, 255))) for _ in range(4)))
    elif kind == "AAAA":
        raw = draw(st.sampled_from([bytes(16), bytes(10) + b"\xff\xff\x01\x02\x03\x04",
                                    draw(st.binary(min_size=16, max_size=16))]))
        rd = AAAA.AAAA(IN, rdtype, dns.ipv6.inet_ntoa(raw))
    elif kind in ("NS", "CNAME", "PTR"):
        cls = {"NS": NS.NS, "CNAME": CNAME.CNAME, "PTR": PTR.PTR}[kind]
        rd = cls(IN, rdtype, draw(NAME))
    elif kind == "MX":
        rd = MX.MX(IN, rdtype, draw(st.integers(0, 65535)), draw(NAME))
    elif kind == "TXT":
        rd = TXT.TXT(IN, rdtype, draw(st.lists(st.binary(max_size=40), min_size=1,
                                               max_size=3)))
    else:
        numbers = [draw(st.integers(0, 0xFFFFFFFF)) for _ in range(5)]
        rd = SOA.SOA(IN, rdtype, draw(NAME), draw(NAME), *numbers)
    return draw(NAME), rdtype, draw(TTL), rd


@st.composite
def reply(draw: st.DrawFn) -> bytes:
    qname = draw(NAME)
    qtype = draw(st.sampled_from(["A", "MX", "TXT", "DNSKEY"]))
    query = dns.message.make_query(qname, qtype, use_edns=draw(st.sampled_from([None, 0])),
                                   payload=1232, want_dnssec=draw(st.booleans()))
    response = dns.message.make_response(query)
    response.set_rcode(draw(st.sampled_from([0, 2, 3, 5])))
    if draw(st.booleans()):
        response.flags |= dns.flags.AA
    for section in (response.answer, response.authority, response.additional):
        for owner, _rdtype, ttl, rd in draw(st.lists(rdata(), max_size=5)):
            for _ in range(draw(st.integers(1, 2))):  # sometimes twice
                section.append(dns.rrset.from_rdata(owner, ttl, rd))
    wire = response.to_wire()
    if draw(st.booleans()):  # cut short, or one octet changed
        at = draw(st.integers(0, len(wire) - 1))
        wire = (wire[:at] if draw(st.booleans())
                else wire[:at] + bytes([draw(st.integers(0, 255))]) + wire[at + 1:])
    return wire


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(reply())
def test_the_reader_reads_what_dnspython_reads_or_declines(wire: bytes) -> None:
    ours = dns_wire.read_reply(wire)
    try:
        message = dns.message.from_wire(wire)
    except Exception:
        assert ours is None  # what dnspython refuses, the reader never takes
        return
    if ours is None:
        return  # not the reader's case: the client asks dnspython
    theirs = reply_of(message)
    assert ours == theirs
    assert classify_reply(ours) is classify(message)


@given(NAME, st.sampled_from(sorted(dns_wire.TYPE_CODES)), st.booleans(), st.booleans(),
       st.booleans())
def test_the_writer_writes_dnspythons_query(name: dns.name.Name, qtype: str, resolver: bool,
                                             cd: bool, dnssec: bool) -> None:
    text = name.to_text()
    made = dns_wire.query_wire(text, qtype, recursion=resolver, ad=resolver, cd=cd,
                               dnssec=dnssec)
    if made is None:
        assert not dns_wire.plain_name(text)
        return
    ident, wire = made
    query = dns.message.make_query(text, qtype, use_edns=0, payload=1232, want_dnssec=dnssec)
    query.id = ident
    query.flags = (query.flags & ~dns.flags.RD) | (dns.flags.RD | dns.flags.AD if resolver
                                                   else 0) | (dns.flags.CD if cd else 0)
    assert wire == query.to_wire()
    read = dns.message.from_wire(wire)
    response = dns_wire.read_reply(dns.message.make_response(read).to_wire())
    assert response is not None
    assert dns_wire.answers(response, ident, text, dns_wire.TYPE_CODES[qtype])
    assert not dns_wire.answers(response, ident ^ 1, text, dns_wire.TYPE_CODES[qtype])
