"""Exchange Server on-premises in a hybrid organization, over SMTP, as Exchange Online's
outbound connector meets it: its smart hosts reachable, STARTTLS, a certificate that
validates and carries the name the connector expects, and the recipient accepted.

Exchange Online's connector to on-premises (the Hybrid Configuration Wizard's "Outbound
to <org>") uses TLS with domain validation (``TlsSettings DomainValidation``, its
``TlsDomain``): a certificate that is not trusted, has expired, or does not carry that
name makes Exchange Online queue the mail and retry (``450 4.4.317 Cannot connect to
remote server [Message=SubjectMismatch ...]``, ``454 4.7.5 ... certificate validation
failed``), then bounce it — while every other sender still delivers. Replies are read
as Exchange Server writes them: ``550 5.1.10 RESOLVER.ADR.RecipientNotFound`` (no such
recipient on-premises), ``550 5.7.54 ... Unable to relay recipient in non-accepted
domain`` (the domain is not accepted there).
"""

from __future__ import annotations

import re

from mailtrace.clients.smtp import Dialogue, name_matches
from mailtrace.clients.smtp_reply import Reply
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe
from mailtrace.probes.smtp.hop import HopObservation, collect_hop
from mailtrace.probes.smtp.reading import TAGS, read_hop

_NOT_FOUND = re.compile(r"RESOLVER\.ADR\.RecipientNotFound|Recipient not found", re.I)
_NOT_ACCEPTED = re.compile(r"non-accepted domain|Unable to relay", re.I)
_ANONYMOUS = re.compile(r"not authenticated|Client was not authenticated", re.I)

ONPREM_TAGS = frozenset({
    "ONPREM_RECIPIENT_UNKNOWN", "ONPREM_DOMAIN_NOT_ACCEPTED", "ONPREM_ANONYMOUS_REFUSED",
    "ONPREM_TLS_UNAVAILABLE", "ONPREM_CERT_INVALID", "ONPREM_CERT_NAME_MISMATCH",
    "ONPREM_SOME_HOSTS_TLS_FAIL", "ONPREM_TLS_OK",
})


def _read_rcpt(reply: Reply, host: str, obs: HopObservation, at_mail: bool) -> Finding | None:
    args = {"host": host, "recipient": obs.recipient, "reply": str(reply)}
    if reply.permanent and _ANONYMOUS.search(reply.text):
        return Finding("ONPREM_ANONYMOUS_REFUSED", args)
    if at_mail or not reply.permanent:
        return None
    if reply.enhanced == "5.1.10" or _NOT_FOUND.search(reply.text):
        return Finding("ONPREM_RECIPIENT_UNKNOWN", args)
    if reply.enhanced == "5.7.54" or _NOT_ACCEPTED.search(reply.text):
        return Finding("ONPREM_DOMAIN_NOT_ACCEPTED", args)
    return None


def _label(d: Dialogue) -> str:
    return f"{d.host} [{d.address}]"


def _problem(d: Dialogue, expected: str | None) -> tuple[str, str] | None:
    """(tag, detail) of what Exchange Online's connector refuses in this dialogue."""
    tls = d.tls
    if tls is None or not tls.offered or not tls.established:
        return "ONPREM_TLS_UNAVAILABLE", (tls.error if tls and tls.error else "no STARTTLS")
    cert = tls.cert
    if cert is None:
        return "ONPREM_CERT_INVALID", "no certificate could be read"
    if cert.expired:
        return "ONPREM_CERT_INVALID", f"the certificate expired on {cert.not_after}"
    if not cert.chain_ok:
        return "ONPREM_CERT_INVALID", f"the certificate does not validate: {cert.chain_error}"
    wanted = expected or d.host
    if not carries(cert.names, wanted):
        return "ONPREM_CERT_NAME_MISMATCH", (f"the certificate is for {', '.join(cert.names)}, "
                                             f"not {wanted}")
    return None


def carries(names: tuple[str, ...], expected: str) -> bool:
    """Does a certificate with these names satisfy the connector's TlsDomain? A name
    matches as RFC 6125 §6.4 says; a TlsDomain of ``*.domain`` accepts any name under the
    domain (Set-OutboundConnector's wildcard)."""
    expected = expected.lower().rstrip(".")
    if expected.startswith("*."):
        suffix = expected[1:]
        return any(n.lower() == expected or n.lower().rstrip(".").endswith(suffix)
                   for n in names)
    return any(name_matches(n, expected) for n in names)


def hybrid_tls(obs: HopObservation) -> list[Finding]:
    """What the hybrid connector's TLS makes of each host that answered (RFC 3207 for
    STARTTLS; RFC 6125 §6.4 for the name, as Exchange Online matches TlsDomain)."""
    answered = [d for h in obs.hosts for d in h.dialogues
                if d.mail is not None or d.tls is not None]
    if not answered:
        return []
    failing = [(d, p) for d in answered if (p := _problem(d, obs.tls_name)) is not None]
    expected = obs.tls_name or "the host name"
    if not failing:
        d = answered[0]
        names = ", ".join(d.tls.cert.names) if d.tls and d.tls.cert else "?"
        return [Finding("ONPREM_TLS_OK", {
            "hosts": ", ".join(dict.fromkeys(x.host for x in answered)), "expected": expected,
            "names": names}, [d.evidence()])]
    if len(failing) < len(answered):
        return [Finding("ONPREM_SOME_HOSTS_TLS_FAIL", {
            "hosts": ", ".join(dict.fromkeys(_label(d) for d, _ in failing)),
            "detail": "; ".join(f"{_label(d)}: {p[1]}" for d, p in failing)},
            [d.evidence() for d, _ in failing])]
    by_tag: dict[str, list[tuple[Dialogue, str]]] = {}
    for d, (tag, detail) in failing:
        by_tag.setdefault(tag, []).append((d, detail))
    return [Finding(tag, {"hosts": ", ".join(dict.fromkeys(_label(d) for d, _ in items)),
                          "detail": "; ".join(dict.fromkeys(detail for _, detail in items)),
                          "expected": expected},
                    [d.evidence() for d, _ in items])
            for tag, items in by_tag.items()]


def evaluate(obs: HopObservation) -> list[Finding]:
    findings = read_hop(obs, _read_rcpt)
    if any(f.tag == "OBSERVER_IP_BLOCKED" for f in findings):
        return findings
    if obs.tls_name:
        # The connector checks its TlsDomain, not the smart host's name: the hybrid
        # finding says what matters.
        findings = [f for f in findings if f.tag != "SMTP_TLS_CERT_NAME_MISMATCH"]
    return hybrid_tls(obs) + findings


PROBE = Probe(
    id="smtp.onprem",
    asks="smtp",
    kinds=frozenset({"exchange-onprem"}),
    tags=TAGS | ONPREM_TAGS,
    collect=collect_hop,
    evaluate=evaluate,
    gates=("dns.observer", "observer.port25"),
    deadline=30.0,
    summary="Exchange Server on-premises as Exchange Online's hybrid connector meets it: "
            "STARTTLS, a trusted certificate with the expected name, RCPT TO",
)
