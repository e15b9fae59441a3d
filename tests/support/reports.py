"""Hand-built triage reports: a verdict, a journey and an attention list as issue 13's
triage will fill them, for the renderings' tests (no lab, no sockets)."""

from __future__ import annotations

from mailtrace.core.evidence import ApiCall, DnsAnswer, SmtpDialogue
from mailtrace.core.findings import Attention, Finding, ProbeResult, Status, TierResult, Verdict
from mailtrace.core.journey import Event, JourneyStep
from mailtrace.probes.base import Target
from mailtrace.report.model import RunInfo, Timings, TriageReport
from mailtrace.topology import FlowGraph, load_topology
from tests.support.paths import ROOT

CONTOSO = ROOT / "topologies" / "contoso-proofpoint-exo.yaml"
RECIPIENT = "alice@contoso.com"


def _tier(tier_id: str, kind: str, status: Status, *findings: Finding,
          probe: str = "probe") -> TierResult:
    return TierResult(tier_id, kind, status, [ProbeResult(probe, tier_id, status,
                                                          list(findings))])


def mailbox_full_report() -> TriageReport:
    """Carol's message reached Exchange Online, which refused it: the mailbox is full. The
    gateway's certificate expires soon (attention); the journey shows where it stopped."""
    topology = load_topology(CONTOSO)
    dns_ev = DnsAnswer("ns1.contoso.com (127.0.1.1:53)", "authoritative", "contoso.com. MX",
                       "ANSWER", "NOERROR", ("AA",), answer=(
                           {"name": "contoso.com.", "type": "MX", "ttl": 3600,
                            "data": "10 mx0a-001234.pphosted.com."},))
    smtp_ev = SmtpDialogue("mx0a-001234.pphosted.com [127.0.2.1]:25", "127.0.0.1:2525",
                           "completed", "rcpt", ("0.4 ms S: 220 mx0a ESMTP",
                                                 "0.9 ms C: EHLO probe.example",
                                                 "1.2 ms S: 250-mx0a", "1.3 ms S: 250 SIZE"))
    api_ev = ApiCall("POST /v1.0/users/5f0a/getMailTips", 200, "microsoft-graph",
                     "get MailTips", 41.5, {"request_id": "req-1"},
                     {"mailboxFull": True, "emailAddress": {"address": RECIPIENT}})
    tiers = [
        _tier("observer", "observer", Status.PASS,
              Finding("OBSERVER_RESOLVER_OK", {"resolvers": "resolver 127.0.0.1:53"}, [dns_ev]),
              probe="dns.observer"),
        _tier("public-dns", "dns", Status.PASS,
              Finding("DNS_MX_OK", {"domain": "contoso.com", "mx": "10 mx0a-001234.pphosted.com"},
                      [dns_ev]), probe="dns.mx"),
        _tier("proofpoint", "proofpoint", Status.WARN,
              Finding("SMTP_TLS_CERT_EXPIRING", {"hosts": "mx0a-001234.pphosted.com",
                                                 "days_left": 9}, [smtp_ev]),
              Finding("SMTP_RCPT_ACCEPTED", {"host": "mx0a-001234.pphosted.com",
                                             "recipient": RECIPIENT,
                                             "reply": "250 2.1.5 Recipient OK"}, [smtp_ev]),
              probe="smtp.gateway"),
        _tier("exchange-online", "exchange-online", Status.FAIL,
              Finding("EXO_MAILBOX_FULL", {"address": RECIPIENT}, [api_ev]),
              probe="exo.mailtips"),
    ]
    verdict = Verdict(
        "fault", "exchange-online", "EXO_MAILBOX_FULL",
        f"Carol's message reached Exchange Online, which refused it: the mailbox of "
        f"{RECIPIENT} is full.",
        attention=[Attention("proofpoint", "SMTP_TLS_CERT_EXPIRING",
                             "The certificate of mx0a-001234.pphosted.com expires in 9 days")])
    journey = [
        JourneyStep("proofpoint", Event.RECEIVED, "accepted by rule system", "smart-search",
                    "2026-11-29T10:00:01Z", "<m1@fabrikam.example>", "carol@fabrikam.example",
                    RECIPIENT, "Quarterly report"),
        JourneyStep("proofpoint", Event.RELAYED, "250 2.6.0 queued as 4Zlab",
                    "smart-search", "2026-11-29T10:00:03Z", "<m1@fabrikam.example>"),
        JourneyStep("exchange-online", Event.FAILED, "550 5.2.2 mailbox full",
                    "message-trace", "2026-11-29T10:00:04Z", "<m1@fabrikam.example>"),
    ]
    run = RunInfo("2026-11-29T10:05:00Z", "mailtrace-diagnostics 0.1.0", "admin-laptop",
                  ("192.0.2.53:53", "[2001:db8::53]:53"), str(CONTOSO), "ab" * 32)
    return TriageReport(topology, FlowGraph(topology), Target("contoso.com", RECIPIENT), tiers,
                        verdict, 2345.0, Timings(), 17, journey, run=run)
