"""The Exchange Online inbound edge over SMTP (``*.mail.protection.outlook.com`` or the
newer ``*.mx.microsoft``): reachable, and what ``RCPT TO`` says about the recipient.

Replies are read as Microsoft documents them (reference: Exchange Online NDR codes):
``550 5.4.1 … Access denied`` is Directory-Based Edge Blocking (the recipient is not in
the tenant's directory); ``5.4.1 Relay Access Denied`` means the tenant does not accept
the domain; ``5.7.64 TenantAttribution`` / ``5.7.51 TenantInboundAttribution`` /
``5.7.68`` are the inbound connector refusing this sender — expected, and fine, when the
topology says the edge only accepts mail from the gateway.
"""

from __future__ import annotations

import re

from mailtrace.clients.smtp_reply import Reply
from mailtrace.core.findings import Finding
from mailtrace.probes.base import Probe
from mailtrace.probes.smtp.hop import HopObservation, collect_hop
from mailtrace.probes.smtp.reading import TAGS, read_hop

_CONNECTOR = re.compile(r"TenantAttribution|TenantInboundAttribution|Direct Send not allowed",
                        re.I)
_CONNECTOR_CODES = frozenset({"5.7.64", "5.7.51", "5.7.68"})


def _read_rcpt(reply: Reply, host: str, obs: HopObservation, at_mail: bool) -> Finding | None:
    args = {"host": host, "recipient": obs.recipient, "reply": str(reply)}
    if reply.enhanced in _CONNECTOR_CODES or _CONNECTOR.search(reply.text):
        if obs.restricted_to:
            return Finding("EXO_EDGE_RESTRICTED_TO_GATEWAY",
                           {**args, "gateway": obs.restricted_to})
        return Finding("EXO_EDGE_CONNECTOR_REJECTED", args)
    if at_mail:
        return None
    if reply.enhanced == "5.4.1":
        if re.search(r"relay access denied", reply.text, re.I):
            return Finding("EXO_EDGE_DOMAIN_NOT_ACCEPTED", args)
        return Finding("EXO_EDGE_RECIPIENT_UNKNOWN", args)
    if reply.positive and obs.restricted_to:
        return Finding("EXO_EDGE_ACCEPTS_FROM_ANYONE", {**args, "gateway": obs.restricted_to})
    return None


def evaluate(obs: HopObservation) -> list[Finding]:
    return read_hop(obs, _read_rcpt)


PROBE = Probe(
    id="smtp.exo_edge",
    asks="smtp",
    kinds=frozenset({"exchange-online"}),
    tags=TAGS | {"EXO_EDGE_RECIPIENT_UNKNOWN", "EXO_EDGE_DOMAIN_NOT_ACCEPTED",
                 "EXO_EDGE_CONNECTOR_REJECTED", "EXO_EDGE_RESTRICTED_TO_GATEWAY",
                 "EXO_EDGE_ACCEPTS_FROM_ANYONE"},
    collect=collect_hop,
    evaluate=evaluate,
    gates=("dns.observer", "observer.port25"),
    deadline=30.0,
    summary="the tenant's inbound host over SMTP: STARTTLS, certificate, what RCPT TO says",
)
