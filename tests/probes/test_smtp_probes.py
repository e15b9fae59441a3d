"""The SMTP probes' reading of dialogues (pure, hand-built) and of the lab (end to end)."""

from __future__ import annotations

import dataclasses

import pytest

from mailtrace.clients.smtp import Outcome, TlsInfo
from mailtrace.lab.scenarios import SMTP_HOSTS
from mailtrace.lab.smtp_server import SmtpScript
from mailtrace.probes.smtp import exo_edge, gateway, port25
from mailtrace.probes.smtp.hop import HopObservation, HostProbe
from tests.support.builders import addresses, dialogue
from tests.support.labrun import finding, tags, triage, variant, verdict

MX0A, MX0B = "mx0a-001234.pphosted.com", "mx0b-001234.pphosted.com"
EDGE = "contoso-com.mail.protection.outlook.com"


def hop(*hosts: HostProbe, kind: str = "proofpoint", flavour: str | None = "pod",
        restricted_to: str | None = None) -> HopObservation:
    return HopObservation("gw", kind, flavour, "alice@contoso.com", hosts, restricted_to)


def host(name: str, *dialogues, ips: tuple[str, ...] = ("127.0.2.1",)) -> HostProbe:
    return HostProbe(name, addresses(name, *ips), tuple(dialogues))


def found(findings) -> dict[str, dict]:
    return {f.tag: f.args for f in findings}


def pod(**kw) -> list:
    return gateway.evaluate(hop(host(MX0A, dialogue(MX0A, banner="220 {host} ESMTP", **kw))))


# --- reachability -----------------------------------------------------------------------

@pytest.mark.parametrize(("outcome", "phase", "tag"), [
    (Outcome.REFUSED, "connect", "SMTP_CONNECT_REFUSED"),
    (Outcome.CONNECT_TIMEOUT, "connect", "SMTP_CONNECT_TIMEOUT"),
    (Outcome.NETWORK_ERROR, "connect", "SMTP_NETWORK_ERROR"),
    (Outcome.BANNER_TIMEOUT, "banner", "SMTP_BANNER_TIMEOUT"),
    (Outcome.REJECTED, "banner", "SMTP_BANNER_REJECTED"),
    (Outcome.REJECTED, "ehlo", "SMTP_EHLO_REJECTED"),
    (Outcome.TIMEOUT, "ehlo", "SMTP_COMMAND_TIMEOUT"),
    (Outcome.CLOSED, "ehlo", "SMTP_CONNECTION_DROPPED"),
    (Outcome.PROTOCOL_ERROR, "ehlo", "SMTP_PROTOCOL_ERROR"),
    (Outcome.TIMEOUT, "tls", "SMTP_COMMAND_TIMEOUT"),
])
def test_every_host_down_names_how(outcome, phase, tag):
    banner = "421 4.3.2 busy" if phase == "banner" else "220 {host} ESMTP pphosted.com"
    ehlo = "550 5.7.1 go away" if outcome is Outcome.REJECTED else "250 {host}"
    downs = [dialogue(h, outcome=outcome, phase=phase, banner=banner, ehlo=ehlo,
                      error="why") for h in (MX0A, MX0B)]
    findings = gateway.evaluate(hop(host(MX0A, downs[0]), host(MX0B, downs[1])))
    assert [f.tag for f in findings] == [tag]
    assert findings[0].args["hosts"] == f"{MX0A}, {MX0B}"
    assert len(findings[0].evidence) == 2


def test_some_hosts_down_is_partial_and_names_both_sides():
    up = dialogue(MX0A, banner="220 {host} ESMTP")
    down = dialogue(MX0B, outcome=Outcome.REFUSED, phase="connect", error="connection refused")
    got = found(gateway.evaluate(hop(host(MX0A, up), host(MX0B, down))))
    assert got["SMTP_SOME_HOSTS_DOWN"]["hosts"] == MX0B
    assert got["SMTP_SOME_HOSTS_DOWN"]["up"] == MX0A
    assert "SMTP_RCPT_ACCEPTED" in got


def test_an_address_down_on_a_working_host_and_no_route_is_the_observer():
    good = dialogue(MX0A, "127.0.2.1", banner="220 {host} ESMTP")
    bad = dialogue(MX0A, "127.0.2.9", outcome=Outcome.CONNECT_TIMEOUT, phase="connect")
    v6 = dialogue(MX0A, "2001:db8::25", outcome=Outcome.NO_ROUTE, phase="connect")
    got = found(gateway.evaluate(hop(host(MX0A, good, bad, v6))))
    assert got["SMTP_SOME_ADDRESSES_DOWN"]["addresses"] == f"{MX0A} [127.0.2.9]"
    assert got["OBSERVER_NO_ROUTE"]["servers"] == f"{MX0A} [2001:db8::25]"


def test_an_unresolvable_declared_host_is_named():
    ok = dialogue(MX0A, banner="220 {host} ESMTP")
    missing = HostProbe(MX0B, addresses(MX0B), ())
    got = found(gateway.evaluate(hop(host(MX0A, ok), missing)))
    assert got["SMTP_HOST_UNRESOLVABLE"] == {"hosts": MX0B}
    assert got["SMTP_SOME_HOSTS_DOWN"]["hosts"] == MX0B


@pytest.mark.parametrize("reply", [
    "554 Blocked - see https://ipcheck.proofpoint.com/?ip=203.0.113.7",
    "550 5.7.1 Service unavailable; client [203.0.113.7] blocked using Proofpoint Dynamic "
    "Reputation",
])
def test_a_reputation_block_is_about_the_observer(reply):
    d = dialogue(MX0A, outcome=Outcome.REJECTED, phase="banner", banner=reply)
    assert [f.tag for f in gateway.evaluate(hop(host(MX0A, d)))] == ["OBSERVER_IP_BLOCKED"]


def test_exchange_online_banned_sending_ip_is_about_the_observer():
    d = dialogue(EDGE, rcpt="550 5.7.606 Access denied, banned sending IP [203.0.113.7]")
    findings = exo_edge.evaluate(hop(host(EDGE, d), kind="exchange-online", flavour=None))
    assert [f.tag for f in findings] == ["OBSERVER_IP_BLOCKED"]


# --- TLS posture -------------------------------------------------------------------------

def test_tls_problems_each_name_their_hosts():
    from tests.support.builders import cert
    old = TlsInfo(True, True, "TLSv1.1", "AES128-SHA", cert=cert(MX0A, days_left=5))
    untrusted = TlsInfo(True, True, "TLSv1.3", "x",
                        cert=cert(MX0B, chain_error="self-signed certificate"))
    got = found(gateway.evaluate(hop(host(MX0A, dialogue(MX0A, tls=old)),
                                     host(MX0B, dialogue(MX0B, tls=untrusted)))))
    assert got["SMTP_TLS_OLD_VERSION"] == {"hosts": f"{MX0A} [127.0.2.1]", "version": "TLSv1.1"}
    assert got["SMTP_TLS_CERT_EXPIRING"]["days_left"] == "5"
    assert got["SMTP_TLS_CERT_UNTRUSTED"]["error"] == "self-signed certificate"
    assert "SMTP_TLS_OK" not in got


def test_a_failed_handshake_is_named_with_its_error():
    tls = TlsInfo(True, False, error="handshake failed: wrong version number")
    got = found(gateway.evaluate(hop(host(MX0A, dialogue(MX0A, tls=tls)))))
    assert got["SMTP_TLS_HANDSHAKE_FAILED"]["error"] == "handshake failed: wrong version number"
    assert "SMTP_TLS_OK" not in got


def test_tls_fine_everywhere_is_one_ok_finding():
    got = found(pod())
    assert got["SMTP_TLS_OK"] == {"hosts": MX0A, "versions": "TLSv1.3", "days_left": 60}


# --- what the recipient gets -----------------------------------------------------------

@pytest.mark.parametrize(("rcpt", "tag"), [
    ("250 2.1.5 Recipient OK", "SMTP_RCPT_ACCEPTED"),
    ("451 4.7.1 Greylisted", "SMTP_RCPT_DEFERRED"),
    ("550 5.1.1 <alice@contoso.com>... User unknown", "PP_RECIPIENT_UNKNOWN"),
    ("550 Recipient address rejected: User unknown in relay recipient table",
     "PP_RECIPIENT_UNKNOWN"),
    ("554 5.7.1 <alice@contoso.com>: Relay access denied", "SMTP_RCPT_RELAY_DENIED"),
    ("550 5.7.1 Message refused by policy", "SMTP_RCPT_REJECTED"),
])
def test_proofpoint_rcpt_answers(rcpt, tag):
    assert tag in found(pod(rcpt=rcpt))


def test_a_generic_gateway_reads_5_1_1_without_proofpoint_meaning():
    d = dialogue("gw1.contoso.com", rcpt="550 5.1.1 no such user")
    findings = gateway.evaluate(hop(host("gw1.contoso.com", d), kind="smtp-gateway",
                                    flavour=None))
    assert "SMTP_RCPT_UNKNOWN" in found(findings)


def test_a_refused_sender_means_the_recipient_was_not_asked():
    d = dialogue(MX0A, outcome=Outcome.REJECTED, phase="mail", mail="553 5.1.8 sender refused",
                 rcpt=None)
    got = found(gateway.evaluate(hop(host(MX0A, d))))
    assert got["SMTP_MAIL_FROM_REJECTED"]["reply"] == "553 5.1.8 sender refused"


def test_hosts_that_disagree_are_named():
    a = dialogue(MX0A, rcpt="250 ok")
    b = dialogue(MX0B, address="127.0.2.2", rcpt="550 5.1.1 unknown")
    got = found(gateway.evaluate(hop(host(MX0A, a), host(MX0B, b, ips=("127.0.2.2",)))))
    assert got["SMTP_HOSTS_ANSWER_DIFFERENTLY"]["others"] == (
        f"{MX0B} [127.0.2.2]: 550 5.1.1 unknown")


@pytest.mark.parametrize(("banner", "tag", "args"), [
    ("220 mx1-us1.ppe-hosted.com PPE Hosted ESMTP Server", "PP_BANNER_FLAVOUR_MISMATCH",
     {"declared": "pod", "seen": "essentials"}),
    ("220 mail.contoso.com Microsoft ESMTP MAIL Service ready", "PP_BANNER_NOT_PROOFPOINT",
     {"banner": "220 mail.contoso.com Microsoft ESMTP MAIL Service ready"}),
])
def test_proofpoint_identity_against_the_declared_flavour(banner, tag, args):
    d = dialogue("gw.contoso.com", banner=banner, ehlo="250 gw")
    got = found(gateway.evaluate(hop(host("gw.contoso.com", d))))
    assert args.items() <= got[tag].items()


# --- the Exchange Online edge ---------------------------------------------------------

@pytest.mark.parametrize(("rcpt", "restricted", "tag"), [
    ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", None,
     "EXO_EDGE_RECIPIENT_UNKNOWN"),
    ("550 5.4.1 Relay Access Denied ATTR35", None, "EXO_EDGE_DOMAIN_NOT_ACCEPTED"),
    ("550 5.7.64 TenantAttribution; Relay Access Denied", None, "EXO_EDGE_CONNECTOR_REJECTED"),
    ("550 5.7.51 TenantInboundAttribution; Rejecting", "proofpoint",
     "EXO_EDGE_RESTRICTED_TO_GATEWAY"),
    ("250 2.1.5 Recipient OK", "proofpoint", "EXO_EDGE_ACCEPTS_FROM_ANYONE"),
    ("250 2.1.5 Recipient OK", None, "SMTP_RCPT_ACCEPTED"),
])
def test_exchange_online_edge_answers(rcpt, restricted, tag):
    d = dialogue(EDGE, rcpt=rcpt)
    obs = hop(host(EDGE, d), kind="exchange-online", flavour=None, restricted_to=restricted)
    assert tag in found(exo_edge.evaluate(obs))


def test_a_connector_refusal_at_mail_from_reads_the_same():
    d = dialogue(EDGE, outcome=Outcome.REJECTED, phase="mail", rcpt=None,
                 mail="550 5.7.51 TenantInboundAttribution; Rejecting")
    obs = hop(host(EDGE, d), kind="exchange-online", flavour=None, restricted_to="proofpoint")
    assert "EXO_EDGE_RESTRICTED_TO_GATEWAY" in found(exo_edge.evaluate(obs))


# --- the observer's port 25 --------------------------------------------------------------

def test_port25_ok_and_blocked():
    ok = dialogue(EDGE)
    refused = dialogue(MX0A, outcome=Outcome.REFUSED, phase="connect")
    assert found(port25.evaluate(port25.Port25Check((refused, ok))))["OBSERVER_PORT25_OK"] == {
        "host": f"{EDGE} [127.0.2.1]:25"}
    blocked = found(port25.evaluate(port25.Port25Check((refused,))))
    assert blocked["OBSERVER_PORT25_BLOCKED"]["tried"] == f"{MX0A} [127.0.2.1]:25 refused"


# --- end to end, beyond the named scenarios ------------------------------------------

def test_a_reference_host_proves_port25_when_every_declared_host_is_closed():
    """With every declared host closed, a --smtp-reference that answers turns 'looks
    blocked' into the tier's own fault."""
    reference = "northwind-com.mail.protection.outlook.com"  # not a host of contoso's
    closed = {h: dataclasses.replace(s, listening=False) for h, s in SMTP_HOSTS.items()
              if h != reference}
    scenario = variant("healthy", smtp=closed)
    report = triage(scenario, smtp_references=(reference,))
    assert verdict(report) == ("fault", "proofpoint", "SMTP_CONNECT_REFUSED")
    assert finding(report, "OBSERVER_PORT25_OK").args["host"].startswith(reference)
    report = triage(scenario)
    assert verdict(report) == ("inconclusive", "observer", "OBSERVER_PORT25_BLOCKED")


def test_the_gateway_blocking_this_machine_is_inconclusive_not_a_fault():
    blocked = SmtpScript(banner="554 Blocked - see https://ipcheck.proofpoint.com/?ip=127.0.0.1")
    report = triage(variant("healthy", smtp={MX0A: blocked, MX0B: blocked}))
    assert verdict(report) == ("inconclusive", "observer", "OBSERVER_IP_BLOCKED")


def test_the_edge_accepting_anyone_despite_the_declared_restriction_is_a_warning():
    report = triage(variant("healthy", smtp={EDGE: SmtpScript()}))
    assert verdict(report)[0] == "healthy"
    assert "EXO_EDGE_ACCEPTS_FROM_ANYONE" in tags(report, "exchange-online")


def test_hosts_probe_in_mx_preference_order():
    from mailtrace.lab.scenarios import ZoneEdit
    edit = ZoneEdit("contoso.com", "@", "MX", (f"20 {MX0A}.", f"10 {MX0B}."))
    report = triage(variant("healthy", zone_edits=(edit,)))
    ev = finding(report, "SMTP_TLS_OK").args["hosts"]
    assert ev == f"{MX0B}, {MX0A}"


def test_the_text_report_shows_what_decided_a_transcript_unless_verbose():
    from mailtrace.report import text
    report = triage("gateway-cert-expired")
    short, full = text.render(report), text.render(report, verbose=True)
    # the TLS events and the last exchange; the EHLOs and the goodbye are counted
    assert "certificate not valid (certificate has expired)" in short
    assert "C: RCPT TO:<alice@contoso.com>" in short and "S: 250 2.1.5" in short
    assert "C: EHLO" not in short and "C: QUIT" not in short
    assert "more lines of the dialogue (--verbose)" in short
    assert "more lines" not in full and "S: 250-PIPELINING" in full and "C: QUIT" in full


@pytest.mark.parametrize(("outcome", "why"), [
    (Outcome.OUT_OF_TIME, "budget ended"), (Outcome.NO_ROUTE, "no route")])
def test_no_host_judged_is_not_tested_never_a_pass(outcome, why):
    from mailtrace.probes.base import NotTested
    d = dialogue(MX0A, outcome=outcome, phase="banner")
    with pytest.raises(NotTested, match=why):
        gateway.evaluate(hop(host(MX0A, d)))


def test_a_tarpit_outlasting_the_run_budget_is_not_a_healthy_gateway():
    from mailtrace.clients.smtp import SmtpTimeouts
    report = triage("gateway-tarpit", timeout=3.0,
                    smtp_timeouts=SmtpTimeouts(connect=2, banner=10, command=2, tls=2))
    gateway_tier = next(t for t in report.tiers if t.id == "proofpoint")
    assert gateway_tier.coverage != "full"  # never a silent pass
    assert "proofpoint" in [n["tier"] for n in report.verdict.not_tested]
    assert report.verdict.status != "healthy"
