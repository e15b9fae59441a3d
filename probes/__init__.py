"""The probe catalog: every probe mailtrace can run, by tier kind.

Tags, levels, messages and remediation live in ``catalog/*.yaml`` beside this file.
"""

from __future__ import annotations

from mailtrace.engine.probe import Probe
from probes.dns import consistency, delegation, mx, observer
from probes.exo import domain, health, mailtips, recipient, rules, trace

ALL: tuple[Probe, ...] = (observer.PROBE, delegation.PROBE, mx.PROBE, consistency.PROBE)
# The recipient lookup heads the tenant's longest chain of Graph calls: asked first.
ALL += (recipient.PROBE, rules.PROBE, mailtips.PROBE, domain.PROBE, health.PROBE, trace.PROBE)
