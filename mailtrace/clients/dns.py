"""The DNS client: the only code in mailtrace that sends DNS packets.

Every query returns a :class:`DnsObservation`, never raises for a network or protocol
problem: the observation keeps the server (logical and really connected), transport,
rcode, flags, answers with TTLs, the attempts made and the elapsed time, so a probe can
turn it into evidence. Outcomes are kept apart on purpose (a timeout is not SERVFAIL,
SERVFAIL is not NXDOMAIN, NXDOMAIN is not NODATA) — see RFC 2308 §1 for NXDOMAIN vs
NODATA and RFC 8499 for the vocabulary.

Policy (after dnspython's resolver): a per-attempt timeout inside the caller's deadline,
UDP retried on timeout while the deadline allows, TCP on truncation (RFC 7766 §5),
identical queries in flight shared and their answers kept for the run. Many runs in one
process (a fleet) may share a question table and a budget of queries in flight
(:mod:`mailtrace.clients.dns_pool`).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from mailtrace.clients import dns_udp, dns_wire
from mailtrace.clients.dns_pool import QueryBudget
from mailtrace.clients.dns_wire import Question, Reply
from mailtrace.clients.dns_wire import Record as Record  # where every caller finds it
from mailtrace.clients.trust_anchor import TrustAnchor
from mailtrace.core.evidence import DnsAnswer
from mailtrace.core.network import Endpoint, Redirects

if TYPE_CHECKING:  # dnspython is imported by the functions that send or read a message:
    # the reports and the probe catalog use this module's types without loading it
    import dns.message
    import dns.rrset

Role = Literal["resolver", "authoritative"]
_NO_ROUTE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
T = TypeVar("T")


class Outcome(StrEnum):
    ANSWER = "ANSWER"
    NODATA = "NODATA"  # NOERROR, the name exists, no record of this type
    NXDOMAIN = "NXDOMAIN"
    REFERRAL = "REFERRAL"  # NOERROR, no answer, NS in authority: not authoritative here
    SERVFAIL = "SERVFAIL"
    REFUSED = "REFUSED"
    FORMERR = "FORMERR"
    NOTIMP = "NOTIMP"
    OTHER_RCODE = "OTHER_RCODE"
    TIMEOUT = "TIMEOUT"
    MALFORMED = "MALFORMED"  # the reply did not parse as DNS
    MISMATCH = "MISMATCH"  # a DNS reply, but not to the question asked
    NETWORK_ERROR = "NETWORK_ERROR"  # e.g. connection refused
    NO_ROUTE = "NO_ROUTE"  # this machine cannot reach the address (no IPv6 route, say)
    OUT_OF_TIME = "OUT_OF_TIME"  # the run's budget ended before the server had a fair chance

    @property
    def answered(self) -> bool:
        """The server gave a usable DNS answer (positive or negative)."""
        return self in (Outcome.ANSWER, Outcome.NODATA, Outcome.NXDOMAIN)


@dataclass(frozen=True)
class Server:
    role: Role
    address: str
    port: int = 53
    name: str | None = None

    @property
    def label(self) -> str:
        addr = f"[{self.address}]" if ":" in self.address else self.address
        where = f"{addr}:{self.port}"
        return f"{self.name.rstrip('.')} ({where})" if self.name else f"{self.role} {where}"

    @property
    def host(self) -> str:
        """The server's name without the final dot, or its address."""
        return self.name.rstrip(".") if self.name else self.address


@dataclass(frozen=True)
class Attempt:
    transport: str
    result: str
    elapsed_ms: float


@dataclass(frozen=True)
class DnsObservation:
    server: Server
    via: Endpoint
    qname: str
    qtype: str
    outcome: Outcome
    transport: str = "udp"
    rcode: str | None = None
    flags: tuple[str, ...] = ()
    answer: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    elapsed_ms: float = 0.0
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None

    def records(self, rdtype: str) -> list[Record]:
        """Answer records of ``rdtype`` owned by the question name or, through its CNAME
        chain, by the name it aliases (RFC 1034 §3.6.2). Records about other names that
        a server slipped into the answer are ignored."""
        owners = {self.qname}
        current = self.qname
        for _ in range(16):
            alias = next((r for r in self.answer if r.type == "CNAME" and r.name == current),
                         None)
            if alias is None or rdtype == "CNAME":
                break
            current = normalize(alias.data)
            owners.add(current)
        return [r for r in self.answer if r.type == rdtype and r.name in owners]

    def authority_records(self, rdtype: str) -> list[Record]:
        return [r for r in self.authority if r.type == rdtype]

    @property
    def authoritative(self) -> bool:
        return "AA" in self.flags

    def evidence(self) -> DnsAnswer:
        moved = self.via != Endpoint(self.server.address, self.server.port)
        attempts = len(self.attempts) > 1 or self.outcome is Outcome.TIMEOUT
        return DnsAnswer(
            server=self.server.label, role=self.server.role,
            query=f"{self.qname} {self.qtype}", outcome=self.outcome.value, rcode=self.rcode,
            flags=self.flags, transport=self.transport,
            answer=tuple(r.as_json() for r in self.answer), elapsed_ms=self.elapsed_ms,
            connected_to=str(self.via) if moved else None,
            authority=tuple(r.as_json() for r in self.authority) if not self.answer else (),
            attempts=tuple({"transport": a.transport, "result": a.result,
                            "elapsed_ms": round(a.elapsed_ms, 1)} for a in self.attempts)
            if attempts else (),
            error=self.error)


def _records(section: Iterable[dns.rrset.RRset]) -> tuple[Record, ...]:
    import dns.rdatatype

    out: list[Record] = []
    for rrset in section:
        for rdata in rrset:
            out.append(
                Record(
                    name=rrset.name.to_text().lower(),
                    type=dns.rdatatype.to_text(rrset.rdtype),
                    ttl=rrset.ttl,
                    data=rdata.to_text(),
                )
            )
    return tuple(out)


def classify(response: dns.message.Message) -> Outcome:
    """Map a parsed reply to an outcome. Pure: tests call it on hand-built messages."""
    import dns.flags
    import dns.rcode
    import dns.rdatatype

    rcode = response.rcode()
    if rcode == dns.rcode.NOERROR:
        if response.answer:
            return Outcome.ANSWER
        has_soa = any(r.rdtype == dns.rdatatype.SOA for r in response.authority)
        has_ns = any(r.rdtype == dns.rdatatype.NS for r in response.authority)
        aa = bool(response.flags & dns.flags.AA)
        if has_ns and not has_soa and not aa:
            return Outcome.REFERRAL
        return Outcome.NODATA
    return {
        dns.rcode.NXDOMAIN: Outcome.NXDOMAIN,
        dns.rcode.SERVFAIL: Outcome.SERVFAIL,
        dns.rcode.REFUSED: Outcome.REFUSED,
        dns.rcode.FORMERR: Outcome.FORMERR,
        dns.rcode.NOTIMP: Outcome.NOTIMP,
    }.get(rcode, Outcome.OTHER_RCODE)


def _flags(response: dns.message.Message) -> tuple[str, ...]:
    import dns.flags

    flags = [f for f in ("AA", "TC", "RD", "RA", "AD", "CD") if response.flags & dns.flags.Flag[f]]
    if response.ednsflags & dns.flags.DO:
        flags.append("DO")
    return tuple(flags)


def normalize(name: str) -> str:
    return name.lower().rstrip(".") + "."


_TC = 0x0200  # RFC 1035 §4.1.1
#: The header bits an observation names (RFC 1035 §4.1.1, RFC 4035 §3.2).
_FLAG_BITS = (("AA", 0x0400), ("TC", 0x0200), ("RD", 0x0100), ("RA", 0x0080),
              ("AD", 0x0020), ("CD", 0x0010))


def reply_of(message: dns.message.Message) -> Reply:
    """A reply dnspython read, as the client keeps it."""
    return Reply(message.id, int(message.flags), int(message.ednsflags),
                 tuple(Question(r.name.to_text().lower(), r.rdtype, r.rdclass)
                       for r in message.question),
                 _records(message.answer), _records(message.authority),
                 _records(message.additional))


def classify_reply(reply: Reply) -> Outcome:
    """Map a reply to an outcome (as :func:`classify` does a dnspython message)."""
    rcode = reply.rcode
    if rcode == 0:
        if reply.answer:
            return Outcome.ANSWER
        has_soa = any(r.type == "SOA" for r in reply.authority)
        has_ns = any(r.type == "NS" for r in reply.authority)
        if has_ns and not has_soa and not reply.flags & 0x0400:
            return Outcome.REFERRAL
        return Outcome.NODATA
    return {3: Outcome.NXDOMAIN, 2: Outcome.SERVFAIL, 5: Outcome.REFUSED, 1: Outcome.FORMERR,
            4: Outcome.NOTIMP}.get(rcode, Outcome.OTHER_RCODE)


def _reply_flags(reply: Reply) -> tuple[str, ...]:
    flags = [name for name, bit in _FLAG_BITS if reply.flags & bit]
    if reply.ednsflags & 0x8000:
        flags.append("DO")  # RFC 3225
    return tuple(flags)


@lru_cache(maxsize=64)
def _rcode_text(rcode: int) -> str:
    import dns.rcode

    return dns.rcode.to_text(dns.rcode.Rcode.make(rcode))


@dataclass
class _Query:
    """One query's wire form (written by :mod:`mailtrace.clients.dns_wire`, or by
    dnspython for what that module does not write) and how its reply is read."""

    qname: str
    qtype: str
    ident: int
    wire: bytes
    _message: dns.message.Message | None = None

    @classmethod
    def make(cls, qname: str, qtype: str, role: Role, dnssec: bool, cd: bool) -> _Query:
        recursive = role != "authoritative"
        # RD only towards a resolver; AD asks it whether the answer validated (RFC 6840
        # §5.7); CD has it answer data it finds bogus, for our own validation.
        fast = dns_wire.query_wire(qname, qtype, recursion=recursive, ad=recursive, cd=cd,
                                   dnssec=dnssec)
        if fast is not None:
            return cls(qname, qtype, fast[0], fast[1])
        import dns.flags
        import dns.message

        message = dns.message.make_query(qname, qtype, use_edns=0, payload=1232,
                                         want_dnssec=dnssec)
        if not recursive:
            message.flags &= ~dns.flags.RD
        else:
            message.flags |= dns.flags.AD
        if cd:
            message.flags |= dns.flags.CD
        return cls(qname, qtype, message.id, message.to_wire(), message)

    @property
    def message(self) -> dns.message.Message:
        """The query as a dnspython message (for TCP, and a reply dnspython reads)."""
        if self._message is None:
            import dns.message

            self._message = dns.message.from_wire(self.wire)
        return self._message

    def read(self, wire: bytes) -> tuple[Reply, bool]:
        """The reply, and whether it answers this query (dnspython's
        ``Message.is_response``): read by :func:`dns_wire.read_reply` when it is that
        reader's case, else by dnspython (which raises for what is not DNS)."""
        reply = dns_wire.read_reply(wire)
        if reply is not None:
            return reply, dns_wire.answers(reply, self.ident, self.qname, self._code())
        import dns.message

        message = dns.message.from_wire(wire)
        return reply_of(message), self.message.is_response(message)

    def _code(self) -> int:
        code = dns_wire.TYPE_CODES.get(self.qtype)
        if code is None:
            import dns.rdatatype

            code = int(dns.rdatatype.from_text(self.qtype))
        return code


@dataclass
class DnsClient:
    """Queries resolvers and authoritative servers; shares identical queries within a run."""

    resolvers: list[Server]
    redirects: Redirects = field(default_factory=Redirects)
    attempt_timeout: float = 1.5
    #: Where DNSSEC validation starts (mailtrace.clients.dnssec): the root's keys.
    trust_anchor: TrustAnchor = field(default_factory=TrustAnchor)
    #: The questions of the run, in flight or answered (a fleet's clients share one
    #: :class:`~mailtrace.clients.dns_pool.SharedAnswers`).
    _tasks: MutableMapping[Any, asyncio.Future[Any]] = field(default_factory=dict)
    queries_sent: int = 0
    #: Caps on the exchanges in flight, shared with the process's other clients (a fleet).
    budget: QueryBudget | None = None

    async def _shared(
        self, key: tuple[Any, ...], make: Callable[[], Awaitable[T]], deadline: float
    ) -> T:
        task = self._tasks.get(key)
        mine = task is None
        if task is None:
            task = asyncio.ensure_future(make())
            # Its callers may all be gone (a gated probe cancelled): the outcome is still
            # retrieved, so nothing is logged as an exception no one saw.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._tasks[key] = task
        if task.done():
            done: T = task.result()  # answered already (a shared question): no wait
            return done
        if mine:
            # The query ends at this caller's own deadline, with its attempts as evidence:
            # never cut off here (on a busy machine it may end a moment after it).
            result: T = await asyncio.shield(task)
            return result
        # A moment of grace: only a caller that joined with a shorter deadline is cut
        # off here.
        remaining = deadline - time.monotonic() + 0.05
        return await asyncio.wait_for(asyncio.shield(task), max(remaining, 0.001))

    async def query(
        self, server: Server, qname: str, qtype: str, deadline: float, *,
        dnssec: bool = False, cd: bool = False,
    ) -> DnsObservation:
        """One question to one server, within ``deadline`` (a ``time.monotonic()`` value).

        ``dnssec`` sets the DO bit, asking for the RRSIGs (RFC 4035 §3.2.1); ``cd`` sets
        Checking Disabled, so a validating resolver answers even data it finds bogus
        (RFC 4035 §3.2.2): the validation is then mailtrace's own."""
        qname, qtype = normalize(qname), qtype.upper()
        key = ("q", server, qname, qtype, dnssec, cd)
        started = time.monotonic()
        try:
            return await self._shared(
                key, lambda: self._budgeted(server, qname, qtype, deadline, dnssec, cd),
                deadline,
            )
        except TimeoutError:
            # A caller with a shorter deadline than the query it joined; as for a query
            # of its own, less than one fair attempt's wait says nothing about the server.
            waited = time.monotonic() - started
            return DnsObservation(
                server,
                self.redirects.resolve(server.name, server.address, server.port),
                qname,
                qtype,
                Outcome.TIMEOUT if waited >= self.attempt_timeout else Outcome.OUT_OF_TIME,
                elapsed_ms=waited * 1000,
                error="deadline reached while waiting for a shared query",
            )

    async def _budgeted(
        self, server: Server, qname: str, qtype: str, deadline: float,
        dnssec: bool, cd: bool,
    ) -> DnsObservation:
        """The exchange, once the budget has a place for it: the time spent waiting
        for that place is the process's, not the server's, so the exchange's own clock
        (its attempts, a timeout or running out of time) starts after it."""
        if self.budget is None:
            return await self._exchange(server, qname, qtype, deadline, dnssec, cd)
        via = self.redirects.resolve(server.name, server.address, server.port)
        async with self.budget.slot(via, resolver=server.role == "resolver"):
            return await self._exchange(server, qname, qtype, deadline, dnssec, cd)

    async def _exchange(
        self, server: Server, qname: str, qtype: str, deadline: float,
        dnssec: bool = False, cd: bool = False,
    ) -> DnsObservation:
        import dns.query

        via = self.redirects.resolve(server.name, server.address, server.port)
        query = _Query.make(qname, qtype, server.role, dnssec, cd)
        attempts: list[Attempt] = []
        transport = "udp"
        started = time.monotonic()

        def done(outcome: Outcome, response: Reply | None = None,
                 error: str | None = None) -> DnsObservation:
            return DnsObservation(
                server=server,
                via=via,
                qname=qname,
                qtype=qtype,
                outcome=outcome,
                transport=transport,
                rcode=_rcode_text(response.rcode) if response is not None else None,
                flags=_reply_flags(response) if response is not None else (),
                answer=response.answer if response is not None else (),
                authority=response.authority if response is not None else (),
                additional=response.additional if response is not None else (),
                elapsed_ms=(time.monotonic() - started) * 1000,
                attempts=tuple(attempts),
                error=error,
            )

        try:
            response = await self._udp(query, via, deadline, attempts)
            if response is not None and response.flags & _TC:
                transport = "tcp"  # RFC 7766 §5: retry the truncated query over TCP
                response = await self._tcp(query, via, deadline, attempts)
        except dns.query.BadResponse:
            return done(Outcome.MISMATCH, error="the reply does not answer the question asked")
        except (OSError, EOFError) as exc:
            # No route from here is the observer's limit, not the server's fault.
            no_route = isinstance(exc, OSError) and exc.errno in _NO_ROUTE
            return done(Outcome.NO_ROUTE if no_route else Outcome.NETWORK_ERROR,
                        error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # any parse failure of hostile bytes
            return done(Outcome.MALFORMED, error=f"{type(exc).__name__}: {exc}")
        if response is not None:
            return done(classify_reply(response), response)
        waited = time.monotonic() - started
        if waited < self.attempt_timeout:
            # The budget ran out before the server had one fair chance: that says
            # nothing about the server (DESIGN: a timeout of the observer is not a fault).
            return done(Outcome.OUT_OF_TIME,
                        error=f"the run's budget left only {waited:.2f} s for this query")
        return done(Outcome.TIMEOUT,
                    error=f"no reply within {waited:.1f} s ({len(attempts)} sends)")

    async def _udp(self, query: _Query, via: Endpoint, deadline: float,
                   attempts: list[Attempt]) -> Reply | None:
        """Send over UDP and resend on the same socket while the deadline allows.

        One *connected* socket for every send: an ICMP port-unreachable ends the exchange
        at once (ConnectionRefusedError) instead of a silent timeout, and only the server
        can answer on it; a late reply to an earlier send is still accepted (same id, same
        question). The wait between sends doubles, from ``attempt_timeout``.
        """
        import dns.asyncbackend
        import dns.exception
        import dns.inet

        family = socket.AF_INET6 if ":" in via.address else socket.AF_INET
        # Connected over IPv6, asyncio knows the peer as (address, port, flowinfo, scope)
        # and refuses to send to the two-element form.
        destination = dns.inet.low_level_address_tuple((via.address, via.port), family)
        direct = dns_udp.open_udp(family, destination)
        if direct is not None:
            with direct:
                return await self._udp_resends(direct.send, direct.receive, query, deadline,
                                               attempts)
        backend = dns.asyncbackend.get_default_backend()
        sock = await backend.make_socket(  # type: ignore[no-untyped-call]
            family, socket.SOCK_DGRAM, 0, None, (via.address, via.port)
        )
        async def receive(timeout: float) -> bytes | None:
            try:
                wire, _ = await sock.recvfrom(65535, timeout)
            except dns.exception.Timeout:
                return None
            return bytes(wire)

        async with sock:
            return await self._udp_resends(
                lambda wire: sock.sendto(wire, destination, None), receive, query, deadline,
                attempts)

    async def _udp_resends(self, send: Callable[[bytes], Awaitable[object]],
                           receive: Callable[[float], Awaitable[bytes | None]], query: _Query,
                           deadline: float, attempts: list[Attempt]) -> Reply | None:
        """:meth:`_udp`'s sends and waits, on either kind of socket: resend while the
        deadline allows, the wait doubling; a late reply to an earlier send counts."""
        import dns.query

        wait = self.attempt_timeout
        while (now := time.monotonic()) < deadline:
            resend_at = min(now + wait, deadline)
            self.queries_sent += 1
            await send(query.wire)
            wire = await receive(resend_at - now)
            if wire is None:
                attempts.append(Attempt("udp", "timeout", (resend_at - now) * 1000))
                wait *= 2
                continue
            response, ours = query.read(wire)
            result = "truncated" if response.flags & _TC else "reply"
            attempts.append(Attempt("udp", result, (time.monotonic() - now) * 1000))
            if not ours:
                raise dns.query.BadResponse
            return response
        return None

    async def _tcp(self, query: _Query, via: Endpoint, deadline: float,
                   attempts: list[Attempt]) -> Reply | None:
        import dns.asyncquery
        import dns.exception

        started = time.monotonic()
        self.queries_sent += 1
        try:
            response = await dns.asyncquery.tcp(query.message, via.address,
                                                timeout=max(deadline - started, 0.001),
                                                port=via.port)
        except dns.exception.Timeout:
            attempts.append(Attempt("tcp", "timeout", (time.monotonic() - started) * 1000))
            return None
        attempts.append(Attempt("tcp", "reply", (time.monotonic() - started) * 1000))
        return reply_of(response)

    async def ask_resolvers(self, qname: str, qtype: str, deadline: float, *,
                            dnssec: bool = False, cd: bool = False) -> list[DnsObservation]:
        """The same question to every resolver of the panel, concurrently."""
        return list(
            await asyncio.gather(*(self.query(s, qname, qtype, deadline, dnssec=dnssec, cd=cd)
                                   for s in self.resolvers))
        )

    async def lookup(self, qname: str, qtype: str, deadline: float, *,
                     dnssec: bool = False, cd: bool = False) -> DnsObservation:
        """A recursive lookup: the first resolver to give a usable answer wins, without
        waiting for a dead one; when none does, the first resolver's failure is kept."""
        if len(self.resolvers) == 1:
            return await self.query(self.resolvers[0], qname, qtype, deadline, dnssec=dnssec,
                                    cd=cd)
        pending = [asyncio.ensure_future(self.query(s, qname, qtype, deadline,
                                                    dnssec=dnssec, cd=cd))
                   for s in self.resolvers]
        try:
            for next_done in asyncio.as_completed(pending):
                obs = await next_done
                if obs.outcome.answered:
                    return obs
            return pending[0].result()
        finally:
            for task in pending:
                task.cancel()  # the shared query itself runs on, shielded, for others

    async def addresses(self, host: str, deadline: float) -> AddressLookup:
        a, aaaa = await asyncio.gather(
            self.lookup(host, "A", deadline), self.lookup(host, "AAAA", deadline)
        )
        return AddressLookup(normalize(host), a, aaaa)

    async def zone_servers(self, domain: str, deadline: float) -> Delegation:
        """The zone's servers as its own NS set names them (no parent referral).

        The fast path for probes that only need somewhere to send questions: it is two
        round trips deep, where the full :meth:`delegation` also waits for the parent.
        """
        return await self._shared(
            ("child", normalize(domain)), lambda: self._child(domain, deadline), deadline
        )

    async def delegation(self, domain: str, deadline: float) -> Delegation:
        """The zone holding ``domain``: its NS set as the zone and its parent declare it.

        The parent's referral (and its glue) still names the servers when they all fail.
        """
        return await self._shared(
            ("delegation", normalize(domain)), lambda: self._delegation(domain, deadline),
            deadline,
        )

    async def _child(self, domain: str, deadline: float) -> Delegation:
        domain = normalize(domain)
        soa, ns = await asyncio.gather(
            self.lookup(domain, "SOA", deadline), self.lookup(domain, "NS", deadline)
        )
        apex = domain
        aliased = [r.name for r in soa.records("SOA") if r.name != domain]
        if aliased:
            # The mail domain is an alias (RFC 5321 §5.1 follows it): judge the zone of
            # the name it points to, which holds the records senders will use.
            apex = aliased[0]
            soa, ns = await asyncio.gather(
                self.lookup(apex, "SOA", deadline), self.lookup(apex, "NS", deadline)
            )
        # NODATA for SOA: the name exists inside a zone whose apex the authority SOA names
        # (RFC 2308 §2.2). Never climb on NXDOMAIN: the name does not exist at all.
        elif soa.outcome is Outcome.NODATA:
            owners = [r.name for r in soa.authority_records("SOA")]
            if owners and owners[0] != domain:
                apex = owners[0]
                soa, ns = await asyncio.gather(
                    self.lookup(apex, "SOA", deadline), self.lookup(apex, "NS", deadline)
                )
        names = sorted({normalize(r.data) for r in ns.records("NS") if r.name == apex})
        lookups = list(await asyncio.gather(*(self.addresses(n, deadline) for n in names)))
        servers = [
            Server("authoritative", addr, 53, lk.host) for lk in lookups for addr in lk.addresses
        ]
        return Delegation(apex, soa, ns, None, names, [], lookups, servers)

    async def _delegation(self, domain: str, deadline: float) -> Delegation:
        domain = normalize(domain)
        child, parent = await asyncio.gather(
            self.zone_servers(domain, deadline), self._parent_referral(domain, deadline)
        )
        if child.apex != domain:
            parent = await self._parent_referral(child.apex, deadline)
        parent_names: list[str] = []
        glue: dict[str, list[str]] = {}
        if parent is not None:
            # A referral carries the NS set in authority; a server that serves parent and
            # child alike answers with authority instead, in the answer section.
            section = parent.answer if parent.outcome is Outcome.ANSWER else parent.authority
            parent_names = sorted(
                {normalize(r.data) for r in section if r.type == "NS" and r.name == child.apex}
            )
            for r in parent.additional:
                if r.type in ("A", "AAAA"):
                    glue.setdefault(r.name, []).append(r.data)
        extra = [n for n in parent_names if n not in child.child_names]
        lookups = child.ns_addresses + list(
            await asyncio.gather(*(self.addresses(n, deadline) for n in extra))
        )
        servers = []
        for lk in lookups:
            addresses = lk.addresses or glue.get(lk.host, [])
            servers += [Server("authoritative", addr, 53, lk.host) for addr in addresses]
        return Delegation(child.apex, child.soa, child.ns, parent, child.child_names,
                          parent_names, lookups, servers)

    async def _parent_referral(self, name: str, deadline: float) -> DnsObservation | None:
        """Ask a server of the parent zone for the delegation of ``name`` (RFC 1034 §4.2.2).

        Optional evidence: it gets two attempts' worth of the deadline, so an unreachable
        parent never eats the budget of the probe that wanted it.
        """
        deadline = min(deadline, time.monotonic() + 2 * self.attempt_timeout)
        parent = name.split(".", 1)[1] if name.count(".") > 1 else "."
        while True:
            ns = await self.lookup(parent, "NS", deadline)
            if ns.records("NS") or parent == ".":
                break
            parent = parent.split(".", 1)[1] if parent.count(".") > 1 else "."
        names = sorted({normalize(r.data) for r in ns.records("NS")})
        for lk in await asyncio.gather(*(self.addresses(n, deadline) for n in names[:4])):
            for addr in lk.addresses:
                obs = await self.query(Server("authoritative", addr, 53, lk.host), name, "NS",
                                       deadline)
                if obs.outcome in (Outcome.REFERRAL, Outcome.ANSWER, Outcome.NXDOMAIN):
                    return obs
        return None


@dataclass(frozen=True)
class AddressLookup:
    host: str
    a: DnsObservation
    aaaa: DnsObservation

    @property
    def addresses(self) -> list[str]:
        return [r.data for r in (*self.a.records("A"), *self.aaaa.records("AAAA"))]

    @property
    def observations(self) -> list[DnsObservation]:
        return [self.a, self.aaaa]


@dataclass(frozen=True)
class Delegation:
    apex: str
    soa: DnsObservation  # through the resolvers
    ns: DnsObservation  # through the resolvers (the child's NS set)
    parent: DnsObservation | None  # the parent zone's referral, when one answered
    child_names: list[str]
    parent_names: list[str]
    ns_addresses: list[AddressLookup]
    servers: list[Server]
