"""A lab in a process of its own, for the benchmarks that time a triage against it.

In the field the servers a triage asks spend their own CPU, not the triage's; a lab in
the benchmark's process would add every simulated DNS, SMTP and HTTPS answer to the
triage's critical path. ``LabProcess`` starts the lab of a scenario in a child process
and hands back what a triage needs to reach it (the same as ``lab_options`` gives in
process), and what the lab's Graph stand-ins were asked when it stops.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from mailtrace.core.network import ConnectTo, Endpoint
from mailtrace.engine.settings import Options


@dataclass(frozen=True)
class LabAddress:
    resolver: Endpoint
    connect_to: tuple[ConnectTo, ...]
    ca_file: Path
    environ: dict[str, str]
    topology_path: Path
    recipient: str

    def options(self, timeout: float = 30.0) -> Options:
        return Options([self.resolver], self.connect_to, timeout, self.environ,
                       ca_file=self.ca_file)


def _serve(conn: multiprocessing.connection.Connection, name: str, ns_delay: float,
           kwargs: dict[str, Any]) -> None:
    import dataclasses

    from mailtrace.lab import scenarios
    from mailtrace.lab.dns_server import Fault
    from mailtrace.lab.lab import Lab

    scenario = scenarios.get(name)
    if ns_delay:  # every authoritative server waits; the resolver in front adds nothing
        delayed = {host: Fault(delay=ns_delay) for host in Lab(scenario).servers}
        scenario = dataclasses.replace(scenario, faults={**delayed, **scenario.faults})

    async def main() -> None:
        async with Lab(scenario, **kwargs) as lab:
            conn.send(LabAddress(lab.resolver_endpoint, tuple(lab.connect_to), lab.ca_file,
                                 dict(lab.environ), lab.topology_path, lab.recipient))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
            conn.send({tier: len(g.requests) for tier, g in lab.graph.items()})

    asyncio.run(main())


class LabProcess:
    """``with LabProcess("healthy", ns_delay=0.05) as lab: lab.options()``: ``ns_delay``
    delays every authoritative server's answers (so a recursive answer costs one delay
    too); other keyword arguments go to ``Lab`` (``graph_delay``, ``smtp_delay``...)."""

    def __init__(self, scenario: str, *, ns_delay: float = 0.0, **lab_kwargs: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve,
                                        args=(child, scenario, ns_delay, lab_kwargs),
                                        daemon=True)
        #: Requests each Graph stand-in saw, by tier, once the lab stopped.
        self.graph_requests: dict[str, int] = {}

    def __enter__(self) -> LabAddress:
        self._process.start()
        address: LabAddress = self._conn.recv()
        return address

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._conn.send("stop")
            self.graph_requests = self._conn.recv()
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
