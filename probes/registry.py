"""Every probe mailtrace can run, by job: a triage's, and verify's and precheck's.

Tags, levels, messages and remediation live in ``catalog/*.yaml`` beside this file.
"""

from __future__ import annotations

from mailtrace.probes import auth
from mailtrace.probes.base import Probe
from mailtrace.probes.dns import consistency, delegation, dnssec, mx, observer
from mailtrace.probes.exo import directory, domain, health, mailtips, recipient, rules, trace
from mailtrace.probes.proofpoint import essentials, quarantine, smart_search, tap
from mailtrace.probes.smtp import exo_edge, gateway, onprem, port25

TRIAGE: tuple[Probe, ...] = (
    # the observer and public DNS (DNSSEC before the MX: a bogus domain fails every
    # validating lookup, and the broken link is the cause to name)
    observer.PROBE, delegation.PROBE, dnssec.PROBE, mx.PROBE, consistency.PROBE,
    # SMTP hops
    port25.PROBE, gateway.PROBE, exo_edge.PROBE, onprem.PROBE,
    # the gateway's own APIs
    smart_search.PROBE, quarantine.PROBE, essentials.ROUTING, essentials.USER, tap.PROBE,
    # the tenant through Graph: the recipient lookup heads its longest chain, asked first
    directory.PROBE, recipient.PROBE, rules.PROBE, mailtips.PROBE, domain.PROBE, health.PROBE,
    trace.PROBE,
)

#: What verify and precheck judge a domain's records with: SPF, DKIM, DMARC, MTA-STS,
#: TLS-RPT, and the MX as a triage judges it.
RECORDS: tuple[Probe, ...] = (auth.RECORDS, auth.MTA_STS, mx.PROBE)

#: Every probe, once: the catalog ``mailtrace probes`` lists and the tests check.
ALL: tuple[Probe, ...] = (*TRIAGE, *(p for p in RECORDS if p not in TRIAGE))
