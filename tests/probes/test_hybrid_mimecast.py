"""Exchange hybrid and Mimecast, pure: the on-premises tier as Exchange Online's connector
meets it, a mailbox's place from Graph's data, message-trace hand-offs, and Mimecast's
documented reply families."""

from __future__ import annotations

import dataclasses

import pytest

from mailtrace.clients.smtp import Outcome, TlsInfo
from mailtrace.core.journey import Event
from mailtrace.probes.exo import hybrid, recipient
from mailtrace.probes.exo.directory import DirectoryObject, Lookup, Plan
from mailtrace.probes.smtp import gateway, onprem
from mailtrace.probes.smtp.hop import HopObservation, HostProbe
from tests.support.builders import addresses, cert, dialogue

ONPREM = "mail.litware.com"
DANA = "dana@litware.com"


def onprem_hop(*dialogues, tls_name: str | None = ONPREM,
               hosts: tuple[str, ...] = (ONPREM,)) -> HopObservation:
    probes = tuple(HostProbe(h, addresses(h, "127.0.10.25"),
                             tuple(d for d in dialogues if d.host == h)) for h in hosts)
    return HopObservation("onprem", "exchange-onprem", None, DANA, probes, tls_name=tls_name)


def with_cert(host: str = ONPREM, **kw) -> object:
    d = dialogue(host)
    assert d.tls is not None
    d.tls = dataclasses.replace(d.tls, cert=cert(host, **kw))
    return d


def got(findings) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for f in findings:
        out.setdefault(f.tag, f.args)
    return out


# --- the on-premises tier -------------------------------------------------------------------

def test_the_connectors_name_on_a_trusted_certificate_passes() -> None:
    found = got(onprem.evaluate(onprem_hop(with_cert())))
    assert found["ONPREM_TLS_OK"]["expected"] == ONPREM
    assert "SMTP_RCPT_ACCEPTED" in found


def test_a_wildcard_certificate_carries_the_name() -> None:
    d = with_cert(names=("*.litware.com",))
    assert "ONPREM_TLS_OK" in got(onprem.evaluate(onprem_hop(d, tls_name="hybrid.litware.com")))


def test_another_name_is_what_exchange_online_refuses() -> None:
    d = with_cert(names=("mx.wrong-name.example",))
    found = got(onprem.evaluate(onprem_hop(d)))
    assert found["ONPREM_CERT_NAME_MISMATCH"]["expected"] == ONPREM
    assert "mx.wrong-name.example" in found["ONPREM_CERT_NAME_MISMATCH"]["detail"]
    # the connector checks its TlsDomain: the generic host-name check stays out
    assert "SMTP_TLS_CERT_NAME_MISMATCH" not in found


@pytest.mark.parametrize(("kw", "words"), [
    ({"expired": True}, "expired"),
    ({"chain_error": "self-signed certificate"}, "does not validate"),
])
def test_an_invalid_certificate(kw: dict, words: str) -> None:
    found = got(onprem.evaluate(onprem_hop(with_cert(**kw))))
    assert words in found["ONPREM_CERT_INVALID"]["detail"]


def test_no_starttls_and_a_failed_handshake() -> None:
    for tls in (False, TlsInfo(offered=True, error="handshake failed: no shared cipher")):
        found = got(onprem.evaluate(onprem_hop(dialogue(ONPREM, tls=tls))))
        assert "ONPREM_TLS_UNAVAILABLE" in found


def test_one_bad_host_of_two_is_partial() -> None:
    other = "mail2.litware.com"
    found = got(onprem.evaluate(onprem_hop(
        with_cert(), with_cert(other, names=("old.litware.com",)),
        hosts=(ONPREM, other), tls_name="*.litware.com")))
    assert "ONPREM_TLS_OK" in found  # a TlsDomain of *.litware.com accepts both
    found = got(onprem.evaluate(onprem_hop(
        with_cert(), with_cert(other, names=("mail2.fabrikam.example",)),
        hosts=(ONPREM, other))))
    assert found["ONPREM_SOME_HOSTS_TLS_FAIL"]["hosts"] == f"{other} [127.0.2.1]"


@pytest.mark.parametrize(("reply", "tag"), [
    ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     "ONPREM_RECIPIENT_UNKNOWN"),
    ("550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
     "ONPREM_DOMAIN_NOT_ACCEPTED"),
    ("530 5.7.1 Client was not authenticated", "ONPREM_ANONYMOUS_REFUSED"),
])
def test_exchange_servers_own_replies(reply: str, tag: str) -> None:
    d = with_cert()
    d.rcpt = dialogue(ONPREM, rcpt=reply).rcpt  # type: ignore[attr-defined]
    assert got(onprem.evaluate(onprem_hop(d)))[tag]["host"] == ONPREM


def test_a_host_that_is_down_is_no_tls_finding() -> None:
    down = dialogue(ONPREM, outcome=Outcome.REFUSED, phase="connect")
    found = got(onprem.evaluate(onprem_hop(down)))
    assert "SMTP_CONNECT_REFUSED" in found and not any(t.startswith("ONPREM_") for t in found)


# --- Mimecast's replies ---------------------------------------------------------------------

MC = "eu-smtp-inbound-1.mimecast.com"


@pytest.mark.parametrize(("reply", "tag"), [
    ("550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550 [a.eu213]",
     "MC_RECIPIENT_INVALID"),
    ("501 Invalid Address", "MC_RECIPIENT_INVALID"),
    ("451 Open relay not allowed - https://community.mimecast.com/docs/DOC-1369#451",
     "MC_RELAY_BLOCKED"),
    ("550 Relaying blocked", "MC_RELAY_BLOCKED"),
    ("550 Administrative prohibition - envelope blocked - https://community.mimecast.com",
     "MC_ENVELOPE_REJECTED"),
    ("550 Envelope rejected - block policy for envelope from address", "MC_ENVELOPE_REJECTED"),
    ("550 SPF Sender Invalid - envelope rejected", "MC_SENDER_AUTH_REJECTED"),
    ("550 DMARC Sender Invalid - envelope rejected", "MC_SENDER_AUTH_REJECTED"),
    ("550 Anti-Spoofing policy - inbound not allowed", "MC_ANTI_SPOOFING_REJECTED"),
    ("451 Account inbounds disabled", "MC_ACCOUNT_INBOUND_DISABLED"),
    ("553 This route requires encryption (TLS)", "MC_TLS_REQUIRED"),
    ("550 Message bounced due to content examination policy", "MC_POLICY_REJECTED"),
])
def test_mimecast_reply_families(reply: str, tag: str) -> None:
    obs = HopObservation("mimecast", "mimecast", None, "erin@adatum.com",
                         (HostProbe(MC, addresses(MC, "127.0.5.21"),
                                    (dialogue(MC, rcpt=reply),)),))
    found = got(gateway.evaluate(obs))
    assert found[tag]["host"] == MC and found[tag]["reply"].startswith(reply.split()[0])


def test_mimecast_greylisting_and_reputation_are_read_as_such() -> None:
    def judge(**kw) -> dict:
        obs = HopObservation("mimecast", "mimecast", None, "erin@adatum.com",
                             (HostProbe(MC, addresses(MC, "127.0.5.21"),
                                        (dialogue(MC, **kw),)),))
        return got(gateway.evaluate(obs))

    assert "SMTP_RCPT_DEFERRED" in judge(rcpt="451 Internal resources are temporarily "
                                              "unavailable - https://community.mimecast.com")
    assert "OBSERVER_IP_BLOCKED" in judge(rcpt="550 Local CT IP Reputation - (reject)")


# --- where a mailbox lives -------------------------------------------------------------------

ROUTE = hybrid.OnPremRoute("onprem", (ONPREM,), ("litware.com",), "Outbound to litware")


def user(**kw) -> DirectoryObject:
    base = {"kind": "user", "id": "u1", "name": "Dana", "mail": DANA, "upn": DANA,
            "proxy_addresses": (f"SMTP:{DANA}",), "account_enabled": True}
    return DirectoryObject(**{**base, **kw})


def test_a_synchronized_user_without_a_cloud_mailbox_lives_on_premises() -> None:
    place = hybrid.mailbox_place(user(on_premises_sync=True), "MailboxNotEnabledForRESTAPI",
                                 (ROUTE,), DANA)
    assert place.on_premises and place.route == ROUTE
    cloud_only = hybrid.mailbox_place(user(on_premises_sync=None),
                                      "MailboxNotEnabledForRESTAPI", (ROUTE,), DANA)
    assert not cloud_only.on_premises
    has_mailbox = hybrid.mailbox_place(user(on_premises_sync=True), None, (ROUTE,), DANA)
    assert not has_mailbox.on_premises


def check(u: DirectoryObject, code: str | None, routes=(ROUTE,)) -> recipient.RecipientCheck:
    return recipient.RecipientCheck(Lookup(DANA, (u,)), "litware.onmicrosoft.com",
                                    no_mailbox=code, routes=routes)


def test_the_recipient_probe_routes_instead_of_blaming() -> None:
    synced = user(on_premises_sync=True, assigned_plans=())
    found = got(recipient.evaluate(check(synced, "MailboxNotEnabledForRESTAPI")))
    assert found == {"EXO_RECIPIENT_ON_PREMISES": found["EXO_RECIPIENT_ON_PREMISES"]}
    assert found["EXO_RECIPIENT_ON_PREMISES"]["tier"] == "onprem"
    undeclared = got(recipient.evaluate(check(synced, "MailboxNotEnabledForRESTAPI", ())))
    assert "EXO_RECIPIENT_ON_PREMISES_UNDECLARED" in undeclared
    licensed = user(assigned_plans=(Plan("exchange", "Enabled",
                                         "efb87545-963c-4e0d-99df-69c6916d9eb0"),))
    cloud = got(recipient.evaluate(check(licensed, "MailboxNotEnabledForRESTAPI")))
    assert "EXO_NO_MAILBOX" in cloud  # a cloud-only user with no mailbox is still one


@dataclasses.dataclass(frozen=True)
class Traced:
    message_id: str
    received: str | None
    sender: str
    subject: str
    events: tuple[dict, ...]


def test_a_send_external_to_the_smart_host_continues_the_journey_on_premises() -> None:
    sent = {"event": "Send external", "dateTime": "2026-12-07T08:00:00Z",
            "description": f"Message sent to {ONPREM} at 203.0.113.25 using TLS1.2"}
    messages = [Traced("m1", "2026-12-07T07:59:58Z", "carol@fabrikam.example", "Report",
                       ({"event": "Receive", "description": "Message received"}, sent)),
                Traced("m2", None, "x@example.com", "Hi",
                       ({"event": "Deliver", "description": "delivered to mailbox"},))]
    steps = hybrid.onprem_journey(messages, DANA, "exchange-online", (ROUTE,))
    assert [(s.tier, s.event) for s in steps] == [("exchange-online", Event.RELAYED),
                                                  ("onprem", Event.RECEIVED)]
    assert steps[0].message_id == "m1" and steps[0].at == "2026-12-07T08:00:00Z"


def test_a_handoff_named_by_connector_or_alone() -> None:
    by_connector = ({"event": "Transfer", "description": "to connector Outbound to litware"},)
    assert hybrid.handoff(by_connector, (ROUTE,)) is not None
    other = hybrid.OnPremRoute("onprem2", ("mail.other.example",), ("other.example",))
    anonymous = ({"event": "Send external", "description": "Message sent"},)
    assert hybrid.handoff(anonymous, (ROUTE,)) is not None  # one route: it is that one
    assert hybrid.handoff(anonymous, (ROUTE, other)) is None  # two: not said which
    assert hybrid.handoff(({"event": "Deliver", "description": "inbox"},), (ROUTE,)) is None


def test_mimecast_hosts_and_spf_include_are_recognized() -> None:
    from mailtrace.probes.auth.senders import declared_senders
    from mailtrace.topology import load_topology
    from mailtrace.topology.model import DnsTier, mimecast_region
    from tests.support.paths import ROOT

    assert mimecast_region("EU-smtp-inbound-2.mimecast.com.") == "eu"
    assert mimecast_region("za-smtp-inbound-1.mimecast.co.za") == "za"
    assert mimecast_region("mx0a-001234.pphosted.com") is None
    adatum = load_topology(ROOT / "topologies" / "adatum-mimecast-exo.yaml")
    dns_tier = adatum.tiers["public-dns"]
    assert isinstance(dns_tier, DnsTier)
    senders = {s.term: s.tier for s in declared_senders(adatum, dns_tier.expect)}
    assert senders == {"include:eu._netblocks.mimecast.com": "mimecast",
                       "include:spf.protection.outlook.com": "exchange-online"}
