"""`Lab`: the lab world of a scenario, running on loopback inside this process.

Every name server host named by an apex NS record gets its own `AuthoritativeServer` on
127.0.0.1 (an ephemeral port), so one server can misbehave while its peers are fine; a
`ForwardingResolver` stands in for the system resolver. Clients reach a name server by its
real name through `connect_to` redirections (curl's ``--connect-to`` idea): the addresses in
the zones are loopback too, so a missed redirection still never leaves the machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import secrets
import shlex
import socket
import tempfile
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import dns.name
import dns.rdatatype
import dns.zone
import yaml

from mailtrace.clients.smtp import SMTP_PORT
from mailtrace.core.network import ConnectTo, Endpoint
from mailtrace.lab import proofpoint_api
from mailtrace.lab.ca import LabCA
from mailtrace.lab.dns_server import AuthoritativeServer, Fault, ForwardingResolver
from mailtrace.lab.graph_api import GraphStandIn, lab_tenant
from mailtrace.lab.scenarios import Scenario
from mailtrace.lab.smtp_server import SmtpServer

if TYPE_CHECKING:
    from mailtrace.topology.model import Topology

LOOPBACK = "127.0.0.1"
DNS_PORT = 53
RESOLVER = "resolver"
#: The environment variable the lab's Graph token is passed in (lab.environ only).
GRAPH_TOKEN_ENV = "MAILTRACE_LAB_GRAPH_TOKEN"
#: The Graph a topology's ``graph:`` section means when it names no URL.
GRAPH_URL = "https://graph.microsoft.com/v1.0"


class Startable(Protocol):
    """Anything the lab runs: DNS servers now, SMTP and HTTP servers later."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def example_topology(name: str) -> Path:
    """An example topology file: installed next to the package, or at the checkout root."""
    package = Path(__file__).resolve().parent.parent  # the `mailtrace` package directory
    candidates = [package / "topologies" / name, package.parent / "topologies" / name]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"topology {name!r} not found in {', '.join(map(str, candidates))}")


@cache
def _zone_texts() -> tuple[tuple[str, str], ...]:
    """(origin, master-file text) of every lab zone, read from the package data."""
    folder = resources.files("mailtrace.lab").joinpath("zones")
    return tuple(
        sorted(
            (entry.name.removesuffix(".zone") + ".", entry.read_text(encoding="utf-8"))
            for entry in folder.iterdir()
            if entry.name.endswith(".zone")
        )
    )


#: libyaml's safe loader and dumper when PyYAML has them (the lab reads and writes its
#: topologies at every start), else the pure-Python ones.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)  # a safe loader: _LOADER


@cache
def _example(name: str) -> Topology:
    """An example topology, read and validated once per process (it is immutable)."""
    from mailtrace.topology import load_topology

    return load_topology(example_topology(name))


@cache
def _unedited(origin: str, text: str) -> dns.zone.Zone:
    """A lab zone as its file has it, parsed once per process: servers only read it."""
    zone = dns.zone.from_text(text, origin=origin, relativize=False)
    _check_loopback(zone)
    return zone


def _host(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def _check_loopback(zone: dns.zone.Zone) -> None:
    """Refuse any zone that would send a client off this machine."""
    for name, rdataset in zone.iterate_rdatasets():
        if rdataset.rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
            continue
        for rdata in rdataset:
            address = ipaddress.ip_address(rdata.address)
            if address.version != 4 or not address.is_loopback:
                raise ValueError(f"lab zone record {name} {rdata} is not a 127.0.0.0/8 address")


class Lab:
    """async context manager: ``async with Lab(scenario) as lab:``."""

    def __init__(self, scenario: Scenario, *, dns_delay: float = 0.0,
                 smtp_delay: float = 0.0, graph_delay: float = 0.0) -> None:
        self.scenario = scenario
        self.recipient = scenario.recipient
        self.dns_delay = dns_delay
        self.smtp_delay = smtp_delay
        self.graph_delay = graph_delay  # seconds before each Graph answer (benchmarks)
        #: SMTP host name -> its listener (hosts scripted as not listening have none).
        self.smtp_servers: dict[str, SmtpServer] = {}
        self._smtp_refused: socket.socket | None = None  # bound, never listening: refuses
        self._ca: LabCA | None = None
        #: zone origin (no final dot) -> its NS host names, sorted.
        self.zone_servers: dict[str, list[str]] = {}
        self.servers: dict[str, AuthoritativeServer] = {}
        self.startables: list[Startable] = []
        #: Credentials the lab's API stand-ins accept, by the env var names the topology
        #: uses; a demo reads them from here, never from the process environment.
        self.environ: dict[str, str] = {}
        #: (tier id, access key: "api" | "graph") -> base URL of the stand-in serving it.
        self.urls: dict[tuple[str, str], str] = {}
        #: (tier id, access key) -> settings merged into that section of the lab's copy of
        #: the topology, e.g. the Graph auth: the lab never signs in to a real authority.
        self.settings: dict[tuple[str, str], dict[str, str]] = {}
        #: The Graph stand-in of each Exchange Online tier that declares graph:.
        self.graph: dict[str, GraphStandIn] = {}
        #: Redirections to stand-ins other than DNS (``mta-sts.<domain>:443``, ...).
        self.extra_connect_to: list[ConnectTo] = []
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._dns_resolver: ForwardingResolver | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._build()

    # -- construction ------------------------------------------------------------------

    def _fault(self, key: str) -> Fault:
        fault = self.scenario.faults.get(key, Fault())
        return dataclasses.replace(fault, delay=fault.delay + self.dns_delay)

    def _zone(self, origin: str, text: str, host: str | None) -> dns.zone.Zone:
        """One zone with the edits for `host` (None: edits for everyone): a fresh copy when
        the scenario edits it, else the zone file as read once (shared, never changed)."""
        name = dns.name.from_text(origin)
        edits = [edit for edit in self.scenario.zone_edits if edit.origin == name and (
            edit.servers is None if host is None else edit.for_server(host))]
        if not edits:
            return _unedited(origin, text)
        zone = dns.zone.from_text(text, origin=origin, relativize=False)
        for edit in edits:
            edit.apply(zone)
        _check_loopback(zone)
        return zone

    def _build(self) -> None:
        texts = dict(_zone_texts())
        served: dict[str, list[str]] = {}
        for origin, text in texts.items():
            ns = self._zone(origin, text, None).get_rdataset(origin, dns.rdatatype.NS)
            hosts = sorted(_host(rdata.target) for rdata in ns or ())
            if not hosts:
                raise ValueError(f"lab zone {origin} has no NS records")
            self.zone_servers[origin.rstrip(".")] = hosts
            for host in hosts:
                served.setdefault(host, []).append(origin)
        self._validate(served)
        for host, origins in sorted(served.items()):
            zones = [self._zone(origin, texts[origin], host) for origin in origins]
            self.servers[host] = AuthoritativeServer(zones, host=LOOPBACK, fault=self._fault(host))

    def _validate(self, served: dict[str, list[str]]) -> None:
        unknown = set(self.scenario.faults) - set(served) - {RESOLVER}
        if unknown:
            raise ValueError(f"scenario {self.scenario.name}: faults for unknown {unknown}")
        for edit in self.scenario.zone_edits:
            zone = edit.zone.rstrip(".").lower()
            if zone not in self.zone_servers:
                raise ValueError(f"scenario {self.scenario.name}: no lab zone {edit.zone}")
            if edit.servers is not None and not edit.servers <= set(self.zone_servers[zone]):
                raise ValueError(f"scenario {self.scenario.name}: {edit} names unknown servers")

    # -- running -----------------------------------------------------------------------

    async def __aenter__(self) -> Lab:
        self._stack = contextlib.AsyncExitStack()
        try:
            for server in self.servers.values():
                await self._start(server)
            forwarders = {
                zone: [self.servers[host].address for host in hosts]
                for zone, hosts in self.zone_servers.items()
            }
            self._dns_resolver = ForwardingResolver(
                forwarders, host=LOOPBACK, fault=self._fault(RESOLVER)
            )
            await self._start(self._dns_resolver)
            await self._start_smtp()
            await self._start_policy_hosts()
            await self._start_gateway_apis()
            await self._start_graph()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        self._dns_resolver = None
        self._smtp_refused = None
        self._ca = None
        self.smtp_servers.clear()
        self.startables.clear()
        self.graph.clear()
        self.extra_connect_to.clear()

    async def _start_graph(self) -> None:
        """A Graph stand-in for each Exchange Online tier that declares ``graph:``, over
        HTTPS with a certificate from the lab CA for the Graph host the topology names;
        ``connect_to`` sends that host's port there, so the lab's copy of the topology keeps
        the real URL (only its sign-in changes: a token of the lab's own)."""
        assert self._ca is not None
        data = _yaml(example_topology(self.scenario.topology).read_text("utf-8"))
        for tier, spec in sorted(data["tiers"].items()):
            if spec.get("kind") != "exchange-online" or "graph" not in spec:
                continue
            url = urlsplit(str(spec["graph"].get("url") or GRAPH_URL))
            host, port = (url.hostname or "").lower(), url.port or 443
            token = self.environ.setdefault(GRAPH_TOKEN_ENV, secrets.token_urlsafe(32))
            tenant = lab_tenant(data, tier, self.recipient, self.scenario.tenant)
            tls = self._ca.issue(host, LOOPBACK, "localhost").server_context()
            server = GraphStandIn(tenant, token, delay=self.graph_delay, tls=tls)
            await self._start(server)
            self.graph[tier] = server
            self.extra_connect_to.append(ConnectTo(host, port, LOOPBACK, server.port))
            self.settings[(tier, "graph")] = {"auth": "token-env", "token_env": GRAPH_TOKEN_ENV}

    async def _start_policy_hosts(self) -> None:
        """MTA-STS policy hosts over HTTPS, certificates from the lab CA."""
        from mailtrace.lab.mta_sts import CA_FILE_ENV, policy_hosts

        assert self._ca is not None and self._smtp_refused is not None
        for host in policy_hosts(self._ca, self.scenario.mta_sts_policies):
            await self._start(host)
            self.extra_connect_to.append(host.connect_to)
        # A domain whose policy host is taken away still never sends a client off the
        # machine: its name leads to a loopback port that refuses connections.
        refused = self._smtp_refused.getsockname()[1]
        for domain, policy in (self.scenario.mta_sts_policies or {}).items():
            if policy is None:
                self.extra_connect_to.append(
                    ConnectTo(f"mta-sts.{domain}", 443, LOOPBACK, refused))
        self.environ[CA_FILE_ENV] = str(self._ca.ca_file)

    async def _start_gateway_apis(self) -> None:
        """The Proofpoint API stand-ins the scenario's topology declares, over HTTPS with a
        certificate from the lab CA (clients trust it through ``ca_file``)."""
        assert self._ca is not None
        topology = _example(self.scenario.topology)
        # The certificate also names the APIs' real hosts, so a triage of the unchanged
        # topology reaches the stand-ins through --connect-to, TLS checked as in the field.
        names = proofpoint_api.api_hosts(topology)
        tls = self._ca.issue(LOOPBACK, "localhost", *names).server_context()
        for stand_in in proofpoint_api.stand_ins(self.scenario, topology, self.environ, tls):
            await self._start(stand_in.server)
            self.urls[(stand_in.tier, stand_in.key)] = stand_in.server.url

    async def _start_smtp(self) -> None:
        """One SMTP listener per host of the lab world, with a certificate from the lab CA
        (or one made wrong on purpose, as the host's script says)."""
        assert self._stack is not None
        self._ca = LabCA()
        self._stack.callback(self._ca.close)
        refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        refused.bind((LOOPBACK, 0))
        self._stack.callback(refused.close)
        self._smtp_refused = refused
        for host, script in self.scenario.smtp_scripts().items():
            if not script.listening:
                continue
            if self.smtp_delay:
                script = dataclasses.replace(script, reply_delay=script.reply_delay
                                             + self.smtp_delay)
            names = ("mx.wrong-name.example",) if script.certificate == "wrong-name" else (host,)
            issued = self._ca.issue(*names, expired=script.certificate == "expired")
            server = SmtpServer(host, script, tls=issued.server_context(), host=LOOPBACK)
            await self._start(server)
            self.smtp_servers[host] = server

    @property
    def ca_file(self) -> Path:
        """The lab CA's certificate: what a client must trust for the lab's STARTTLS."""
        if self._ca is None:
            raise RuntimeError("the lab is not running")
        return self._ca.ca_file

    async def _start(self, startable: Startable) -> None:
        """Start one server; it is stopped (in reverse order) when the lab exits."""
        assert self._stack is not None
        await startable.start()
        self._stack.push_async_callback(startable.stop)
        self.startables.append(startable)

    # -- how to reach it -----------------------------------------------------------------

    @property
    def dns_resolver(self) -> ForwardingResolver:
        if self._dns_resolver is None:
            raise RuntimeError("the lab is not running")
        return self._dns_resolver

    @property
    def resolver(self) -> tuple[str, int]:
        return self.dns_resolver.address

    @property
    def resolver_endpoint(self) -> Endpoint:
        host, port = self.resolver
        return Endpoint(host, port)

    @property
    def connect_to(self) -> list[ConnectTo]:
        rules = [
            ConnectTo(host, DNS_PORT, server.host, server.port)
            for host, server in self.servers.items()
        ]
        if self._smtp_refused is not None:
            refused = self._smtp_refused.getsockname()[1]
            for host in self.scenario.smtp_scripts():
                server = self.smtp_servers.get(host)
                port = refused if server is None or self.scenario.port25_blocked else server.port
                rules.append(ConnectTo(host, SMTP_PORT, LOOPBACK, port))
        return rules + self.extra_connect_to

    @property
    def topology_path(self) -> Path:
        """The scenario's topology, pointed at the lab's stand-ins when any are running
        (a copy in a temporary folder: their ports are only known once they listen)."""
        path = example_topology(self.scenario.topology)
        if not self.urls and not self.settings:
            return path
        data = _yaml(path.read_text(encoding="utf-8"))
        for (tier, key), url in sorted(self.urls.items()):
            data["tiers"][tier].setdefault(key, {})["url"] = url
        for (tier, key), values in sorted(self.settings.items()):
            data["tiers"][tier].setdefault(key, {}).update(values)
        derived = self._folder() / path.name
        derived.write_text(
            f"# {path.name} pointed at the running lab\n"
            + yaml.dump(data, Dumper=_DUMPER, sort_keys=False),
            encoding="utf-8",
        )
        return derived

    def _folder(self) -> Path:
        """The lab's own temporary folder (removed when the lab stops)."""
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="mailtrace-lab-")
        return Path(self._workdir.name)

    def credentials_file(self) -> Path:
        """The stand-ins' throwaway credentials as shell assignments, in a file only this
        user can read: another shell can use them, and no output ever shows them."""
        path = self._folder() / "credentials.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(f"export {name}={shlex.quote(value)}\n"
                          for name, value in sorted(self.environ.items()))
        return path

    def _resolver_text(self) -> str:
        host, port = self.resolver
        return f"{host}:{port}"

    def _triage_command(self) -> Iterator[str]:
        try:
            topology = str(self.topology_path)
        except FileNotFoundError:
            topology = f"topologies/{self.scenario.topology}"
        yield f"mailtrace triage --recipient {self.recipient} --topology {topology} \\"
        yield f"    --resolver {self._resolver_text()} --ca-file {self.ca_file} \\"
        for redirect in self.connect_to:
            yield f"    --connect-to {redirect} \\"
        yield ""

    def describe(self) -> list[str]:
        """How to point `mailtrace triage` and `dig` at the running lab."""
        host, port = self.resolver
        domain = self.recipient.rpartition("@")[2]
        lines = [f"lab scenario {self.scenario.name}: {self.scenario.description}"]
        lines.append(f"resolver: {host}:{port}  (dig @{host} -p {port} {domain} MX)")
        lines.append("authoritative servers:")
        for name, server in self.servers.items():
            fault = server.fault
            zones = [origin.rstrip(".") for origin in server.origins]
            note = f"  fault: {fault.mode}" if fault.mode else ""
            lines.append(
                f"  {name:<22} {server.host}:{server.port}  zones {', '.join(zones)}{note}"
                f"  (dig @{server.host} -p {server.port} +norec {zones[0]} SOA)"
            )
        if self.dns_resolver.fault.mode:
            lines.append(f"resolver fault: {self.dns_resolver.fault.mode}")
        lines.append("SMTP hosts (port 25 through --connect-to):")
        for rule in self.connect_to:
            if rule.port == SMTP_PORT:
                smtp = self.smtp_servers.get(rule.host)
                refused = smtp is None or self.scenario.port25_blocked
                state = "refuses connections" if refused else "listening"
                lines.append(f"  {rule.host:<42} {rule.addr}:{rule.to_port}  {state}")
        for (tier, key), url in sorted(self.urls.items()):
            lines.append(f"{tier} {key} stand-in: {url}")
        for tier, graph in sorted(self.graph.items()):
            lines.append(f"{tier} graph stand-in: {graph.url} (its Graph host through "
                         "--connect-to)")
        if self.environ:
            # Throwaway values made for this lab run, accepted only by its loopback
            # stand-ins: a triage from another shell needs them to reach the APIs.
            lines.append("lab API credentials (this run only; names here, values in the file):")
            lines.append(f"  {', '.join(sorted(self.environ))}")
            lines.append(f"  . {self.credentials_file()}")
        lines.append("triage against it:")
        lines.extend(f"  {line}" for line in self._triage_command() if line)
        lines[-1] = lines[-1].removesuffix(" \\")
        return lines
