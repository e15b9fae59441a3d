"""Read SMTP dialogues into findings: reachability, TLS posture, and what RCPT TO said.

Pure functions over :class:`~mailtrace.probes.smtp.hop.HopObservation` (no I/O). The order of
reasoning:

1. a reply that blocks *this machine's* address (a reputation list naming the observer)
   is about the observer, never the tier;
2. hosts that never got as far as a decision about the mail are *down*: all down is the
   tier failing, some down is a degraded tier;
3. on the hosts that are up: the TLS posture, then the answer to ``RCPT TO``, which each
   tier kind reads in its own terms (:data:`RcptReader`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from mailtrace.clients.smtp import Dialogue, Outcome
from mailtrace.clients.smtp_reply import Reply
from mailtrace.core.evidence import Evidence
from mailtrace.core.findings import Finding
from mailtrace.probes.base import NotTested
from mailtrace.probes.smtp import dane, mimecast
from mailtrace.probes.smtp.hop import HopObservation, HostProbe

#: Reads the answer to RCPT TO (or, with ``at_mail``, a MAIL FROM refusal) in a tier
#: kind's own terms: a finding, or None to let the generic reading decide.
RcptReader = Callable[[Reply, str, HopObservation, bool], Finding | None]

#: Replies that block the connecting address by reputation: they judge the observer.
_OBSERVER_BLOCKS = (
    re.compile(r"ipcheck\.proofpoint\.com", re.I),
    re.compile(r"Proofpoint Dynamic Reputation", re.I),
    re.compile(r"banned sending IP", re.I),  # Exchange Online 5.7.606-649
    re.compile(r"spamhaus\.org", re.I),
    re.compile(r"\bblock(ed|list)\b.*\b(your|client|sending) IP\b", re.I),
    *mimecast.OBSERVER_BLOCKS,
)

#: How a dialogue that never reached a decision ended, as the tag that names it.
_DOWN_TAGS: dict[tuple[Outcome, str | None], str] = {
    (Outcome.REFUSED, None): "SMTP_CONNECT_REFUSED",
    (Outcome.CONNECT_TIMEOUT, None): "SMTP_CONNECT_TIMEOUT",
    (Outcome.NETWORK_ERROR, None): "SMTP_NETWORK_ERROR",
    (Outcome.BANNER_TIMEOUT, None): "SMTP_BANNER_TIMEOUT",
    (Outcome.REJECTED, "banner"): "SMTP_BANNER_REJECTED",
    (Outcome.REJECTED, None): "SMTP_EHLO_REJECTED",
    (Outcome.TIMEOUT, None): "SMTP_COMMAND_TIMEOUT",
    (Outcome.CLOSED, None): "SMTP_CONNECTION_DROPPED",
    (Outcome.PROTOCOL_ERROR, None): "SMTP_PROTOCOL_ERROR",
}
DOWN_TAGS = frozenset(_DOWN_TAGS.values())

TLS_TAGS = frozenset({
    "SMTP_STARTTLS_MISSING", "SMTP_TLS_HANDSHAKE_FAILED", "SMTP_TLS_CERT_EXPIRED",
    "SMTP_TLS_CERT_UNTRUSTED", "SMTP_TLS_CERT_NAME_MISMATCH", "SMTP_TLS_CERT_EXPIRING",
    "SMTP_TLS_OLD_VERSION",
    "SMTP_TLS_OK",
})
TAGS = DOWN_TAGS | TLS_TAGS | dane.TAGS | {
    "OBSERVER_IP_BLOCKED", "OBSERVER_NO_ROUTE", "SMTP_HOST_UNRESOLVABLE",
    "SMTP_SOME_HOSTS_DOWN", "SMTP_SOME_ADDRESSES_DOWN", "SMTP_MAIL_FROM_REJECTED",
    "SMTP_RCPT_ACCEPTED", "SMTP_RCPT_DEFERRED", "SMTP_RCPT_UNKNOWN",
    "SMTP_RCPT_RELAY_DENIED", "SMTP_RCPT_REJECTED", "SMTP_HOSTS_ANSWER_DIFFERENTLY",
}

EXPIRING_DAYS = 14
_OLD_TLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1"})


def _label(d: Dialogue) -> str:
    return f"{d.host} [{d.address}]"


def _evidence(dialogues: Iterable[Dialogue]) -> list[Evidence]:
    return [d.evidence() for d in dialogues]


def _decided(d: Dialogue) -> bool:
    """Did the server make a decision about the mail (MAIL FROM or RCPT TO answered)?"""
    return d.outcome is Outcome.COMPLETED or d.mail is not None


def _detail(d: Dialogue) -> str:
    if d.last_reply is not None and not d.last_reply.positive:
        return f"{_label(d)} answered {d.last_reply}"
    return f"{_label(d)}: {d.error or d.outcome.value}"


def down_tag(d: Dialogue) -> str:
    return _DOWN_TAGS.get((d.outcome, d.phase)) or _DOWN_TAGS[(d.outcome, None)]


def observer_block(dialogues: Iterable[Dialogue]) -> Finding | None:
    for d in dialogues:
        for reply in (d.banner, d.ehlo, d.mail, d.rcpt, d.last_reply):
            if reply is not None and not reply.positive and any(
                p.search(reply.text) for p in _OBSERVER_BLOCKS
            ):
                return Finding("OBSERVER_IP_BLOCKED",
                               {"host": _label(d), "reply": str(reply)}, [d.evidence()])
    return None


def read_hop(obs: HopObservation, read_rcpt: RcptReader) -> list[Finding]:
    dialogues = [d for h in obs.hosts for d in h.dialogues]
    blocked = observer_block(dialogues)
    if blocked is not None:
        return [blocked]
    findings: list[Finding] = []
    unroutable = [d for d in dialogues if d.outcome is Outcome.NO_ROUTE]
    if unroutable:
        findings.append(Finding("OBSERVER_NO_ROUTE",
                                {"servers": ", ".join(_label(d) for d in unroutable)},
                                _evidence(unroutable)))
    judged = [h for h in obs.hosts if h.unresolvable or any(
        d.outcome not in (Outcome.NO_ROUTE, Outcome.OUT_OF_TIME) for d in h.dialogues)]
    if not judged:  # no host gave an answer to judge: that is no pass
        why = "no route from here" if unroutable else "the run's budget ended first"
        raise NotTested(f"no host of the tier could be judged ({why})", findings)
    up = [h for h in judged if any(_decided(d) for d in h.dialogues)]
    down = [h for h in judged if h not in up]
    findings += _down(down, up, obs)
    if not up:
        return findings
    findings += _addresses_down(up)
    answered = [d for h in up for d in h.dialogues if _decided(d)]
    findings += tls_posture(answered)
    findings += dane_posture(obs)
    findings += _answers(answered, obs, read_rcpt)
    return findings


def dane_posture(obs: HopObservation) -> list[Finding]:
    """DANE for the hosts whose TLSA records were looked up (RFC 7672)."""
    hosts = [dane.host_dane(h.host, obs.tlsa[h.host]) for h in obs.hosts if h.host in obs.tlsa]
    return dane.findings(hosts, {h.host: list(h.dialogues) for h in obs.hosts})


def _down(down: list[HostProbe], up: list[HostProbe], obs: HopObservation) -> list[Finding]:
    if not down:
        return []
    unresolvable = [h for h in down if h.unresolvable]
    failed = [d for h in down for d in h.dialogues
              if d.outcome not in (Outcome.NO_ROUTE, Outcome.OUT_OF_TIME)]
    findings = []
    if unresolvable:
        findings.append(Finding(
            "SMTP_HOST_UNRESOLVABLE", {"hosts": ", ".join(h.host for h in unresolvable)},
            [o.evidence() for h in unresolvable for o in h.lookup.observations]))
    if up:
        findings.append(Finding(
            "SMTP_SOME_HOSTS_DOWN",
            {"hosts": ", ".join(h.host for h in down),
             "detail": "; ".join(_detail(d) for d in failed) or "no address",
             "up": ", ".join(h.host for h in up)},
            _evidence(failed)))
    elif failed:
        first = failed[0]  # the most preferred host's first address
        findings.append(Finding(
            down_tag(first),
            {"hosts": ", ".join(h.host for h in down if not h.unresolvable),
             "detail": _detail(first)},
            _evidence(failed)))
    return findings


def _addresses_down(up: list[HostProbe]) -> list[Finding]:
    failing = [d for h in up for d in h.dialogues
               if not _decided(d) and d.outcome not in (Outcome.NO_ROUTE, Outcome.OUT_OF_TIME)]
    if not failing:
        return []
    return [Finding("SMTP_SOME_ADDRESSES_DOWN",
                    {"addresses": ", ".join(_label(d) for d in failing),
                     "detail": "; ".join(_detail(d) for d in failing)},
                    _evidence(failing))]


def tls_posture(dialogues: list[Dialogue]) -> list[Finding]:
    """One finding per TLS problem, naming every host that has it; SMTP_TLS_OK when none."""
    problems: dict[str, list[tuple[Dialogue, dict[str, Any]]]] = {}

    def add(tag: str, d: Dialogue, **args: Any) -> None:
        problems.setdefault(tag, []).append((d, args))

    for d in dialogues:
        tls = d.tls
        if tls is None or not tls.offered:
            add("SMTP_STARTTLS_MISSING", d)
            continue
        if tls.error:
            add("SMTP_TLS_HANDSHAKE_FAILED", d, error=tls.error)
        cert = tls.cert
        if cert is not None:
            if cert.expired:
                add("SMTP_TLS_CERT_EXPIRED", d, not_after=cert.not_after)
            elif not cert.chain_ok:
                add("SMTP_TLS_CERT_UNTRUSTED", d, error=cert.chain_error)
            if not cert.name_ok:
                add("SMTP_TLS_CERT_NAME_MISMATCH", d, names=", ".join(cert.names))
            if not cert.expired and cert.days_left < EXPIRING_DAYS:
                add("SMTP_TLS_CERT_EXPIRING", d, days_left=cert.days_left)
        if tls.version in _OLD_TLS:
            add("SMTP_TLS_OLD_VERSION", d, version=tls.version)
    findings = []
    for tag, items in problems.items():
        args: dict[str, Any] = {"hosts": ", ".join(dict.fromkeys(_label(d) for d, _ in items))}
        for key in items[0][1]:
            args[key] = "; ".join(dict.fromkeys(str(a[key]) for _, a in items))
        findings.append(Finding(tag, args, _evidence(d for d, _ in items)))
    if not any(tag != "SMTP_TLS_CERT_EXPIRING" for tag in problems):
        good = [d for d in dialogues if d.tls is not None and d.tls.established]
        if good:
            versions = sorted({d.tls.version or "?" for d in good if d.tls is not None})
            days = [d.tls.cert.days_left for d in good if d.tls and d.tls.cert]
            findings.append(Finding("SMTP_TLS_OK", {
                "hosts": ", ".join(dict.fromkeys(d.host for d in good)),
                "versions": ", ".join(versions),
                "days_left": min(days) if days else "unknown",
            }, _evidence(good[:1])))
    return findings


def _answers(answered: list[Dialogue], obs: HopObservation,
             read_rcpt: RcptReader) -> list[Finding]:
    """The first host's answer decides (MX order); others that differ are named."""
    first = answered[0]
    reply = first.rcpt if first.rcpt is not None else first.mail
    assert reply is not None  # _decided
    findings = [read_answer(reply, first, obs, read_rcpt)]
    differing = [d for d in answered[1:] if _kind(d) != _kind(first)]
    if differing:
        findings.append(Finding("SMTP_HOSTS_ANSWER_DIFFERENTLY", {
            "first": f"{_label(first)}: {reply}",
            "others": "; ".join(f"{_label(d)}: {d.rcpt or d.mail}" for d in differing),
        }, _evidence([first, *differing])))
    return findings


def _kind(d: Dialogue) -> tuple[str, int]:
    reply = d.rcpt if d.rcpt is not None else d.mail
    return ("rcpt" if d.rcpt is not None else "mail", reply.code // 100 if reply else 0)


def read_answer(reply: Reply, d: Dialogue, obs: HopObservation,
                read_rcpt: RcptReader) -> Finding:
    evidence = [d.evidence()]
    specific = read_rcpt(reply, d.host, obs, d.rcpt is None)
    if specific is not None:
        return Finding(specific.tag, specific.args, evidence)
    args = {"host": _label(d), "recipient": obs.recipient, "reply": str(reply)}
    if d.rcpt is None:  # MAIL FROM was refused: the recipient could not be asked
        return Finding("SMTP_MAIL_FROM_REJECTED", {"host": _label(d), "reply": str(reply)},
                       evidence)
    if reply.positive:
        return Finding("SMTP_RCPT_ACCEPTED", args, evidence)
    if reply.transient:
        return Finding("SMTP_RCPT_DEFERRED", args, evidence)
    if reply.enhanced is not None and reply.enhanced.startswith("5.1."):
        return Finding("SMTP_RCPT_UNKNOWN", args, evidence)
    if re.search(r"relay(ing)? (access )?(denied|not permitted)", reply.text, re.I):
        return Finding("SMTP_RCPT_RELAY_DENIED", args, evidence)
    return Finding("SMTP_RCPT_REJECTED", args, evidence)
