"""The named demo scenarios: one healthy lab world, and one precise fault per scenario.

A scenario is data: edits to the lab zones (for every server, or for one name server only,
which is how stale data on a secondary is modelled) and per-server `Fault`s. Each records
the verdict it is built to produce, so the demo and the end-to-end tests check the same
thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from mailtrace.lab.dns_server import Fault
from mailtrace.lab.dnssec import SigningFault
from mailtrace.lab.graph_api import TenantFaults, Throttle
from mailtrace.lab.maillog import DEFAULT_MESSAGES, GatewayFate, LabMessage
from mailtrace.lab.smtp_server import SmtpScript

#: TTL of an added RRset when the edit does not say and there was none to keep.
DEFAULT_TTL = 300

MessageFate = Literal["delivered", "rejected", "quarantined", "onward-failed"]
#: TLSA records a host publishes: for its current certificate, or for a key it no
#: longer has; None publishes none.
TlsaPublish = Literal["current", "stale"]


@dataclass(frozen=True)
class Expectation:
    """The verdict a scenario is built to produce (status, tier id, finding tag)."""

    status: str
    tier: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ZoneEdit:
    """Replace one RRset of a lab zone, or delete it (`records=None`).

    `name` is relative to the zone (``"@"`` for the apex) or absolute; `records` are rdata in
    master-file syntax. `servers` limits the edit to those name server host names: the other
    servers of the zone keep the original data.
    """

    zone: str
    name: str
    rdtype: str
    records: tuple[str, ...] | None
    ttl: int | None = None
    servers: frozenset[str] | None = None

    @property
    def origin(self) -> dns.name.Name:
        return dns.name.from_text(self.zone)

    def for_server(self, host: str) -> bool:
        return self.servers is None or host.rstrip(".").lower() in self.servers

    def apply(self, zone: dns.zone.Zone) -> None:
        """Edit `zone` in place (a zone loaded with ``relativize=False``)."""
        origin = zone.origin
        assert origin is not None
        owner = dns.name.from_text(self.name, origin=origin)
        rdtype = dns.rdatatype.from_text(self.rdtype)
        if self.records is None:
            zone.delete_rdataset(owner, rdtype)
            return
        old = zone.get_rdataset(owner, rdtype)
        ttl = self.ttl if self.ttl is not None else old.ttl if old is not None else DEFAULT_TTL
        rdataset = dns.rdataset.from_text_list(
            dns.rdataclass.IN, rdtype, ttl, list(self.records), origin=origin, relativize=False
        )
        zone.replace_rdataset(owner, rdataset)


@dataclass(frozen=True)
class GatewayApi:
    """What the lab's Proofpoint APIs say (mailtrace/lab/proofpoint_api.py serves it)."""

    #: every API answers 401, or 429 without Retry-After (as TAP does)
    refuse: Literal["", "unauthorized", "throttled"] = ""
    #: what became of the recipient's latest message, per Smart Search
    message: MessageFate = "delivered"
    #: Essentials: the domain's delivery destination (None: the declared next hop)
    destination: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A lab world plus one injected fault, and the verdict triage should reach."""

    name: str
    description: str
    topology: str
    recipient: str
    expect: Expectation
    zone_edits: tuple[ZoneEdit, ...] = ()
    #: Faults by name server host name ("ns2.contoso.com"), or "resolver".
    faults: Mapping[str, Fault] = field(default_factory=dict)
    #: SMTP behaviour by host name, over the lab world's (:data:`SMTP_HOSTS`).
    smtp: Mapping[str, SmtpScript] = field(default_factory=dict)
    #: Outbound port 25 blocked: every SMTP connection from the observer is refused.
    port25_blocked: bool = False
    #: MTA-STS policy text per domain, replacing the lab's default (None: no policy host).
    mta_sts_policies: Mapping[str, str | None] | None = None
    #: What the gateway's APIs (Proofpoint Smart Search, quarantine, Essentials, TAP) say.
    gateway_api: GatewayApi = field(default_factory=GatewayApi)
    #: What the lab's Microsoft Graph says about the tenant (default: all is well).
    tenant: TenantFaults = field(default_factory=TenantFaults)
    #: The world's mail log: what every tier did with each message, which the gateway's
    #: Smart Search and quarantine and the tenant's message trace all answer from
    #: (None: the gateway's ``gateway_api.message`` and the tenant's ``tenant.traces``).
    messages: tuple[LabMessage, ...] | None = None
    #: The sender whose message the demo follows (``triage --from``), if any.
    sender: str | None = None
    #: Values the lab's copy of the topology sets, per (tier, section): e.g. the
    #: quarantine folders the gateway's API lists.
    topology_settings: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    #: Credential variables the triage is not given (the stand-ins still expect them).
    withheld: frozenset[str] = frozenset()
    #: DNSSEC signing broken for a zone (by origin): expired signatures, a DS for a key the
    #: zone does not have, or no signing at all.
    dnssec: Mapping[str, SigningFault] = field(default_factory=dict)
    #: TLSA publishing by SMTP host, over the lab world's (:data:`DANE_HOSTS`).
    tlsa: Mapping[str, TlsaPublish | None] = field(default_factory=dict)
    #: A validating resolver joins the observer's panel (after the lab's plain one).
    validating_resolver: bool = False

    def smtp_scripts(self) -> dict[str, SmtpScript]:
        return {**SMTP_HOSTS, **self.smtp}

    def tenant_messages(self) -> tuple[LabMessage, ...] | None:
        """What reached the tenant, so that its message trace agrees with the gateway: the
        mail log; without one, the default messages with the fate the gateway's Smart
        Search gives them (a rule that rejects or quarantines the recipient's mail stops
        both; a next hop that refuses stops the latest)."""
        fate = self.gateway_api.message
        if self.messages is not None or fate == "delivered" or self.tenant.traces is not None:
            return self.messages
        ways: dict[str, GatewayFate] = {"rejected": "rejected", "quarantined": "quarantined",
                                        "onward-failed": "bounced"}
        stopped = ways[fate]
        earlier, latest = DEFAULT_MESSAGES
        return (dataclasses.replace(earlier, gateway=stopped if fate != "onward-failed"
                                    else "relayed"),
                dataclasses.replace(latest, gateway=stopped))

    def tlsa_hosts(self) -> dict[str, TlsaPublish]:
        return {h: p for h, p in {**DANE_HOSTS, **self.tlsa}.items() if p is not None}


class UnknownScenario(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown scenario {self.name!r}; known scenarios: {', '.join(self.known)}"


# --- the lab world's SMTP hosts, as they behave when nothing is injected ---------------

_POD = "220 {host} ESMTP mfa-m0001234"
_ESSENTIALS = "220 {host} PPE Hosted ESMTP Server"
_EXO = "220 {host} Microsoft ESMTP MAIL Service ready"
_EXCHANGE_SERVER = "220 {host} Microsoft ESMTP MAIL Service ready at Mon, 7 Dec 2026 09:00:00 +0000"
_EXCHANGE_SERVER_EXTENSIONS = ("SIZE 37748736", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES",
                               "X-ANONYMOUSTLS", "AUTH NTLM", "8BITMIME", "BINARYMIME",
                               "CHUNKING", "SMTPUTF8", "XRDST")
_MIMECAST = "220 {host} ESMTP Mimecast"
_EXO_EXTENSIONS = ("SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "8BITMIME",
                   "BINARYMIME", "CHUNKING", "SMTPUTF8")
#: What a tenant's edge answers a sender other than its gateway when the inbound (partner)
#: connector is restricted to the gateway.
EXO_RESTRICTED = ("550 5.7.51 TenantInboundAttribution; Rejecting. "
                  "[CO1PEPF000044F9.namprd21.prod.outlook.com]")
EXO_DBEB = ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
            "[CO1PEPF000044F9.namprd21.prod.outlook.com]")
EXO_ATTRIBUTION = ("550 5.7.64 TenantAttribution; Relay Access Denied "
                   "[CO1PEPF000044F9.namprd21.prod.outlook.com]")

SMTP_HOSTS: dict[str, SmtpScript] = {
    "mx0a-001234.pphosted.com": SmtpScript(banner=_POD),
    "mx0b-001234.pphosted.com": SmtpScript(banner=_POD),
    "mx1-us1.ppe-hosted.com": SmtpScript(banner=_ESSENTIALS),
    "mx2-us1.ppe-hosted.com": SmtpScript(banner=_ESSENTIALS),
    # contoso and fabrikam lock their inbound connector to the gateway; northwind has none.
    "contoso-com.mail.protection.outlook.com": SmtpScript(
        banner=_EXO, extensions=_EXO_EXTENSIONS, rcpt_reply=EXO_RESTRICTED),
    "fabrikam-com.mail.protection.outlook.com": SmtpScript(
        banner=_EXO, extensions=_EXO_EXTENSIONS, rcpt_reply=EXO_RESTRICTED),
    "northwind-com.mail.protection.outlook.com": SmtpScript(
        banner=_EXO, extensions=_EXO_EXTENSIONS),
    # litware.com: Exchange Online's DNSSEC namespace in front, Exchange Server behind it.
    "litware-com.l-v1.mx.microsoft": SmtpScript(banner=_EXO, extensions=_EXO_EXTENSIONS),
    "mail.litware.com": SmtpScript(banner=_EXCHANGE_SERVER,
                                   extensions=_EXCHANGE_SERVER_EXTENSIONS),
    # adatum.com: Mimecast (EU) in front of Exchange Online, whose connector accepts only it.
    "eu-smtp-inbound-1.mimecast.com": SmtpScript(banner=_MIMECAST),
    "eu-smtp-inbound-2.mimecast.com": SmtpScript(banner=_MIMECAST),
    "adatum-com.mail.protection.outlook.com": SmtpScript(
        banner=_EXO, extensions=_EXO_EXTENSIONS, rcpt_reply=EXO_RESTRICTED),
}
#: The hosts that publish TLSA records (DANE) in the lab world: Exchange Online's inbound
#: DANE on its *.mx.microsoft host for litware.com.
DANE_HOSTS: dict[str, TlsaPublish] = {"litware-com.l-v1.mx.microsoft": "current"}
_PP_HOSTS = ("mx0a-001234.pphosted.com", "mx0b-001234.pphosted.com")


def _gateway(**changes: Any) -> dict[str, SmtpScript]:
    """Both contoso gateway hosts changed the same way."""
    return {host: dataclasses.replace(SMTP_HOSTS[host], **changes) for host in _PP_HOSTS}


_CONTOSO = "contoso-proofpoint-exo.yaml"
_ALICE = "alice@contoso.com"
_CONTOSO_NS = ("ns1.contoso.com", "ns2.contoso.com")


def _contoso(
    name: str,
    description: str,
    expect: Expectation,
    *edits: ZoneEdit,
    faults: Mapping[str, Fault] | None = None,
    smtp: Mapping[str, SmtpScript] | None = None,
    port25_blocked: bool = False,
    gateway_api: GatewayApi | None = None,
    tenant: TenantFaults | None = None,
    **more: Any,
) -> Scenario:
    return Scenario(name, description, _CONTOSO, _ALICE, expect, edits, dict(faults or {}),
                    dict(smtp or {}), port25_blocked, gateway_api=gateway_api or GatewayApi(),
                    tenant=tenant or TenantFaults(), **more)


def _exo(name: str, description: str, expect: Expectation, **tenant: Any) -> Scenario:
    """A contoso scenario whose fault is in the Exchange Online tenant (its Graph)."""
    return _contoso(name, description, expect, tenant=TenantFaults(**tenant))


_EXO_TIER = "exchange-online"


_NORTHWIND = "northwind-exo-direct.yaml"
_NORTHWIND_EDGE = "northwind-com.mail.protection.outlook.com"


def _northwind_edge(name: str, description: str, expect: Expectation, rcpt_reply: str
                    ) -> Scenario:
    script = SmtpScript(banner=_EXO, extensions=_EXO_EXTENSIONS, rcpt_reply=rcpt_reply)
    return Scenario(name, description, _NORTHWIND, "carol@northwind.com", expect,
                    smtp={_NORTHWIND_EDGE: script})


def _contoso_mx(*records: str, servers: frozenset[str] | None = None) -> ZoneEdit:
    return ZoneEdit("contoso.com", "@", "MX", records or None, servers=servers)


_ALL: tuple[Scenario, ...] = (
    _contoso(
        "healthy",
        "contoso.com: MX to Proofpoint, Proofpoint relays to Exchange Online; all is well.",
        Expectation("healthy"),
    ),
    _contoso(
        "mx-missing",
        "contoso.com publishes no MX record at all.",
        Expectation("fault", "public-dns", "DNS_MX_MISSING"),
        _contoso_mx(),
    ),
    _contoso(
        "mx-bypasses-gateway",
        "contoso.com's MX points straight at Exchange Online, skipping the Proofpoint gateway.",
        Expectation("fault", "public-dns", "DNS_MX_BYPASSES_GATEWAY"),
        _contoso_mx("0 contoso-com.mail.protection.outlook.com."),
    ),
    _contoso(
        "mx-target-unresolvable",
        "contoso.com's MX names Proofpoint hosts that do not exist (no A/AAAA).",
        Expectation("fault", "public-dns", "DNS_MX_TARGET_UNRESOLVABLE"),
        _contoso_mx("10 mx0a-009999.pphosted.com.", "10 mx0b-009999.pphosted.com."),
    ),
    _contoso(
        "stale-ns",
        "ns2.contoso.com serves an old copy of the zone: old serial, MX to the old provider.",
        Expectation("degraded", "public-dns", "DNS_NS_STALE"),
        ZoneEdit(
            "contoso.com",
            "@",
            "SOA",
            ("ns1.contoso.com. hostmaster.contoso.com. 2026110101 7200 3600 1209600 300",),
            servers=frozenset({"ns2.contoso.com"}),
        ),
        _contoso_mx("10 mail.contoso-old.example.", servers=frozenset({"ns2.contoso.com"})),
    ),
    _contoso(
        "all-ns-servfail",
        "Both contoso.com name servers answer SERVFAIL to everything.",
        Expectation("fault", "public-dns", "DNS_ALL_NS_FAILING"),
        faults={ns: Fault("servfail") for ns in _CONTOSO_NS},
    ),
    _contoso(
        "observer-resolver-dead",
        "The resolver mailtrace uses never answers: nothing can be concluded about mail.",
        Expectation("inconclusive", "observer", "OBSERVER_RESOLVER_UNREACHABLE"),
        faults={"resolver": Fault("drop")},
    ),
    _exo(
        "exo-recipient-missing",
        "No user, group or contact in the tenant has alice@contoso.com.",
        Expectation("fault", _EXO_TIER, "EXO_RECIPIENT_NOT_FOUND"),
        recipient_missing=True, traces=(),
    ),
    _exo(
        "exo-account-disabled",
        "alice's account is disabled: her mailbox receives, she cannot sign in to read it.",
        Expectation("fault", _EXO_TIER, "EXO_ACCOUNT_DISABLED"),
        user={"accountEnabled": False},
    ),
    _exo(
        "exo-no-mailbox-plan",
        "alice has only EXCHANGE_S_FOUNDATION (no mailbox plan), so she has no mailbox.",
        Expectation("fault", _EXO_TIER, "EXO_NO_MAILBOX_PLAN"),
        user={"assignedPlans": [{"assignedDateTime": "2024-01-15T00:00:00Z",
                                 "capabilityStatus": "Enabled", "service": "exchange",
                                 "servicePlanId": "113feb6c-3fe4-4440-bddc-54d774bf0318"}],
              "provisionedPlans": [], "proxyAddresses": [], "mail": None},
        mailbox_missing=True, traces=(),
    ),
    _exo(
        "exo-rule-deletes-all",
        "An inbox rule of alice's with no condition deletes every message.",
        Expectation("fault", _EXO_TIER, "EXO_RULE_DELETES_ALL"),
        rules=({"displayName": "Clean up", "conditions": {},
                "actions": {"delete": True, "stopProcessingRules": True}},),
    ),
    _exo(
        "exo-mailbox-full",
        "alice's mailbox is full: MailTips say mailboxFull.",
        Expectation("fault", _EXO_TIER, "EXO_MAILBOX_FULL"),
        mailtips={"mailboxFull": True},
        traces=({"status": "delivered", "subject": "Report"},
                {"status": "failed", "subject": "Invoice", "sender": "billing@fabrikam.example"}),
    ),
    _exo(
        "exo-service-incident",
        "Service health lists an unresolved Exchange Online mail flow incident.",
        Expectation("degraded", _EXO_TIER, "EXO_SERVICE_INCIDENT"),
        issues=({"id": "EX1187001", "title": "Some users may experience delays receiving "
                 "email from external senders", "status": "ServiceDegradation"},),
    ),
    _exo(
        "exo-trace-quarantined",
        "Message trace shows a message to alice held in quarantine.",
        Expectation("degraded", _EXO_TIER, "EXO_TRACE_QUARANTINED"),
        traces=({"status": "quarantined", "subject": "Invoice 4411",
                 "sender": "billing@fabrikam.example"},
                {"status": "delivered", "subject": "Lunch?"}),
    ),
    _exo(
        "exo-graph-forbidden",
        "The app lacks every Graph permission (403; 401 for message trace): Exchange "
        "Online's records are not tested, never blamed, and the verdict is inconclusive.",
        Expectation("inconclusive", "exchange-online", "EXO_GRAPH_DENIED"),
        deny=frozenset({"*"}),
    ),
    _exo(
        "exo-graph-throttled",
        "Graph throttles: a 1 s Retry-After is honoured, message trace's 120 s one is not "
        "(not tested, never blamed).",
        Expectation("healthy"),
        throttle={"*": Throttle(1, times=1), "messageTraces": Throttle(120, times=None)},
    ),
    Scenario(
        "essentials-healthy",
        "fabrikam.com: MX to Proofpoint Essentials, relaying to Exchange Online; all is well.",
        "fabrikam-essentials-exo.yaml",
        "bob@fabrikam.com",
        Expectation("healthy"),
    ),
    _contoso(
        "pp-rejected-by-rule",
        "An Email Firewall rule of Proofpoint rejects every message for alice "
        "(Smart Search).",
        Expectation("fault", "proofpoint", "PP_MESSAGE_REJECTED"),
        gateway_api=GatewayApi(message="rejected"),
    ),
    _contoso(
        "pp-quarantined",
        "Proofpoint quarantines alice's mail (an impostor rule, folder Quarantine).",
        Expectation("fault", "proofpoint", "PP_MESSAGE_QUARANTINED"),
        gateway_api=GatewayApi(message="quarantined"),
    ),
    _contoso(
        "pp-onward-delivery-failed",
        "Proofpoint accepts alice's mail, then Exchange Online refuses it: 550 5.4.1.",
        Expectation("fault", "exchange-online", "PP_ONWARD_DELIVERY_FAILED"),
        gateway_api=GatewayApi(message="onward-failed"),
    ),
    Scenario(
        "pp-essentials-wrong-destination",
        "Proofpoint Essentials delivers fabrikam.com to an old server, not Exchange Online.",
        "fabrikam-essentials-exo.yaml",
        "bob@fabrikam.com",
        Expectation("fault", "proofpoint", "PPE_DESTINATION_MISMATCH"),
        gateway_api=GatewayApi(destination="mail.fabrikam-old.example"),
    ),
    _contoso(
        "pp-api-unauthorized",
        "The Proofpoint APIs refuse mailtrace's credentials (401): the gateway's records are "
        "not tested, and the verdict is inconclusive.",
        Expectation("inconclusive", "proofpoint", "PP_API_UNAVAILABLE"),
        gateway_api=GatewayApi(refuse="unauthorized"),
    ),
    _contoso(
        "pp-api-throttled",
        "The Proofpoint APIs throttle mailtrace (429, no Retry-After): the gateway's records "
        "are not tested, and the verdict is inconclusive.",
        Expectation("inconclusive", "proofpoint", "PP_API_UNAVAILABLE"),
        gateway_api=GatewayApi(refuse="throttled"),
    ),
    Scenario(
        "direct-healthy",
        "northwind.com: MX straight to Exchange Online, no gateway; all is well.",
        "northwind-exo-direct.yaml",
        "carol@northwind.com",
        Expectation("healthy"),
    ),
)

_SMTP: tuple[Scenario, ...] = (
    _contoso(
        "gateway-port-closed",
        "Nothing listens on port 25 of either Proofpoint host: every connection is refused.",
        Expectation("fault", "proofpoint", "SMTP_CONNECT_REFUSED"),
        smtp=_gateway(listening=False),
    ),
    _contoso(
        "gateway-banner-421",
        "Both Proofpoint hosts greet with 421: service not available.",
        Expectation("fault", "proofpoint", "SMTP_BANNER_REJECTED"),
        smtp=_gateway(banner="421 4.3.2 {host} Service not available, closing channel"),
    ),
    _contoso(
        "gateway-tarpit",
        "Both Proofpoint hosts accept the connection and never say a word.",
        Expectation("fault", "proofpoint", "SMTP_BANNER_TIMEOUT"),
        smtp=_gateway(banner=None),
    ),
    _contoso(
        "gateway-no-starttls",
        "The Proofpoint hosts do not offer STARTTLS: mail arrives in clear text, or not at "
        "all from senders that require TLS.",
        Expectation("degraded", "proofpoint", "SMTP_STARTTLS_MISSING"),
        smtp=_gateway(starttls=False),
    ),
    _contoso(
        "gateway-cert-expired",
        "The Proofpoint hosts present a certificate that expired two days ago.",
        Expectation("degraded", "proofpoint", "SMTP_TLS_CERT_EXPIRED"),
        smtp=_gateway(certificate="expired"),
    ),
    _contoso(
        "gateway-cert-wrong-name",
        "The Proofpoint hosts present a valid certificate issued for another name.",
        Expectation("degraded", "proofpoint", "SMTP_TLS_CERT_NAME_MISMATCH"),
        smtp=_gateway(certificate="wrong-name"),
    ),
    _contoso(
        "gateway-rcpt-unknown",
        "Proofpoint rejects alice@contoso.com with 550 5.1.1: she is not in its user list.",
        Expectation("fault", "proofpoint", "PP_RECIPIENT_UNKNOWN"),
        smtp=_gateway(rcpt_reply="550 5.1.1 <alice@contoso.com>... User unknown"),
    ),
    _contoso(
        "gateway-greylisting",
        "Proofpoint answers 451 (try again later) to the recipient: mail is delayed.",
        Expectation("degraded", "proofpoint", "SMTP_RCPT_DEFERRED"),
        smtp=_gateway(rcpt_reply="451 4.7.1 Greylisted, please try again later"),
    ),
    _contoso(
        "gateway-one-host-down",
        "mx0b-001234.pphosted.com refuses connections; mx0a still works.",
        Expectation("degraded", "proofpoint", "SMTP_SOME_HOSTS_DOWN"),
        smtp={"mx0b-001234.pphosted.com": SmtpScript(listening=False)},
    ),
    _northwind_edge(
        "exo-edge-dbeb-reject",
        "northwind.com (no gateway): Exchange Online rejects carol with 550 5.4.1, "
        "Directory-Based Edge Blocking.",
        Expectation("fault", "exchange-online", "EXO_EDGE_RECIPIENT_UNKNOWN"),
        EXO_DBEB,
    ),
    _northwind_edge(
        "exo-edge-connector-reject",
        "northwind.com: Exchange Online refuses with 5.7.64 TenantAttribution although the "
        "topology declares no connector restriction.",
        Expectation("fault", "exchange-online", "EXO_EDGE_CONNECTOR_REJECTED"),
        EXO_ATTRIBUTION,
    ),
    _contoso(
        "observer-port25-blocked",
        "This network blocks outbound port 25: no SMTP host can be reached from here.",
        Expectation("inconclusive", "observer", "OBSERVER_PORT25_BLOCKED"),
        port25_blocked=True,
    ),
)

_CAROL = "carol@fabrikam.example"
_EARLIER = LabMessage("orders@fabrikam-supplier.example", "Purchase order", 180)


def _journey(name: str, description: str, expect: Expectation, carol: LabMessage,
             **changes: Any) -> Scenario:
    """A contoso world whose mail log holds carol's message to alice (the demo follows
    it, as ``triage --from carol@fabrikam.example``) after one delivered earlier."""
    return dataclasses.replace(_contoso(name, description, expect),
                               messages=(_EARLIER, carol), sender=_CAROL, **changes)


#: Following one message across the tiers (the journey), and the verdicts it decides.
_JOURNEYS: tuple[Scenario, ...] = (
    _journey(
        "journey-delivered",
        "carol's message to alice: received and relayed by Proofpoint, delivered to the "
        "inbox by Exchange Online; the journey shows each hop with its time.",
        Expectation("healthy"),
        LabMessage(_CAROL, "Invoice 4471", 12),
    ),
    _journey(
        "exo-junked",
        "Exchange Online filtered carol's message as spam (SCL 5, SFV:SPM) and moved it to "
        "Junk Email: the path is healthy, the message was diverted.",
        Expectation("degraded", _EXO_TIER, "EXO_TRACE_FILTERED_AS_SPAM"),
        LabMessage(_CAROL, "Invoice 4471", 12, tenant="filteredAsSpam", junk=True, scl=5,
                   sfv="SPM"),
    ),
    _journey(
        "pp-onward-deferred",
        "Proofpoint accepted carol's message; Exchange Online answers 451 4.7.500 Server "
        "busy when Proofpoint passes it on: delayed at exchange-online.",
        Expectation("degraded", _EXO_TIER, "PP_ONWARD_DELIVERY_DEFERRED"),
        LabMessage(_CAROL, "Invoice 4471", 12, gateway="deferred", tenant=None,
                   reply="451 4.7.500 Server busy. Please try again later from "
                         "[192.0.2.25]. (S77719) [BN8NAM12FT046.eop-nam12.prod.protection"
                         ".outlook.com]"),
    ),
    _journey(
        "pp-quarantined-phish",
        "Proofpoint quarantined carol's message in its Phish folder (Smart Search and the "
        "quarantine list, which is asked folder by folder as the topology declares).",
        Expectation("fault", "proofpoint", "PP_MESSAGE_QUARANTINED"),
        LabMessage(_CAROL, "Invoice 4471", 12, gateway="quarantined", folder="Phish",
                   rule="phish.policy_phish", tenant=None),
        topology_settings={("proofpoint", "api"): {"quarantine_folders": [
            "Quarantine", "Phish"]}},
    ),
    _contoso(
        "mx-one-host-cname",
        "contoso.com's only MX is an alias (CNAME, forbidden by RFC 2181 §10.3) of one of "
        "the two Proofpoint hosts: mail flows, the gateway's redundancy is gone.",
        Expectation("degraded", "public-dns", "DNS_MX_EXPECTED_HOST_MISSING"),
        _contoso_mx("10 mail.contoso.com."),
        ZoneEdit("contoso.com", "mail", "CNAME", ("mx0a-001234.pphosted.com.",)),
    ),
    dataclasses.replace(_contoso(
        "tenant-untested",
        "The tenant's Graph credential is not in the environment: Exchange Online's "
        "records cannot be read, so the triage cannot call it healthy (exit 3).",
        Expectation("inconclusive", _EXO_TIER, "EXO_GRAPH_NOT_CONFIGURED")),
        withheld=frozenset({"MAILTRACE_LAB_GRAPH_TOKEN"})),
)

# --- litware.com: Exchange hybrid behind Exchange Online's DANE host -------------------------

_LITWARE = "litware-hybrid.yaml"
_DANA = "dana@litware.com"  # her mailbox is on Exchange Server on-premises
_LITWARE_EDGE = "litware-com.l-v1.mx.microsoft"
_LITWARE_ONPREM = "mail.litware.com"
#: What Graph says of a user synchronized from on-premises whose mailbox is on Exchange
#: Server: no Exchange Online plan, no mailbox (404 MailboxNotEnabledForRESTAPI), and in
#: message trace each message handed to the outbound connector to on-premises.
_ONPREM_USER = TenantFaults(
    user={"onPremisesSyncEnabled": True, "assignedPlans": [], "provisionedPlans": [],
          "proxyAddresses": [f"SMTP:{_DANA}", "smtp:dana@litware.mail.onmicrosoft.com"]},
    mailbox_missing=True,
    traces=({"status": "delivered", "subject": "Quarterly report", "events": [
        ("Send external", f"Message sent to {_LITWARE_ONPREM} at 127.0.10.25 using TLS1.2 "
                          "with AES256 (connector Outbound to "
                          "6f1a0c2e-9b8d-4c3f-a7e5-2d9b1e4f8a60)")]},),
)


def _litware(name: str, description: str, expect: Expectation, **more: Any) -> Scenario:
    return Scenario(name, description, _LITWARE, _DANA, expect,
                    tenant=more.pop("tenant", _ONPREM_USER), **more)


def _onprem(**changes: Any) -> dict[str, SmtpScript]:
    return {_LITWARE_ONPREM: dataclasses.replace(SMTP_HOSTS[_LITWARE_ONPREM], **changes)}


# --- adatum.com: Mimecast in front of Exchange Online -------------------------------------

_ADATUM = "adatum-mimecast-exo.yaml"
_MIMECAST_HOSTS = ("eu-smtp-inbound-1.mimecast.com", "eu-smtp-inbound-2.mimecast.com")
#: Mimecast's recipient validation refusing an address (its documented reply, with the
#: link and reference it appends).
MIMECAST_INVALID = ("550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 "
                    "[kcQ1mW0jNWiB3uA8rTlQbg.eu213]")


def _mimecast(**changes: Any) -> dict[str, SmtpScript]:
    return {h: dataclasses.replace(SMTP_HOSTS[h], **changes) for h in _MIMECAST_HOSTS}


_LAYERS: tuple[Scenario, ...] = (
    _contoso(
        "dnssec-bogus",
        "contoso.com's signatures expired yesterday: validating resolvers answer SERVFAIL, "
        "a non-validating one still answers.",
        Expectation("fault", "public-dns", "DNSSEC_RRSIG_EXPIRED"),
        dnssec={"contoso.com": "expired-rrsig"}, validating_resolver=True,
    ),
    _litware(
        "hybrid-user-on-prem",
        "litware.com (Exchange hybrid): dana's mailbox is on Exchange Server, reached through "
        "Exchange Online's connector; all is well (DNSSEC and inbound DANE included).",
        Expectation("healthy"),
        validating_resolver=True,
    ),
    _litware(
        "dane-mismatch",
        "The TLSA record of litware.com's Exchange Online host names a key its certificate "
        "no longer has: DANE-aware senders refuse it.",
        Expectation("fault", "exchange-online", "DANE_TLSA_MISMATCH"),
        tlsa={_LITWARE_EDGE: "stale"},
    ),
    _litware(
        "onprem-cert-name-mismatch",
        "mail.litware.com presents a certificate for another name than the hybrid connector's "
        "TlsDomain: Exchange Online cannot hand mail to on-premises.",
        Expectation("fault", "onprem", "ONPREM_CERT_NAME_MISMATCH"),
        smtp=_onprem(certificate="wrong-name"),
    ),
    _litware(
        "onprem-down",
        "Nothing listens on port 25 of mail.litware.com: mail for on-premises mailboxes "
        "queues in Exchange Online.",
        Expectation("fault", "onprem", "SMTP_CONNECT_REFUSED"),
        smtp=_onprem(listening=False),
        tenant=dataclasses.replace(_ONPREM_USER, traces=({
            "status": "pending", "subject": "Quarterly report", "events": [
                ("Defer", "451 4.4.0 Primary target IP address responded with: \"421 4.4.1 "
                          "Connection refused.\" Attempted failover to alternate host, but "
                          "that did not succeed. Either there are no alternate hosts, or "
                          "delivery failed to all alternate hosts. The last endpoint "
                          "attempted was 127.0.10.25:25")]},)),
    ),
    Scenario(
        "onprem-down-cloud-mailbox",
        "mail.litware.com is down as in onprem-down, but erin's mailbox is in Exchange "
        "Online: her mail is delivered; mail for on-premises mailboxes is not.",
        _LITWARE, "erin@litware.com",
        Expectation("degraded", "onprem", "SMTP_CONNECT_REFUSED"),
        smtp=_onprem(listening=False),
    ),
    Scenario(
        "mimecast-healthy",
        "adatum.com: MX to Mimecast (EU), Mimecast relays to Exchange Online; all is well.",
        _ADATUM, "erin@adatum.com", Expectation("healthy"),
    ),
    Scenario(
        "mimecast-rcpt-rejected",
        "Mimecast rejects erin@adatum.com: 550 Invalid Recipient (its recipient validation "
        "does not know her).",
        _ADATUM, "erin@adatum.com",
        Expectation("fault", "mimecast", "MC_RECIPIENT_INVALID"),
        smtp=_mimecast(rcpt_reply=MIMECAST_INVALID),
    ),
)

SCENARIOS: dict[str, Scenario] = {scenario.name: scenario
                                  for scenario in (*_ALL, *_SMTP, *_JOURNEYS, *_LAYERS)}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(name, sorted(SCENARIOS)) from None
