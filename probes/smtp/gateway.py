"""The secure email gateway over SMTP: every inbound host, as a sender would meet it.

For Proofpoint, the banner is checked against the declared flavour (on Demand hosts are
``*.pphosted.com``, Essentials ``*.ppe-hosted.com``), and ``550 5.1.1`` means the gateway
itself does not know the recipient: its user list or directory sync, not Exchange Online.
For Mimecast, its documented reply families are read into tags
(:mod:`mailtrace.probes.smtp.mimecast`).
"""

from __future__ import annotations

import re

from mailtrace.clients.smtp_reply import Reply
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe
from mailtrace.probes.smtp import mimecast
from mailtrace.probes.smtp.hop import HopObservation, collect_hop
from mailtrace.probes.smtp.reading import TAGS, read_hop

#: What each Proofpoint flavour calls itself in banners and EHLO greetings.
FLAVOUR_SIGNS = {
    "pod": re.compile(r"pphosted\.com|ppops\.net", re.I),
    "essentials": re.compile(r"ppe-hosted\.com|PPE Hosted", re.I),
}
_UNKNOWN_USER = re.compile(r"user unknown|no such user|recipient (address )?rejected|"
                           r"unknown (user|recipient)|invalid (user|recipient)", re.I)


def _read_rcpt(reply: Reply, host: str, obs: HopObservation, at_mail: bool) -> Finding | None:
    if obs.kind == "mimecast":
        return mimecast.read(reply, host, obs.recipient, at_mail)
    if obs.kind != "proofpoint" or not reply.permanent or at_mail:
        return None
    if (reply.enhanced or "").startswith("5.1.") or (
        reply.code == 550 and _UNKNOWN_USER.search(reply.text)
    ):
        return Finding("PP_RECIPIENT_UNKNOWN", {"host": host, "recipient": obs.recipient,
                                                "reply": str(reply)})
    return None


def _identity(obs: HopObservation) -> list[Finding]:
    if obs.kind != "proofpoint" or obs.flavour not in FLAVOUR_SIGNS:
        return []
    findings = []
    for host in obs.hosts:
        greetings = [r for d in host.dialogues for r in (d.banner, d.ehlo)
                     if r is not None and r.positive]
        if not greetings:
            continue
        text = " ".join(r.text for r in greetings)
        if FLAVOUR_SIGNS[obs.flavour].search(text):
            continue
        other = next((f for f, sign in FLAVOUR_SIGNS.items()
                      if f != obs.flavour and sign.search(text)), None)
        evidence = [host.dialogues[0].evidence()]
        if other is not None:
            findings.append(Finding("PP_BANNER_FLAVOUR_MISMATCH", {
                "host": host.host, "declared": obs.flavour, "seen": other}, evidence))
        else:
            findings.append(Finding("PP_BANNER_NOT_PROOFPOINT", {
                "host": host.host, "banner": str(greetings[0])}, evidence))
    return findings


def evaluate(obs: HopObservation) -> list[Finding]:
    findings = read_hop(obs, _read_rcpt)
    if all(f.tag != "OBSERVER_IP_BLOCKED" for f in findings):
        findings += _identity(obs)
    return findings


PROBE = Probe(
    id="smtp.gateway",
    asks="smtp",
    kinds=frozenset({"proofpoint", "mimecast", "smtp-gateway"}),
    tags=TAGS | mimecast.TAGS | {"PP_RECIPIENT_UNKNOWN", "PP_BANNER_FLAVOUR_MISMATCH",
                                 "PP_BANNER_NOT_PROOFPOINT"},
    collect=collect_hop,
    evaluate=evaluate,
    gates=("dns.observer", "observer.port25"),
    deadline=30.0,
    summary="each gateway host over SMTP: banner, STARTTLS and certificate, RCPT TO",
)
