"""The probe catalog: every probe mailtrace can run, by tier kind.

Tags, levels, messages and remediation live in ``catalog/*.yaml`` beside this file.
"""

from __future__ import annotations

from mailtrace.engine.probe import Probe
from probes import auth
from probes.dns import consistency, delegation, mx, observer
from probes.proofpoint import essentials, quarantine, smart_search, tap
from probes.smtp import exo_edge, gateway, port25

ALL: tuple[Probe, ...] = (
    observer.PROBE, delegation.PROBE, mx.PROBE, consistency.PROBE,
    port25.PROBE, gateway.PROBE, exo_edge.PROBE,
    smart_search.PROBE, quarantine.PROBE, essentials.ROUTING, essentials.USER, tap.PROBE,
)
ALL += (auth.RECORDS, auth.MTA_STS, auth.MX_CUTOVER)
