"""The probe catalog: every probe mailtrace can run, by tier kind.

Tags, levels, messages and remediation live in ``catalog/*.yaml`` beside this file.
"""

from __future__ import annotations

from mailtrace.probes import auth
from mailtrace.probes.base import Probe
from mailtrace.probes.dns import consistency, delegation, mx, observer
from mailtrace.probes.exo import domain, health, mailtips, recipient, rules, trace
from mailtrace.probes.proofpoint import essentials, quarantine, smart_search, tap
from mailtrace.probes.smtp import exo_edge, gateway, port25

ALL: tuple[Probe, ...] = (
    # the observer and public DNS
    observer.PROBE, delegation.PROBE, mx.PROBE, consistency.PROBE,
    # SMTP hops
    port25.PROBE, gateway.PROBE, exo_edge.PROBE,
    # the gateway's own APIs
    smart_search.PROBE, quarantine.PROBE, essentials.ROUTING, essentials.USER, tap.PROBE,
    # the tenant through Graph: the recipient lookup heads its longest chain, asked first
    recipient.PROBE, rules.PROBE, mailtips.PROBE, domain.PROBE, health.PROBE, trace.PROBE,
    # mail authentication: verify and precheck only (kind mail-auth, never in a triage)
    auth.RECORDS, auth.MTA_STS, auth.MX_CUTOVER,
)
