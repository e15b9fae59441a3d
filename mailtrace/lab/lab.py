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
import hashlib
import ipaddress
import os
import secrets
import socket
import tempfile
import textwrap
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailtrace.clients.smtp import SMTP_PORT
from mailtrace.clients.trust_anchor import TrustAnchor
from mailtrace.core.network import ConnectTo, Endpoint
from mailtrace.lab import fleet as fleets
from mailtrace.lab import proofpoint_api
from mailtrace.lab.ca import Issued, LabCA
from mailtrace.lab.dns_server import AuthoritativeServer, Fault, ForwardingResolver
from mailtrace.lab.dnssec import LabSigner
from mailtrace.lab.fleet import TLD, TLD_SERVER, VANTAGES, FleetResolver, FleetWorld
from mailtrace.lab.graph_api import GraphStandIn, SignInStandIn, lab_tenant
from mailtrace.lab.labfile import LabAccess
from mailtrace.lab.scenarios import Scenario, ZoneEdit
from mailtrace.lab.smtp_server import SmtpScript, SmtpServer
from mailtrace.lab.validating import ValidatingResolver

if TYPE_CHECKING:
    from mailtrace.topology.model import Topology

LOOPBACK = "127.0.0.1"
DNS_PORT = 53
RESOLVER = "resolver"
#: The environment variable the lab's Graph token is passed in (lab.environ only).
GRAPH_TOKEN_ENV = "MAILTRACE_LAB_GRAPH_TOKEN"
#: azure-identity's own variable for the sign-in authority (the lab's, in lab.environ).
AUTHORITY_ENV = "AZURE_AUTHORITY_HOST"
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
            (_origin(entry.name), entry.read_text(encoding="utf-8"))
            for entry in folder.iterdir()
            if entry.name.endswith(".zone")
        )
    )


def _origin(file_name: str) -> str:
    """``contoso.com.zone`` -> ``contoso.com.``; ``root.zone`` holds the root zone."""
    stem = file_name.removesuffix(".zone")
    return "." if stem == "root" else stem + "."


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


def _key(origin: str) -> str:
    """A zone's key in ``Lab.zone_servers``: no final dot, "." for the root."""
    return origin.rstrip(".") or "."


def _cert_names(host: str, script: SmtpScript) -> tuple[str, ...]:
    return ("mx.wrong-name.example",) if script.certificate == "wrong-name" else (host,)


def _tlsa(publish: str, issued: Issued, ca: LabCA | None) -> tuple[str, ...]:
    """The TLSA records a host publishes: for its current certificate, DANE-EE of its
    key and DANE-TA of the lab CA; ``stale``, DANE-EE of a key it no longer has (a
    certificate renewed with a new key, the TLSA record left behind)."""
    assert ca is not None
    if publish == "stale":
        old = ec.generate_private_key(ec.SECP256R1()).public_key()
        spki = old.public_bytes(serialization.Encoding.DER,
                                serialization.PublicFormat.SubjectPublicKeyInfo)
        return (f"3 1 1 {hashlib.sha256(spki).hexdigest()}",)
    return (issued.tlsa_ee(), ca.tlsa_ta())


#: The topology a fleet lab's domains are generated for (and verified against).
FLEET_TOPOLOGY = "contoso-proofpoint-exo.yaml"


def fleet_lab(count: int, *, broken: float = 0.1, regional: float = 0.05, seed: int = 1,
              dns_delay: float = 0.0) -> Lab:
    """A lab serving ``count`` generated client domains (:mod:`mailtrace.lab.fleet`) that
    fit the example topology ``FLEET_TOPOLOGY``, a share of them broken."""
    records = fleets.FleetRecords.of(_example(FLEET_TOPOLOGY))
    world = FleetWorld(count, records, broken=broken, regional=regional, seed=seed)
    return Lab(fleets.scenario(world, FLEET_TOPOLOGY), dns_delay=dns_delay, fleet=world)


class Lab:
    """async context manager: ``async with Lab(scenario) as lab:``."""

    def __init__(self, scenario: Scenario, *, dns_delay: float = 0.0,
                 smtp_delay: float = 0.0, graph_delay: float = 0.0,
                 fleet: FleetWorld | None = None) -> None:
        self.scenario = scenario
        #: Generated client domains served beside the scenario's world, and a resolver
        #: per vantage point (:mod:`mailtrace.lab.fleet`).
        self.fleet = fleet
        self.recipient = scenario.recipient
        self.dns_delay = dns_delay
        self.smtp_delay = smtp_delay
        self.graph_delay = graph_delay  # seconds before each Graph answer (benchmarks)
        #: SMTP host name -> its listener (hosts scripted as not listening have none).
        self.smtp_servers: dict[str, SmtpServer] = {}
        self._smtp_refused: socket.socket | None = None  # bound, never listening: refuses
        # The lab CA and every SMTP host's certificate are made first: the TLSA records
        # published for a host are its certificate's digests, signed with the zones.
        self._ca: LabCA | None = LabCA()
        self._issued = {host: self._ca.issue(*_cert_names(host, script),
                                             expired=script.certificate == "expired")
                        for host, script in scenario.smtp_scripts().items()}
        self.signer = LabSigner((origin for origin, _ in _zone_texts()), scenario.dnssec)
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
        #: Per (tier, section) of the topology, values the lab's copy sets: the scenario's
        #: own (quarantine folders, say), and what the stand-ins need (a token source).
        self.settings: dict[tuple[str, str], dict[str, Any]] = {
            key: dict(values) for key, values in scenario.topology_settings.items()}
        #: The Graph stand-in of each Exchange Online tier that declares graph:.
        self.graph: dict[str, GraphStandIn] = {}
        #: The identity platform a person signs in at (device code), when Graph is served.
        self.sign_in: SignInStandIn | None = None
        #: Redirections to stand-ins other than DNS (``mta-sts.<domain>:443``, ...).
        self.extra_connect_to: list[ConnectTo] = []
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._dns_resolver: ForwardingResolver | None = None
        self._validating: ValidatingResolver | None = None
        self._vantages: dict[str, ForwardingResolver] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self._build()

    # -- construction ------------------------------------------------------------------

    def _fault(self, key: str) -> Fault:
        fault = self.scenario.faults.get(key, Fault())
        return dataclasses.replace(fault, delay=fault.delay + self.dns_delay)

    def _edits(self) -> list[ZoneEdit]:
        """The scenario's zone edits, then the TLSA records of the hosts that publish
        them (RFC 7672 §2.2.3: at _25._tcp.<host>), from the certificates just issued."""
        origins = [origin for origin, _ in _zone_texts()]
        edits = list(self.scenario.zone_edits)
        for host, publish in self.scenario.tlsa_hosts().items():
            zone = max((o for o in origins if f"{host}.".endswith("." + o) or o == "."),
                       key=len)
            edits.append(ZoneEdit(zone, f"_25._tcp.{host}.", "TLSA",
                                  _tlsa(publish, self._issued[host], self._ca)))
        return edits

    def _zone(self, origin: str, text: str, host: str | None,
              edits: list[ZoneEdit]) -> dns.zone.Zone:
        """One zone with the edits for `host` (None: edits for everyone), signed with the
        run's keys when the zone is signed: a fresh copy, unless neither applies (then the
        zone file as read once, shared and never changed)."""
        name = dns.name.from_text(origin)
        mine = [edit for edit in edits if edit.origin == name and (
            edit.servers is None if host is None else edit.for_server(host))]
        if not mine and not self.signer.signed(origin):
            return _unedited(origin, text)
        zone = dns.zone.from_text(text, origin=origin, relativize=False)
        for edit in mine:
            edit.apply(zone)
        _check_loopback(zone)
        self.signer.sign(zone)
        return zone

    def _build(self) -> None:
        texts = dict(_zone_texts())
        edits = self._edits()
        served: dict[str, list[str]] = {}
        for origin, text in texts.items():
            apex = _unedited(origin, text)
            ns = apex.get_rdataset(origin, dns.rdatatype.NS)
            hosts = sorted(_host(rdata.target) for rdata in ns or ())
            if not hosts:
                raise ValueError(f"lab zone {origin} has no NS records")
            self.zone_servers[_key(origin)] = hosts
            for host in hosts:
                served.setdefault(host, []).append(origin)
        self._validate(served)
        # Servers with the same edits share one signed copy of a zone (read only).
        copies: dict[tuple[str, tuple[int, ...]], dns.zone.Zone] = {}
        for host, origins in sorted(served.items()):
            zones = []
            for origin in origins:
                mine = tuple(i for i, e in enumerate(edits)
                             if e.origin == dns.name.from_text(origin) and e.for_server(host))
                if (origin, mine) not in copies:
                    copies[(origin, mine)] = self._zone(origin, texts[origin], host, edits)
                zones.append(copies[(origin, mine)])
            self.servers[host] = AuthoritativeServer(zones, host=LOOPBACK, fault=self._fault(host))
        if self.fleet is not None:
            # The fleet's zones are made when first asked about (mailtrace.lab.fleet).
            for host in (TLD_SERVER, *self.fleet.name_servers()):
                self.servers[host] = AuthoritativeServer(
                    [], host=LOOPBACK, fault=self._fault(host),
                    generated=self.fleet.source(host))
            self.zone_servers[TLD] = [TLD_SERVER]

    @property
    def trust_anchor(self) -> TrustAnchor:
        """The lab root's key, as mailtrace must be given it (``--trust-anchor``)."""
        return self.signer.trust_anchor

    def trust_anchor_file(self) -> Path:
        """The lab root's DS record in a file, for ``--trust-anchor``."""
        path = self._folder() / "lab-root.ds"
        path.write_text(f"; the lab's root key (this run only)\n"
                        f". IN DS {self.trust_anchor.ds[0]}\n", encoding="utf-8")
        return path

    def _validate(self, served: dict[str, list[str]]) -> None:
        fleet = {TLD_SERVER, *self.fleet.name_servers()} if self.fleet is not None else set()
        unknown = set(self.scenario.faults) - set(served) - {RESOLVER} - fleet
        if unknown:
            raise ValueError(f"scenario {self.scenario.name}: faults for unknown {unknown}")
        for edit in self.scenario.zone_edits:
            zone = _key(edit.zone.lower())
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
            if self.fleet is None:
                self._dns_resolver = ForwardingResolver(
                    forwarders, host=LOOPBACK, fault=self._fault(RESOLVER)
                )
            else:
                # One resolver per vantage point; the first is the lab's resolver.
                hosting = {host: self.servers[host] for host in self.fleet.name_servers()}
                for vantage in VANTAGES:
                    self._vantages[vantage] = FleetResolver(
                        self.fleet, vantage, forwarders, hosting, host=LOOPBACK,
                        fault=self._fault(RESOLVER))
                self._dns_resolver = self._vantages[VANTAGES[0]]
                for resolver in list(self._vantages.values())[1:]:
                    await self._start(resolver)
            await self._start(self._dns_resolver)
            if self.scenario.validating_resolver:
                # A second resolver of the panel, which validates: the scenario's resolver
                # fault is the observer's, so it hits both.
                self._validating = ValidatingResolver(
                    forwarders, self.trust_anchor, host=LOOPBACK, fault=self._fault(RESOLVER))
                await self._start(self._validating)
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
        self._validating = None
        self._vantages.clear()
        self._smtp_refused = None
        self.smtp_servers.clear()
        self.startables.clear()
        self.graph.clear()
        self.sign_in = None
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
            tenant = lab_tenant(data, tier, self.recipient, self.scenario.tenant,
                                self.scenario.tenant_messages())
            tls = self._ca.issue(host, LOOPBACK, "localhost").server_context()
            server = GraphStandIn(tenant, token, delay=self.graph_delay, tls=tls)
            await self._start(server)
            self.graph[tier] = server
            self.extra_connect_to.append(ConnectTo(host, port, LOOPBACK, server.port))
            self.settings[(tier, "graph")] = {"auth": "token-env", "token_env": GRAPH_TOKEN_ENV}
            if self.sign_in is None:
                # Where a person signs in (`mailtrace login`): the lab's identity platform,
                # over HTTPS from the lab CA; azure-identity finds it by its documented
                # AZURE_AUTHORITY_HOST, which the lab file carries.
                assert self._ca is not None
                tls = self._ca.issue(LOOPBACK, "localhost").server_context()
                self.sign_in = SignInStandIn(token, f"admin@{tenant.domains[0]}",
                                             tenant.tenant, tls)
                await self._start(self.sign_in)
                self.environ[AUTHORITY_ENV] = f"https://{self.sign_in.authority}"

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
            # An admin's own topology names the API by its real URL: send that host and
            # port to the stand-in (its certificate names the real host too).
            declared = getattr(topology.tiers[stand_in.tier], stand_in.key).url
            parts = urlsplit(declared)
            if parts.hostname:
                self.extra_connect_to.append(ConnectTo(parts.hostname.lower(), parts.port or 443,
                                                       LOOPBACK, stand_in.server.server.port))

    async def _start_smtp(self) -> None:
        """One SMTP listener per host of the lab world, with its certificate from the lab
        CA (or one made wrong on purpose, as the host's script says)."""
        assert self._stack is not None and self._ca is not None
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
            server = SmtpServer(host, script, tls=self._issued[host].server_context(),
                                host=LOOPBACK)
            await self._start(server)
            self.smtp_servers[host] = server

    @property
    def ca_file(self) -> Path:
        """The lab CA's certificate: what a client must trust for the lab's STARTTLS."""
        if self._ca is None or self._stack is None:
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
    def resolver_endpoints(self) -> list[Endpoint]:
        """The observer's resolver panel: the lab resolver, and the validating one when the
        scenario runs it."""
        panel = [self.resolver_endpoint]
        if self._validating is not None:
            panel.append(Endpoint(*self._validating.address))
        return panel

    @property
    def vantages(self) -> dict[str, list[Endpoint]]:
        """The resolver panel of each vantage point (a fleet lab; none otherwise)."""
        return {name: [Endpoint(*resolver.address)] for name, resolver in self._vantages.items()}

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

    def access(self) -> LabAccess:
        """How another process reaches this lab: what ``mailtrace lab`` writes to its lab
        file (``mailtrace.lab.labfile``)."""
        try:
            topology: str | None = str(self.topology_path)
        except FileNotFoundError:
            topology = None
        return LabAccess(
            scenario=self.scenario.name,
            resolver=self.resolver_endpoint,
            connect_to=tuple(self.connect_to),
            ca_pem=self.ca_file.read_text(encoding="ascii"),
            environ=dict(self.environ),
            topology=topology,
            recipient=self.recipient,
            pid=os.getpid(),
            trust_anchor=self.trust_anchor.ds,
            vantages={name: tuple(panel) for name, panel in self.vantages.items()},
        )

    def lab_file_path(self) -> Path:
        """Where the lab file goes by default: the lab's own folder, removed at the end."""
        return self._folder() / "lab.yaml"

    def describe(self, lab_file: Path | None = None) -> list[str]:
        """How to point `dig`, `openssl` and `mailtrace` at the running lab; with the lab
        file's path, the one flag that does it for a triage."""
        host, port = self.resolver
        domain = self.recipient.rpartition("@")[2]
        lines = [f"lab scenario {self.scenario.name}: {self.scenario.description}"]
        lines.append(f"resolver: {host}:{port}  (dig @{host} -p {port} {domain} MX)")
        lines.append("authoritative servers:")
        for name, server in self.servers.items():
            fault = server.fault
            zones = [_key(origin) for origin in server.origins]
            note = f"  fault: {fault.mode}" if fault.mode else ""
            if not zones:  # a fleet's name server: its zones are generated
                lines.append(f"  {name:<22} {server.host}:{server.port}  the fleet's domains"
                             f"{note}")
                continue
            lines.append(
                f"  {name:<22} {server.host}:{server.port}  zones {', '.join(zones)}{note}"
                f"  (dig @{server.host} -p {server.port} +norec {zones[0]} SOA)"
            )
        if self._validating is not None:
            vhost, vport = self._validating.address
            lines.append(f"validating resolver: {vhost}:{vport}  (dig @{vhost} -p {vport} "
                         f"{domain} MX +dnssec; +cd to skip validation)")
        for vantage, resolver in list(self._vantages.items())[1:]:
            vhost, vport = resolver.address
            lines.append(f"resolver of vantage {vantage}: {vhost}:{vport}  (the first, "
                         f"{host}:{port}, is vantage {next(iter(self._vantages))})")
        if self.dns_resolver.fault.mode:
            lines.append(f"resolver fault: {self.dns_resolver.fault.mode}")
        lines.append("SMTP hosts (port 25; openssl s_client -starttls smtp -connect ADDR:PORT):")
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
        if lab_file is None:
            return lines
        try:
            topology = str(self.topology_path)
        except FileNotFoundError:
            topology = f"topologies/{self.scenario.topology}"
        held = (f"the resolver, {len(self.connect_to)} connection rules, the lab CA"
                + (", throwaway credentials for " + ", ".join(sorted(self.environ))
                   if self.environ else "")
                + " (mode 0600; removed when the lab stops)")
        lines += [
            f"lab file: {lab_file}",
            *textwrap.wrap(held, 92, initial_indent="  holds ", subsequent_indent="    "),
            "triage against it, with this scenario's topology or your own:",
            f"  mailtrace triage --recipient {self.recipient} --topology {topology} "
            f"--lab-file {lab_file}",
        ]
        return lines
