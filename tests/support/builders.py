"""Hand-built observations for the pure ``evaluate`` functions: no sockets."""

from __future__ import annotations

from mailtrace.clients.dns import (
    AddressLookup,
    Delegation,
    DnsObservation,
    Outcome,
    Record,
    Server,
)
from mailtrace.clients.smtp import CertInfo, Dialogue, Step, TlsInfo
from mailtrace.clients.smtp import Outcome as SmtpOutcome
from mailtrace.clients.smtp_reply import parse as smtp_parse
from mailtrace.core.network import Endpoint

RESOLVER = Server("resolver", "127.0.0.1", 5353)


def ns(name: str, address: str) -> Server:
    return Server("authoritative", address, 53, name)


def obs(
    server: Server,
    qname: str,
    qtype: str,
    outcome: Outcome = Outcome.ANSWER,
    answer: list[tuple[str, str, int, str]] | None = None,
    authority: list[tuple[str, str, int, str]] | None = None,
    flags: tuple[str, ...] = (),
) -> DnsObservation:
    rcode = {
        Outcome.ANSWER: "NOERROR", Outcome.NODATA: "NOERROR", Outcome.REFERRAL: "NOERROR",
        Outcome.NXDOMAIN: "NXDOMAIN", Outcome.SERVFAIL: "SERVFAIL", Outcome.REFUSED: "REFUSED",
    }.get(outcome)
    return DnsObservation(
        server=server,
        via=Endpoint(server.address, server.port),
        qname=qname,
        qtype=qtype,
        outcome=outcome,
        rcode=rcode,
        flags=flags,
        answer=tuple(Record(*r) for r in answer or []),
        authority=tuple(Record(*r) for r in authority or []),
    )


def addresses(host: str, *ips: str, outcome: Outcome | None = None,
              cname: str | None = None) -> AddressLookup:
    answer = [(host, "A", 300, ip) for ip in ips]
    if cname:
        answer.insert(0, (host, "CNAME", 300, cname))
    a = obs(RESOLVER, host, "A", outcome or (Outcome.ANSWER if ips else Outcome.NXDOMAIN), answer)
    aaaa = obs(RESOLVER, host, "AAAA", outcome or (Outcome.NODATA if ips else Outcome.NXDOMAIN))
    return AddressLookup(host, a, aaaa)


def soa(server: Server, zone: str, serial: int, outcome: Outcome = Outcome.ANSWER,
        aa: bool = True) -> DnsObservation:
    data = f"ns1.{zone} hostmaster.{zone} {serial} 3600 600 86400 300"
    answer = [(zone, "SOA", 300, data)] if outcome is Outcome.ANSWER else []
    return obs(server, zone, "SOA", outcome, answer, flags=("AA",) if aa else ())


def delegation(zone: str, servers: list[Server], parent: DnsObservation | None = None,
               soa_outcome: Outcome = Outcome.ANSWER) -> Delegation:
    names = sorted({s.name or "" for s in servers})
    ns_obs = obs(RESOLVER, zone, "NS", Outcome.ANSWER, [(zone, "NS", 300, n) for n in names])
    lookups = [addresses(n, *[s.address for s in servers if s.name == n]) for n in names]
    return Delegation(zone, soa(RESOLVER, zone, 1, soa_outcome, aa=False), ns_obs, parent,
                      names, [], lookups, servers)


# --- SMTP -------------------------------------------------------------------------------

def cert(host: str, *, expired: bool = False, chain_error: str | None = None,
         names: tuple[str, ...] | None = None, days_left: int = 60) -> CertInfo:
    names = names or (host,)
    return CertInfo(f"CN={names[0]}", "CN=lab CA", names, "2027-01-28T00:00:00+00:00",
                    -2 if expired else days_left, expired,
                    chain_error is None and not expired,
                    chain_error or ("certificate has expired" if expired else None),
                    host in names)


def dialogue(host: str, address: str = "127.0.2.1", *, outcome: SmtpOutcome = SmtpOutcome.COMPLETED,
             phase: str = "rcpt", banner: str = "220 {host} ESMTP", rcpt: str | None = "250 ok",
             mail: str | None = "250 ok", tls: TlsInfo | bool | None = True,
             error: str | None = None, ehlo: str = "250 {host}") -> Dialogue:
    """A dialogue as the SMTP client records it (``tls=True``: STARTTLS fine)."""
    done = outcome is SmtpOutcome.COMPLETED
    if tls is True:
        tls = TlsInfo(offered=True, established=True, version="TLSv1.3",
                      cipher="TLS_AES_256_GCM_SHA384", cert=cert(host))
    elif tls is False:
        tls = TlsInfo(offered=False)
    d = Dialogue(host, address, 25, Endpoint(address, 25), outcome, phase, error)
    silent = (SmtpOutcome.REFUSED, SmtpOutcome.CONNECT_TIMEOUT, SmtpOutcome.NO_ROUTE,
              SmtpOutcome.NETWORK_ERROR, SmtpOutcome.BANNER_TIMEOUT, SmtpOutcome.OUT_OF_TIME)
    if outcome not in silent:
        d.banner = smtp_parse(banner.format(host=host))
        d.transcript.append(Step(0.5, "-", f"connected to {address}:25"))
        if phase != "banner":
            d.ehlo = smtp_parse(ehlo.format(host=host))
            d.tls = tls
            d.mail = smtp_parse(mail) if mail and phase in ("mail", "rcpt") else None
            d.rcpt = smtp_parse(rcpt) if rcpt and done else None
    elif outcome is not SmtpOutcome.REFUSED:
        d.transcript.append(Step(0.5, "-", f"connected to {address}:25"))
    d.last_reply = d.rcpt or d.mail or d.ehlo or d.banner
    return d
