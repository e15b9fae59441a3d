"""What the observer's own limits leave unjudged."""

from __future__ import annotations

from collections.abc import Iterable

from mailtrace.clients.dns import DnsObservation, Outcome
from mailtrace.probes.base import NotTested


def require_time(observations: Iterable[DnsObservation | None]) -> None:
    """A probe whose evidence includes a query the run's budget cut short judges nothing:
    with less time it might have seen anything (DESIGN: could not test is not failed)."""
    short = [o for o in observations if o is not None and o.outcome is Outcome.OUT_OF_TIME]
    if short:
        names = ", ".join(sorted({f"{o.qname} {o.qtype}" for o in short}))
        raise NotTested(f"the run's budget (--timeout) ran out before {names} could be asked")
