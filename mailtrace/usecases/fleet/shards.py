"""A shard: a slice of the domain list, verified from one vantage by one Dask worker.

:func:`run_shard` is what a worker runs (this module imports no Dask: the function
travels by name, and the worker imports it from its own mailtrace). It verifies the
shard's domains concurrently in the worker's process, exactly as the local fleet does
(:func:`~mailtrace.usecases.fleet.verifying.verify_all`), with the vantage's resolver
panel, or the worker machine's own resolvers when the vantage names none. A shard is
idempotent: run twice (its worker died and the scheduler ran it elsewhere), it asks the
same questions and gives the same kind of answer, and the client reports each domain
once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mailtrace.topology.model import Topology
from mailtrace.usecases.fleet.verifying import FleetSettings, Vantage, Work, verify_all


class VersionMismatch(RuntimeError):
    """The worker's mailtrace is not the client's: its results would not be comparable."""


@dataclass(frozen=True)
class Shard:
    number: int
    works: tuple[Work, ...]
    topologies: dict[str, Topology]  # the ones its domains use
    settings: FleetSettings
    vantage: Vantage
    version: str  # the client's mailtrace


def run_shard(shard: Shard) -> list[tuple[str, dict[str, Any]]]:
    """(domain, the vantage's document) for each domain of the shard."""
    from mailtrace import version

    if version() != shard.version:
        raise VersionMismatch(f"the worker runs mailtrace {version()}, the client "
                              f"{shard.version}: install the same version on both")
    done = asyncio.run(verify_all(shard.works, shard.topologies, shard.settings,
                                  [shard.vantage]))
    return [(work.domain, docs[shard.vantage.name]) for work, docs in done]
