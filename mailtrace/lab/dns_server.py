"""In-process DNS servers for the lab: an authoritative server and a forwarding resolver.

Both speak real DNS wire format over UDP *and* TCP on one port number, so the code under
test exercises the same paths it uses against the internet (TC and TCP fallback, EDNS
payload sizes, malformed replies). Each server can be told to misbehave through a `Fault`,
which is how the lab's scenarios put a failure in one precise place.

The handlers never raise: a query that breaks something is dropped and logged at DEBUG,
so a hostile or buggy client cannot take a server down in the middle of a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import socket
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Self, get_args

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import dns.zone

log = logging.getLogger(__name__)

FaultMode = Literal[
    "drop", "servfail", "refused", "truncate", "garbage", "wrong-question", "formerr"
]

#: Advertised EDNS payload: the DNS Flag Day 2020 value, small enough to avoid fragmentation.
OUR_PAYLOAD = 1232
#: CNAME chains longer than this are treated as broken (a loop, in practice).
MAX_CNAME_HOPS = 8
_BIND_ATTEMPTS = 5
_RECEIVE_BUFFER = 4 * 1024 * 1024
_RCODE_FAULTS = {
    "servfail": dns.rcode.SERVFAIL,
    "refused": dns.rcode.REFUSED,
    "formerr": dns.rcode.FORMERR,
}
_WRONG_QNAME = dns.name.from_text("mismatched-question.invalid.")


def normalise_name(name: str | dns.name.Name) -> dns.name.Name:
    """Absolute, lower-case name: relative names are taken as relative to the root."""
    if isinstance(name, str):
        name = dns.name.from_text(name)
    return name.canonicalize()


@dataclass(frozen=True)
class Fault:
    """How one server misbehaves. `mode` is limited to `qnames`/`qtypes` when given, and
    to the exact (name, type) pairs of `questions` when given (a name that times out only
    for the types it has no records of, as the RFC 7208 test suite's TIMEOUT marker
    says); `delay` applies to every answer regardless (benchmarks use it to model
    latency)."""

    mode: FaultMode | None = None
    delay: float = 0.0
    qnames: frozenset[str] | None = None
    qtypes: frozenset[str] | None = None
    questions: frozenset[tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in get_args(FaultMode):
            raise ValueError(f"unknown fault mode {self.mode!r}")
        if self.delay < 0:
            raise ValueError("fault delay must not be negative")
        if self.qnames is not None:
            names = frozenset(normalise_name(n).to_text() for n in self.qnames)
            object.__setattr__(self, "qnames", names)
        if self.qtypes is not None:
            types = frozenset(
                dns.rdatatype.to_text(dns.rdatatype.from_text(t)) for t in self.qtypes
            )
            object.__setattr__(self, "qtypes", types)
        if self.questions is not None:
            pairs = frozenset(
                (normalise_name(n).to_text(), dns.rdatatype.to_text(dns.rdatatype.from_text(t)))
                for n, t in self.questions
            )
            object.__setattr__(self, "questions", pairs)

    def applies_to(
        self, qname: dns.name.Name | None, qtype: dns.rdatatype.RdataType | None
    ) -> bool:
        """Does the fault mode hit this question? A question-less query is only hit by an
        unrestricted fault."""
        if self.mode is None:
            return False
        if self.qnames is not None and (
            qname is None or normalise_name(qname).to_text() not in self.qnames
        ):
            return False
        if self.questions is not None and (
            qname is None
            or qtype is None
            or (normalise_name(qname).to_text(), dns.rdatatype.to_text(qtype))
            not in self.questions
        ):
            return False
        return self.qtypes is None or (
            qtype is not None and dns.rdatatype.to_text(qtype) in self.qtypes
        )


class _Unparsable(Exception):
    """The bytes received are not a DNS query we can even answer FORMERR to."""


def _truncate(response: dns.message.Message) -> dns.message.Message:
    """Empty every record section and set TC, telling the client to retry over TCP
    (RFC 1035 section 4.2.1, RFC 7766 section 5)."""
    response.answer.clear()
    response.authority.clear()
    response.additional.clear()
    response.flags |= dns.flags.TC
    return response


class _DnsService:
    """UDP + TCP listener on one port: framing, fault injection, size limits.

    Subclasses implement `_answer` for a well-formed single-question QUERY.
    """

    def __init__(self, *, host: str, port: int, fault: Fault | None, idle_timeout: float) -> None:
        self.host = host
        self.fault = fault if fault is not None else Fault()
        self.idle_timeout = idle_timeout
        self.queries = 0
        self._requested_port = port
        self._port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_closed: asyncio.Future[None] | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def port(self) -> int:
        if self._udp is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def start(self) -> None:
        """Bind UDP (on an ephemeral port if 0), then TCP on the same number; if another
        process took that TCP port in between, start over on a fresh UDP port."""
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        self._closing = False
        for _ in range(_BIND_ATTEMPTS):
            closed: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(_UdpProtocol, self, closed),
                local_addr=(self.host, self._requested_port),
            )
            port = int(transport.get_extra_info("sockname")[1])
            with contextlib.suppress(OSError):
                # Room for a burst (a fleet's hundreds of queries at once) where the
                # kernel's default buffer would drop some; the kernel caps it at its
                # net.core.rmem_max.
                transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, port)
            except OSError as exc:
                transport.close()
                await closed
                last_error = exc
                if self._requested_port:
                    break
                continue
            self._udp, self._udp_closed, self._port = transport, closed, port
            return
        raise OSError(f"cannot bind UDP and TCP on one port on {self.host}") from last_error

    async def stop(self) -> None:
        """Close both listeners and cancel every in-flight query and TCP connection."""
        self._closing = True
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None:
            self._udp.close()
        await asyncio.sleep(0)  # let just-accepted connections register, to be cancelled
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        if self._udp_closed is not None:
            await self._udp_closed
        self._tcp = self._udp = self._udp_closed = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- transport ---------------------------------------------------------------------

    def _spawn_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._closing:
            return
        task = asyncio.get_running_loop().create_task(self._serve_datagram(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = await self._respond(data, tcp=False)
            if reply is not None and self._udp is not None and not self._closing:
                self._udp.sendto(reply, addr)
        except _Unparsable:
            log.debug("ignoring unparsable datagram from %s", addr)
        except Exception:
            log.debug("query from %s dropped", addr, exc_info=True)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766: 2-octet length framing, several queries per connection, answered in
        order; an idle connection is closed so a silent client cannot pin a task."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while not self._closing:
                try:
                    header = await asyncio.wait_for(reader.readexactly(2), self.idle_timeout)
                    (length,) = struct.unpack("!H", header)
                    wire = await asyncio.wait_for(reader.readexactly(length), self.idle_timeout)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                reply = await self._respond(wire, tcp=True)
                if reply is not None:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    # a client that sends but never reads must not pin the connection
                    await asyncio.wait_for(writer.drain(), self.idle_timeout)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # stop() cancels open connections; ending quietly keeps asyncio from logging
            # a traceback for the handler task it started.
        except _Unparsable:
            log.debug("closing TCP connection after an unparsable message")
        except Exception:
            log.debug("TCP connection dropped", exc_info=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    # -- one query -----------------------------------------------------------------------

    async def _respond(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """Wire query in, wire reply out (None: send nothing)."""
        try:
            query = dns.message.from_wire(wire)
        except Exception as exc:
            raise _Unparsable from exc
        if query.flags & dns.flags.QR:
            return None  # never answer a response: that is how reflection loops start
        self.queries += 1
        if self.fault.delay:
            await asyncio.sleep(self.fault.delay)
        question = query.question[0] if len(query.question) == 1 else None
        mode = self.fault.mode
        # (An RRset in the question section has no rdata, so it is falsy: test for None.)
        hit = self.fault.applies_to(
            None if question is None else question.name,
            None if question is None else question.rdtype,
        )
        # Truncation is a UDP-only fault: over TCP the real answer goes out, so a client
        # that retries over TCP as it must (RFC 7766 section 5) succeeds.
        if mode is not None and hit and not (mode == "truncate" and tcp):
            return self._faulty_reply(query, mode)
        response = await self._checked_answer(query)
        return self._encode(response, query, tcp=tcp)

    async def _checked_answer(self, query: dns.message.Message) -> dns.message.Message:
        if query.opcode() != dns.opcode.QUERY:
            return _error(query, dns.rcode.NOTIMP)  # RFC 1035 section 4.1.1
        if len(query.question) != 1:
            return _error(query, dns.rcode.FORMERR)  # RFC 9619: QDCOUNT must be 1
        if query.edns > 0:
            return _error(query, dns.rcode.BADVERS)  # RFC 6891 section 6.1.3
        if query.question[0].rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return _error(query, dns.rcode.REFUSED)  # no zone transfers (RFC 5936 section 2.2.1)
        return await self._answer(query, query.question[0])

    def _faulty_reply(self, query: dns.message.Message, mode: FaultMode) -> bytes | None:
        if mode == "drop":
            return None
        if mode == "garbage":
            # Shorter than the 12-octet header, so it can never parse as DNS.
            return os.urandom(11)
        if mode in _RCODE_FAULTS:
            return _error(query, _RCODE_FAULTS[mode]).to_wire()
        response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        if mode == "truncate":
            return _truncate(response).to_wire()
        # wrong-question: right id, well-formed, but about some other name.
        first = query.question[0].name if query.question else dns.name.root
        other = _WRONG_QNAME if first != _WRONG_QNAME else dns.name.root
        response.question = [
            dns.rrset.RRset(other, rrset.rdclass, rrset.rdtype) for rrset in query.question
        ] or [dns.rrset.RRset(other, dns.rdataclass.IN, dns.rdatatype.A)]
        response.flags |= dns.flags.AA
        return response.to_wire()

    def _encode(
        self, response: dns.message.Message, query: dns.message.Message, *, tcp: bool
    ) -> bytes:
        """UDP replies are limited to the client's EDNS payload, or 512 octets without EDNS
        (RFC 1035 section 4.2.1, RFC 6891 section 6.2.5); a larger reply goes out truncated."""
        if tcp:
            return response.to_wire(max_size=65535)
        limit = min(max(query.payload if query.edns >= 0 else 512, 512), 65535)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            return _truncate(response).to_wire(max_size=limit)

    async def _answer(
        self, query: dns.message.Message, question: dns.rrset.RRset
    ) -> dns.message.Message:
        raise NotImplementedError


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
    response.set_rcode(rcode)
    return response


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, service: _DnsService, closed: asyncio.Future[None]) -> None:
        self._service = service
        self._closed = closed

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._service._spawn_udp(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


# -- authoritative data ----------------------------------------------------------------------


def _negative_soa(soa: dns.rrset.RRset) -> dns.rrset.RRset:
    """The SOA for a negative answer, TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 section 3)."""
    rdata = soa[0]
    assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
    return dns.rrset.from_rdata(soa.name, min(soa.ttl, rdata.minimum), rdata)


def _rrset(owner: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(owner, rdataset.ttl, list(rdataset))


@dataclass
class _Outcome:
    """What one zone says about one name (RFC 1034 section 4.3.2, step 3)."""

    kind: Literal["answer", "cname", "nodata", "nxdomain", "referral"]
    records: list[dns.rrset.RRset] = field(default_factory=list)
    glue: list[dns.rrset.RRset] = field(default_factory=list)
    target: dns.name.Name | None = None


class _ZoneData:
    """One zone with absolute names, its empty non-terminals and its zone cuts."""

    def __init__(self, zone: dns.zone.Zone | str) -> None:
        if isinstance(zone, str):
            zone = dns.zone.from_text(zone, relativize=False)
        elif zone.relativize:
            text = zone.to_text(relativize=False)
            zone = dns.zone.from_text(text, origin=zone.origin, relativize=False)
        assert zone.origin is not None
        self.origin: dns.name.Name = zone.origin
        self.nodes: dict[dns.name.Name, dns.node.Node] = dict(zone.nodes)
        soa = zone.get_rdataset(self.origin, dns.rdatatype.SOA)
        if soa is None:
            raise ValueError(f"zone {self.origin} has no SOA at its apex")
        self.soa = _rrset(self.origin, soa)
        # A name with descendants exists even without records (RFC 8020): NODATA, not NXDOMAIN.
        self.names: set[dns.name.Name] = set()
        for name in self.nodes:
            while name not in self.names and name.is_subdomain(self.origin):
                self.names.add(name)
                if name == self.origin:
                    break
                name = name.parent()
        self.cuts = {
            name
            for name, node in self.nodes.items()
            if name != self.origin and node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS)
        }

    def _rdataset(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> dns.rdataset.Rdataset | None:
        node = self.nodes.get(name)
        if node is None:
            return None
        return node.get_rdataset(dns.rdataclass.IN, rdtype)

    def _cut_at_or_above(self, name: dns.name.Name) -> dns.name.Name | None:
        for depth in range(len(self.origin) + 1, len(name) + 1):
            candidate = name.split(depth)[1]
            if candidate in self.cuts:
                return candidate
        return None

    def lookup(self, name: dns.name.Name, qtype: dns.rdatatype.RdataType) -> _Outcome:
        cut = self._cut_at_or_above(name)
        # DS lives on the parent side of the cut (RFC 4035 section 3.1.4.1).
        if cut is not None and not (cut == name and qtype == dns.rdatatype.DS):
            return self._referral(cut)
        owner_node = self.nodes.get(name)
        if owner_node is None:
            if name in self.names:
                return _Outcome("nodata", [_negative_soa(self.soa)])
            owner_node = self._wildcard(name)
            if owner_node is None:
                return _Outcome("nxdomain", [_negative_soa(self.soa)])
        if qtype == dns.rdatatype.ANY:
            return _Outcome("answer", [_rrset(name, rds) for rds in owner_node.rdatasets])
        rds = owner_node.get_rdataset(dns.rdataclass.IN, qtype)
        if rds is not None:
            return _Outcome("answer", [_rrset(name, rds)])
        cname = owner_node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is not None:
            return _Outcome("cname", [_rrset(name, cname)], target=cname[0].target)
        return _Outcome("nodata", [_negative_soa(self.soa)])

    # -- DNSSEC (RFC 4035 §3.1): what a signed zone adds for a client that set DO -------

    def signatures(self, rrsets: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
        """The RRSIGs covering these RRsets (none for an unsigned zone)."""
        out = []
        for rrset in rrsets:
            node = self.nodes.get(rrset.name)
            sigs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, rrset.rdtype) \
                if node is not None else None
            if sigs is not None:
                out.append(_rrset(rrset.name, sigs))
        return out

    def denial(self, name: dns.name.Name) -> list[dns.rrset.RRset]:
        """The NSEC that proves ``name`` has no such data (its own) or does not exist (the
        one before it in canonical order, RFC 4034 §6.1), with its RRSIG (RFC 4035
        §3.1.3). Empty for an unsigned zone."""
        owners = sorted(n for n, node in self.nodes.items()
                        if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC))
        if not owners:
            return []
        before = [n for n in owners if n <= name]
        owner = before[-1] if before else owners[-1]
        node = self.nodes[owner]
        nsec = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NSEC)
        assert nsec is not None
        proof = [_rrset(owner, nsec)]
        return proof + self.signatures(proof)

    def delegation_proof(self, cut: dns.name.Name) -> list[dns.rrset.RRset]:
        """For a referral: the DS at the cut and its RRSIG, or the NSEC proving none."""
        ds = self._rdataset(cut, dns.rdatatype.DS)
        if ds is not None:
            found = [_rrset(cut, ds)]
            return found + self.signatures(found)
        return self.denial(cut)

    def _wildcard(self, name: dns.name.Name) -> dns.node.Node | None:
        """RFC 4592 section 3.3.1: `*` below the closest encloser answers for the name."""
        encloser = name.parent()
        while encloser not in self.names and encloser != dns.name.root:
            encloser = encloser.parent()
        if encloser not in self.names:
            return None
        return self.nodes.get(dns.name.Name((b"*",)).concatenate(encloser))

    def _referral(self, cut: dns.name.Name) -> _Outcome:
        """NS of the child zone, plus glue for name servers inside this zone (RFC 1034
        section 4.3.2 step 3b)."""
        ns = self._rdataset(cut, dns.rdatatype.NS)
        assert ns is not None
        glue = []
        for rdata in ns:
            target = rdata.target
            if target.is_subdomain(self.origin):
                for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    rds = self._rdataset(target, rdtype)
                    if rds is not None:
                        glue.append(_rrset(target, rds))
        return _Outcome("referral", [_rrset(cut, ns)], glue=glue)


#: Zones a server makes when asked (a lab of many generated domains): the zone holding a
#: name, or None. The same zone object for the same zone, while it is in use.
ZoneSource = Callable[[dns.name.Name], "dns.zone.Zone | None"]
#: Generated zones a server keeps read (its recent ones).
_GENERATED_KEPT = 256


class AuthoritativeServer(_DnsService):
    """An authoritative-only server for a set of zones (no recursion, RA clear); with
    ``generated``, also for the zones that source makes on demand."""

    def __init__(
        self,
        zones: Iterable[dns.zone.Zone | str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fault: Fault | None = None,
        idle_timeout: float = 10.0,
        generated: ZoneSource | None = None,
    ) -> None:
        super().__init__(host=host, port=port, fault=fault, idle_timeout=idle_timeout)
        data = [_ZoneData(zone) for zone in zones]
        self.zones: dict[dns.name.Name, _ZoneData] = {z.origin: z for z in data}
        self.generated = generated
        self._read: OrderedDict[int, tuple[dns.zone.Zone, _ZoneData]] = OrderedDict()

    def _generated_for(self, name: dns.name.Name) -> _ZoneData | None:
        zone = self.generated(name) if self.generated is not None else None
        if zone is None:
            return None
        kept = self._read.get(id(zone))
        if kept is not None and kept[0] is zone:
            self._read.move_to_end(id(zone))
            return kept[1]
        data = _ZoneData(zone)
        self._read[id(zone)] = (zone, data)
        if len(self._read) > _GENERATED_KEPT:
            self._read.popitem(last=False)
        return data

    @property
    def origins(self) -> list[str]:
        return sorted(origin.to_text() for origin in self.zones)

    async def answer_here(self, name: dns.name.Name, qtype: dns.rdatatype.RdataType,
                          dnssec: bool = False) -> Resolution | None:
        """What this server answers an iterative query for ``name``/``qtype``, as a
        forwarding resolver takes it (None: no usable answer), without the round trip:
        for a lab resolver that has the server at hand. The server's fault still applies
        (its delay, and a failure for the questions it hits)."""
        if self.fault.delay:
            await asyncio.sleep(self.fault.delay)
        if self.fault.applies_to(name, qtype):
            return None
        query = dns.message.make_query(name, qtype, use_edns=0, payload=OUR_PAYLOAD, flags=0,
                                       want_dnssec=dnssec)
        reply = await self._checked_answer(query)
        if reply.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not (
                reply.flags & dns.flags.AA):
            return None
        kept = ({dns.rdatatype.SOA, dns.rdatatype.NSEC, dns.rdatatype.NSEC3,
                 dns.rdatatype.RRSIG} if dnssec else {dns.rdatatype.SOA})
        return Resolution(reply.rcode(), list(reply.answer),
                          [r for r in reply.authority if r.rdtype in kept])

    def _zone_for(self, name: dns.name.Name,
                  rdtype: dns.rdatatype.RdataType | None = None) -> _ZoneData | None:
        """The nearest enclosing zone (RFC 1034 section 4.3.2 step 2); for DS at a zone's
        apex, the parent's, which holds it (RFC 4035 section 3.1.4.1)."""
        best: _ZoneData | None = None
        for origin, zone in self.zones.items():
            if rdtype == dns.rdatatype.DS and origin == name and origin != dns.name.root:
                continue
            if name.is_subdomain(origin) and (best is None or len(origin) > len(best.origin)):
                best = zone
        made = self._generated_for(name)
        if made is not None and name.is_subdomain(made.origin) and not (
                rdtype == dns.rdatatype.DS and made.origin == name) and (
                best is None or len(made.origin) > len(best.origin)):
            best = made
        if best is None and rdtype == dns.rdatatype.DS:
            return self._zone_for(name)
        return best

    async def _answer(
        self, query: dns.message.Message, question: dns.rrset.RRset
    ) -> dns.message.Message:
        response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
        zone = self._zone_for(question.name, question.rdtype)
        if zone is None or question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)  # not authoritative, and we do not recurse
            return response
        response.flags |= dns.flags.AA
        dnssec = bool(query.ednsflags & dns.flags.DO)  # RFC 4035 §3.1: signatures on request
        if dnssec:
            response.want_dnssec(True)
        name, seen = question.name, {question.name}
        for hop in range(MAX_CNAME_HOPS + 1):
            outcome = zone.lookup(name, question.rdtype)
            if outcome.kind == "referral":
                if hop == 0:
                    response.flags &= ~dns.flags.AA
                    response.authority.extend(outcome.records)
                    if dnssec:
                        response.authority.extend(zone.delegation_proof(outcome.records[0].name))
                    response.additional.extend(outcome.glue)
                break  # a chased CNAME into a delegation: the client follows it
            if outcome.kind == "answer":
                response.answer.extend(outcome.records)
                if dnssec:
                    response.answer.extend(zone.signatures(outcome.records))
            elif outcome.kind == "cname":
                response.answer.extend(outcome.records)
                if dnssec:
                    response.answer.extend(zone.signatures(outcome.records))
                assert outcome.target is not None
                name = outcome.target
                next_zone = self._zone_for(name)
                if next_zone is None or name in seen:
                    break  # the rest of the chain is for the client (or it loops)
                zone = next_zone
                seen.add(name)
                continue
            else:
                # RFC 6604 section 3: the rcode is about the last name in the chain.
                if outcome.kind == "nxdomain":
                    response.set_rcode(dns.rcode.NXDOMAIN)
                response.authority.extend(outcome.records)
                if dnssec:
                    response.authority.extend(zone.signatures(outcome.records))
                    response.authority.extend(zone.denial(name))
            break
        return response


# -- forwarding resolver ------------------------------------------------------------------------

_ROOT_SOA = dns.rrset.from_text(
    ".",
    86400,
    "IN",
    "SOA",
    "a.root-servers.lab. nstld.root-servers.lab. 2026112900 1800 900 604800 86400",
)
_ROOT_NS = dns.rrset.from_text(".", 518400, "IN", "NS", "a.root-servers.lab.")


@dataclass
class Resolution:
    rcode: dns.rcode.Rcode
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)


def _chain_end(name: dns.name.Name, answer: list[dns.rrset.RRset]) -> dns.name.Name:
    by_owner = {rrset.name: rrset for rrset in answer if rrset.rdtype == dns.rdatatype.CNAME}
    seen = {name}
    while name in by_owner:
        name = by_owner[name][0].target
        if name in seen:
            break
        seen.add(name)
    return name


class ForwardingResolver(_DnsService):
    """The lab's stand-in for a system recursive resolver.

    Forwards each query to the authoritative endpoints of the nearest forwarded zone, in the
    listed order, and completes CNAME chains across zones, as a recursive resolver does. When
    no endpoint gives a usable (authoritative NOERROR/NXDOMAIN) answer it says SERVFAIL, which
    is how "every name server fails" reaches a client.
    """

    def __init__(
        self,
        forwarders: Mapping[str, Sequence[tuple[str, int]]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        fault: Fault | None = None,
        timeout: float = 1.0,
        idle_timeout: float = 10.0,
    ) -> None:
        super().__init__(host=host, port=port, fault=fault, idle_timeout=idle_timeout)
        self.timeout = timeout
        self.forwarders: dict[dns.name.Name, list[tuple[str, int]]] = {}
        for zone, endpoints in forwarders.items():
            for address, _ in endpoints:
                # The lab must never send a packet off the machine, whatever the zones say.
                if not ipaddress.ip_address(address).is_loopback:
                    raise ValueError(f"forwarder {address} for {zone} is not a loopback address")
            self.forwarders[normalise_name(zone)] = list(endpoints)

    async def _answer(
        self, query: dns.message.Message, question: dns.rrset.RRset
    ) -> dns.message.Message:
        response = dns.message.make_response(
            query, recursion_available=True, our_payload=OUR_PAYLOAD
        )
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        dnssec = bool(query.ednsflags & dns.flags.DO)
        if dnssec:
            response.want_dnssec(True)
        result = await self._resolve(question.name, question.rdtype, dnssec)
        response.set_rcode(result.rcode)
        response.answer.extend(result.answer)
        response.authority.extend(result.authority)
        return response

    async def _resolve(self, name: dns.name.Name, qtype: dns.rdatatype.RdataType,
                       dnssec: bool = False) -> Resolution:
        answer: list[dns.rrset.RRset] = []
        seen = {name}
        for _ in range(MAX_CNAME_HOPS + 1):
            step = await self._resolve_one(name, qtype, dnssec)
            if step is None:
                return Resolution(dns.rcode.SERVFAIL)
            answer.extend(step.answer)
            if step.rcode != dns.rcode.NOERROR or qtype in (dns.rdatatype.CNAME, dns.rdatatype.ANY):
                return Resolution(step.rcode, answer, step.authority)
            target = _chain_end(name, step.answer)
            done = any(r.name == target and r.rdtype == qtype for r in step.answer)
            if target == name or done or target in seen:
                return Resolution(step.rcode, answer, step.authority)
            name = target
            seen.add(name)
        return Resolution(dns.rcode.SERVFAIL)  # chain too long

    async def _resolve_one(
        self, name: dns.name.Name, qtype: dns.rdatatype.RdataType, dnssec: bool = False
    ) -> Resolution | None:
        if name == dns.name.root and dns.name.root not in self.forwarders:
            if qtype == dns.rdatatype.SOA:
                return Resolution(dns.rcode.NOERROR, [_ROOT_SOA])
            if qtype == dns.rdatatype.NS:
                return Resolution(dns.rcode.NOERROR, [_ROOT_NS])
            return Resolution(dns.rcode.NOERROR, authority=[_negative_soa(_ROOT_SOA)])
        zone = self._forward_zone(name, qtype)
        if zone is None:
            return Resolution(dns.rcode.NXDOMAIN, authority=[_negative_soa(_ROOT_SOA)])
        for address, port in self.forwarders[zone]:
            reply = await self._ask(name, qtype, address, port, dnssec)
            if reply is not None:
                return reply
        return None

    def _forward_zone(self, name: dns.name.Name,
                      qtype: dns.rdatatype.RdataType | None = None) -> dns.name.Name | None:
        """The zone whose servers answer for ``name``; a DS at a zone's apex is asked of
        the parent's servers, which hold it (RFC 4035 section 3.1.4.1)."""
        matches = [zone for zone in self.forwarders if name.is_subdomain(zone)
                   and not (qtype == dns.rdatatype.DS and zone == name
                            and zone != dns.name.root)]
        return max(matches, key=len, default=None)

    async def _ask(
        self, name: dns.name.Name, qtype: dns.rdatatype.RdataType, address: str, port: int,
        dnssec: bool = False,
    ) -> Resolution | None:
        """One authoritative endpoint: UDP, then TCP if truncated. None if not usable."""
        # Iterative query: RD clear (RFC 1034 section 4.3.1).
        query = dns.message.make_query(name, qtype, use_edns=0, payload=OUR_PAYLOAD, flags=0,
                                       want_dnssec=dnssec)
        try:
            reply = await dns.asyncquery.udp(query, address, timeout=self.timeout, port=port)
            if reply.flags & dns.flags.TC:
                reply = await dns.asyncquery.tcp(query, address, timeout=self.timeout, port=port)
        except Exception as exc:
            log.debug("forward %s/%s to %s:%d failed: %r", name, qtype, address, port, exc)
            return None
        rcode = reply.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not reply.flags & dns.flags.AA:
            return None
        # The negative answer's SOA, and with DNSSEC its signatures and NSEC proofs.
        kept = ({dns.rdatatype.SOA, dns.rdatatype.NSEC, dns.rdatatype.NSEC3,
                 dns.rdatatype.RRSIG} if dnssec else {dns.rdatatype.SOA})
        negative = [r for r in reply.authority if r.rdtype in kept]
        return Resolution(rcode, list(reply.answer), negative)
