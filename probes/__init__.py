"""The probe catalog: every probe mailtrace can run, by tier kind.

Tags, levels, messages and remediation live in ``catalog/*.yaml`` beside this file.
"""

from __future__ import annotations

from mailtrace.engine.probe import Probe
from probes import auth
from probes.dns import consistency, delegation, mx, observer
from probes.exo import domain, health, mailtips, recipient, rules, trace
from probes.smtp import exo_edge, gateway, port25

ALL: tuple[Probe, ...] = (
    observer.PROBE, delegation.PROBE, mx.PROBE, consistency.PROBE,
    port25.PROBE, gateway.PROBE, exo_edge.PROBE,
)
ALL += (auth.RECORDS, auth.MTA_STS, auth.MX_CUTOVER)
# The recipient lookup heads the tenant's longest chain of Graph calls: asked first.
ALL += (recipient.PROBE, rules.PROBE, mailtips.PROBE, domain.PROBE, health.PROBE, trace.PROBE)
