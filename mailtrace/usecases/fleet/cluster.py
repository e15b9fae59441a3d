"""The fleet on an existing Dask cluster (``--scheduler tcp://HOST:8786``).

The list is cut into shards (``shard_size`` domains); each shard is submitted once per
vantage point, as a task for :func:`~mailtrace.usecases.fleet.shards.run_shard`. A named
vantage ``eu`` runs only on workers started with that resource (``dask worker
tcp://HOST:8786 --nthreads 1 --resources vantage-eu=1``), which verify from their own
network with their own resolvers: the per-region view of propagation. Shards are
submitted as the list is read, at most ``2 x workers`` of them waiting or running, so
neither this process nor the scheduler holds the whole list.

Dask's scheduler reruns a shard whose worker died (``distributed.scheduler.
allowed-failures`` times); a shard that fails for good, or a vantage left with no
worker for ``orphan_after`` seconds, makes its domains *not verified* lines — never a
silent loss. Results are joined per shard across vantages and reported as they come,
each domain once (:class:`~mailtrace.usecases.fleet.results.Results`). Interrupted, the
run cancels what it submitted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailtrace.report.fleet import failed_vantage
from mailtrace.topology.model import Topology
from mailtrace.usecases.fleet.plan import Item
from mailtrace.usecases.fleet.results import Results
from mailtrace.usecases.fleet.shards import Shard, run_shard
from mailtrace.usecases.fleet.verifying import FleetError, FleetSettings, Vantage, Work

if TYPE_CHECKING:
    from distributed import Client, Future

#: How a worker offers a vantage point: a Dask resource named after it.
RESOURCE = "vantage-{}"
#: Seconds without any worker offering a vantage before its shards are given up.
ORPHAN_AFTER = 120.0


def resource(vantage: str) -> str:
    return RESOURCE.format(vantage)


@dataclass
class _Pending:
    shard: Shard
    docs: dict[str, list[tuple[str, dict[str, Any]]] | str] = field(default_factory=dict)


def _connect(address: str, timeout: float) -> Client:
    try:
        from distributed import Client
    except ImportError:
        raise FleetError("--scheduler needs Dask: pip install 'mailtrace-diagnostics[fleet]'"
                         ) from None
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise FleetError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _workers(client: Client) -> list[dict[str, Any]]:
    info = client.scheduler_info(n_workers=-1)
    return list(info.get("workers", {}).values())


def _offering(workers: list[dict[str, Any]], vantage: str | None) -> int:
    if vantage is None:
        return len(workers)
    return sum(1 for w in workers if (w.get("resources") or {}).get(resource(vantage), 0) > 0)


class ClusterRun:
    """One fleet run on a cluster; ``named``: the vantages were named (``--vantage``),
    so each runs only where its resource is offered."""

    def __init__(self, client: Client, topologies: Mapping[str, Topology],
                 settings: FleetSettings, vantages: Sequence[Vantage], results: Results,
                 *, named: bool, shard_size: int = 100,
                 orphan_after: float = ORPHAN_AFTER) -> None:
        from mailtrace import version

        self.client = client
        self.topologies = topologies
        self.settings = settings
        self.vantages = list(vantages)
        self.results = results
        self.named = named
        self.shard_size = shard_size
        self.orphan_after = orphan_after
        self.version = version()
        self.run = uuid.uuid4().hex[:8]
        self.pending: dict[int, _Pending] = {}
        self.futures: dict[Future[Any], tuple[int, str]] = {}
        self.shards = 0
        self.workers = 0
        self._orphaned_since: dict[str, float] = {}

    def check_workers(self) -> None:
        """Every vantage has a worker to run it now, or the run cannot start."""
        workers = _workers(self.client)
        if not workers:
            raise FleetError("the Dask cluster has no worker")
        for vantage in self.vantages:
            if self.named and not _offering(workers, vantage.name):
                raise FleetError(
                    f"no worker of the cluster offers vantage {vantage.name}: start one with "
                    f"dask worker SCHEDULER --nthreads 1 --resources {resource(vantage.name)}=1")
        self.workers = len(workers)

    # -- submitting ------------------------------------------------------------------------

    def _submit(self, works: list[Work]) -> None:
        self.shards += 1
        number = self.shards
        used = {w.topology for w in works}
        topologies = {k: t for k, t in self.topologies.items() if k in used}
        first: Shard | None = None
        for vantage in self.vantages:
            shard = Shard(number, tuple(works), topologies, self.settings, vantage,
                          self.version)
            first = first or shard
            resources = {resource(vantage.name): 1} if self.named else None
            future = self.client.submit(run_shard, shard, resources=resources,
                                        key=f"mailtrace-fleet-{self.run}-{number}-"
                                            f"{vantage.name}")
            self.futures[future] = (number, vantage.name)
        assert first is not None
        self.pending[number] = _Pending(first)

    @property
    def window(self) -> int:
        return max(2, 2 * self.workers)

    def run_items(self, items: Iterator[Item]) -> None:
        """Every item of the list, shards submitted as it is read; returns once every
        domain has been reported."""
        self.check_workers()
        batch: list[Work] = []
        try:
            for item in items:
                if not isinstance(item, Work):
                    self.results.set_aside(item)
                    continue
                batch.append(item)
                if len(batch) == self.shard_size:
                    self._submit(batch)
                    batch = []
                    while len(self.pending) >= self.window:
                        self._collect()
            if batch:
                self._submit(batch)
            while self.pending:
                self._collect()
        finally:
            if self.futures:
                self.client.cancel(list(self.futures))

    # -- collecting ------------------------------------------------------------------------

    def _collect(self, wait: float = 5.0) -> None:
        """Wait for at least one shard's task to end (or ``wait`` seconds), and take what
        ended."""
        from distributed import wait as dask_wait

        try:
            done = dask_wait(list(self.futures), timeout=wait,
                             return_when="FIRST_COMPLETED").done
        except TimeoutError:
            self._orphans()
            return
        for future in done:
            number, vantage = self.futures.pop(future)
            self._take(number, vantage, self._result(future))

    def _result(self, future: Future[Any]) -> list[tuple[str, dict[str, Any]]] | str:
        try:
            got: list[tuple[str, dict[str, Any]]] = future.result()
            return got
        except Exception as exc:  # a shard that failed for good: its domains say why
            name = type(exc).__name__
            if name == "KilledWorker":
                return ("the workers running this shard died (Dask's allowed-failures "
                        "reached)")
            return f"the shard failed on the cluster: {name}: {exc}"

    def _take(self, number: int, vantage: str,
              docs: list[tuple[str, dict[str, Any]]] | str) -> None:
        pending = self.pending.get(number)
        if pending is None:
            return  # already reported (cannot happen twice; the guard is Results')
        pending.docs[vantage] = docs
        if len(pending.docs) < len(self.vantages):
            return
        del self.pending[number]
        by_vantage: dict[str, dict[str, dict[str, Any]]] = {}
        for name, got in pending.docs.items():
            if isinstance(got, str):
                by_vantage[name] = {w.domain: failed_vantage(got) for w in pending.shard.works}
            else:
                by_vantage[name] = dict(got)
        for work in pending.shard.works:
            joined = {name: docs.get(work.domain) for name, docs in by_vantage.items()}
            if all(isinstance(d, str) for d in pending.docs.values()):
                reason = next(iter(pending.docs.values()))
                assert isinstance(reason, str)
                self.results.unverified(work, reason)
                continue
            self.results.domain(work, {name: doc or failed_vantage("no result for this "
                                                                   "domain in its shard")
                                       for name, doc in joined.items()})

    def _orphans(self) -> None:
        """Give up the shards of a vantage no worker has offered for ``orphan_after``
        seconds (its workers are gone and none came back)."""
        if not self.named:
            return
        workers = _workers(self.client)
        self.workers = max(1, len(workers))
        now = time.monotonic()
        for vantage in self.vantages:
            if _offering(workers, vantage.name):
                self._orphaned_since.pop(vantage.name, None)
                continue
            since = self._orphaned_since.setdefault(vantage.name, now)
            if now - since < self.orphan_after:
                continue
            for future, (number, name) in list(self.futures.items()):
                if name == vantage.name:
                    self.futures.pop(future)
                    future.cancel()
                    self._take(number, name, f"no worker offered vantage {vantage.name} "
                               f"for {self.orphan_after:.0f} s")


def run_cluster(address: str, items: Iterator[Item], topologies: Mapping[str, Topology],
                settings: FleetSettings, vantages: Sequence[Vantage], results: Results, *,
                named: bool, shard_size: int = 100, connect_timeout: float = 15.0) -> None:
    client = _connect(address, connect_timeout)
    try:
        ClusterRun(client, topologies, settings, vantages, results, named=named,
                   shard_size=shard_size).run_items(items)
    finally:
        client.close()
