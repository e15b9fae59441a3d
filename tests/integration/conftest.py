"""Real third-party DNS servers on loopback: Knot DNS (authoritative) and Unbound (recursive).

The lab is a real delegation hierarchy, so every probe — including the one that asks a
domain's *parent* for its delegation — talks to the server it would talk to on the
internet:

- ``knot_parent``: Knot authoritative for "." (root priming: ``. NS a.root.lab``), ``com.``
  and ``example.``, which delegate the lab domains with glue;
- ``knot_server``: a second Knot, authoritative for contoso.com, pphosted.com, outlook.com
  and nomx.example (the "child" zones);
- ``unbound_resolver``: Unbound recursing with stub zones to the two Knots.

``postfix_server`` is a private Postfix for the SMTP probe client (:mod:`.postfix`).

Every name server's address in the zones is 127.0.0.1 and its port 53 is mapped to the
right Knot with ``--connect-to`` (:func:`connect_to_args`): nothing leaves loopback and
nothing needs port 53. Each fixture skips, naming the Debian package, when its binary is
absent, fails with the server's own log when it does not come up, and always stops its
process (terminate, bounded wait, kill).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

if TYPE_CHECKING:
    from .postfix import PostfixServer

ZONES_DIR = Path(__file__).parent / "zones"
LOOPBACK = "127.0.0.1"

# zone origin -> file name in ZONES_DIR, per server
PARENT_ZONES: dict[str, str] = {
    ".": "root.zone",
    "com": "com.zone",
    "example": "example.zone",
}
CHILD_ZONES: dict[str, str] = {
    "contoso.com": "contoso.com.zone",
    "pphosted.com": "pphosted.com.zone",
    "outlook.com": "outlook.com.zone",
    "nomx.example": "nomx.example.zone",
}
# The NS names each server stands for (all have the address 127.0.0.1 in the zones).
PARENT_NS = ("a.root.lab", "a.gtld-servers.com", "a.nic.example")
CHILD_NS = (
    "ns1.contoso.com",
    "ns2.contoso.com",
    "ns1.pphosted.com",
    "ns1.outlook.com",
    "ns1.nomx.example",
)

STARTUP_DEADLINE_S = 5.0
STOP_DEADLINE_S = 5.0
START_ATTEMPTS = 3  # a fresh port each time, should another process take ours meanwhile


@dataclass(frozen=True)
class DnsServer:
    """A running DNS server: where to reach it, what it serves, what it has logged."""

    name: str
    host: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_seconds: float = 0.0
    zones: tuple[str, ...] = ()
    ns_names: tuple[str, ...] = ()  # the NS names whose port 53 this server stands for

    @property
    def address(self) -> str:
        """``HOST:PORT``, the form ``--resolver`` takes."""
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def connect_to_args(*servers: DnsServer, names: tuple[str, ...] | None = None) -> list[str]:
    """``--connect-to NS:53:HOST:PORT`` for every NS name the servers stand for.

    ``names`` keeps only those names (e.g. just ns1/ns2.contoso.com).
    """
    args: list[str] = []
    for server in servers:
        for ns in server.ns_names:
            if names is None or ns in names:
                args += ["--connect-to", f"{ns}:53:{server.host}:{server.port}"]
    return args


def free_port(host: str = LOOPBACK, attempts: int = 50) -> int:
    """A port free for both UDP and TCP on ``host`` (DNS listens on both).

    The kernel picks a free TCP port; we keep it only if UDP can bind the same number.
    The sockets are closed before returning, so a narrow race remains: the fixtures
    retry with a new port when the server reports the address in use.
    """
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host} after {attempts} tries")


def find_binary(name: str) -> str | None:
    """``shutil.which`` first, then /usr/sbin (often not on a non-root PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/sbin") / name
    return str(candidate) if candidate.exists() else None


def query_ok(host: str, port: int, qname: str, rdtype: str, timeout: float = 0.5) -> bool:
    """True when ``host:port`` answers ``qname rdtype`` with NOERROR and an answer.

    The UDP socket is connected, so while the server has not bound its port yet the
    kernel's ICMP port-unreachable surfaces at once as ConnectionRefusedError instead of
    costing a whole timeout per poll.
    """
    request = dns.message.make_query(qname, rdtype)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # dnspython expects it: it recvfrom()s, then selects
            sock.connect((host, port))
            response = dns.query.udp(request, host, port=port, timeout=timeout, sock=sock)
    except (OSError, dns.exception.DNSException):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """terminate, wait (bounded), kill if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_DEADLINE_S)


class _PortTaken(Exception):
    """The server exited because its port was taken between our check and its bind."""


def _wait_until_answering(
    name: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    port: int,
    probes: list[tuple[str, str]],
) -> float:
    """Poll until every (qname, rdtype) answers; return seconds taken, or fail with the log."""
    started = time.monotonic()
    pending = list(probes)
    while True:
        pending = [(q, t) for q, t in pending if not query_ok(LOOPBACK, port, q, t)]
        if not pending:
            return time.monotonic() - started
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")
            if "already in use" in log.lower():
                raise _PortTaken(log)
            pytest.fail(
                f"{name} exited with status {process.returncode} during start-up;"
                f" its output:\n{log}"
            )
        if time.monotonic() - started > STARTUP_DEADLINE_S:
            pytest.fail(
                f"{name} on {LOOPBACK}:{port} did not answer {pending} within"
                f" {STARTUP_DEADLINE_S:.0f} s; its output:\n{log_path.read_text(errors='replace')}"
            )
        time.sleep(0.02)


@contextlib.contextmanager
def serving(
    name: str,
    workdir: Path,
    configure: Callable[[int], list[str]],
    ready: list[tuple[str, str]],
    zones: tuple[str, ...] = (),
    ns_names: tuple[str, ...] = (),
) -> Iterator[DnsServer]:
    """Pick a port, ``configure(port)`` -> argv, start it, wait for ``ready``; always stop.

    stdout and stderr go to ``workdir/<name>.log``, quoted in full on any start-up failure.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        argv = configure(port)
        log_path = workdir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            took = _wait_until_answering(name, process, log_path, port, ready)
        except _PortTaken:
            stop_process(process)
            if attempt == START_ATTEMPTS:
                pytest.fail(f"{name}: port taken on each of {START_ATTEMPTS} attempts")
            continue
        except BaseException:
            stop_process(process)
            raise
        try:
            yield DnsServer(name, LOOPBACK, port, workdir, process, log_path, took, zones, ns_names)
        finally:
            stop_process(process)
        return


# --------------------------------------------------------------------------- Knot DNS


def knot_config(workdir: Path, zones: dict[str, Path], host: str, port: int) -> str:
    """knot.conf for a foreground, read-only authoritative server kept inside ``workdir``.

    Everything Knot writes (rundir, control socket, timer/journal databases) lives in
    ``workdir``, so it needs neither /run/knot nor /var/lib/knot. ``user: root:root`` keeps
    the running identity (Knot's default when started as root), said explicitly so the
    file does not depend on the Debian ``knot`` user. Zone files are loaded whole and
    never written back (``zonefile-sync: -1``, ``journal-content: none``).
    """
    zone_lines = "\n".join(
        f'  - domain: "{origin}"\n    file: "{path}"' for origin, path in zones.items()
    )
    return f"""\
server:
    rundir: "{workdir / "run"}"
    user: root:root
    listen: {host}@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{workdir / "db"}"

control:
    listen: "{workdir / "run" / "knot.sock"}"

log:
  - target: stderr
    any: info

template:
  - id: default
    storage: "{workdir / "db"}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: on

zone:
{zone_lines}
"""


def _start_knot(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    zones: dict[str, str],
    ns_names: tuple[str, ...],
) -> contextlib.AbstractContextManager[DnsServer]:
    knotd = find_binary("knotd")
    if knotd is None:
        pytest.skip("knotd not installed (Debian package knot)")
    knotc = find_binary("knotc")
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "run").mkdir()
    (workdir / "db").mkdir()
    (workdir / "zones").mkdir()
    paths: dict[str, Path] = {}
    for origin, filename in zones.items():
        paths[origin] = workdir / "zones" / filename
        shutil.copyfile(ZONES_DIR / filename, paths[origin])
    conf = workdir / "knot.conf"

    def configure(port: int) -> list[str]:
        conf.write_text(knot_config(workdir, paths, LOOPBACK, port))
        # knotd has no check-only mode; knotc conf-check reads the same file.
        if knotc is not None:
            checked = subprocess.run(
                [knotc, "-c", str(conf), "conf-check"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if checked.returncode != 0:
                pytest.fail(f"knotc conf-check refused {conf}:\n{checked.stdout}{checked.stderr}")
        return [knotd, "-c", str(conf)]

    ready = [(origin, "SOA") for origin in zones]
    return serving(name, workdir, configure, ready, tuple(zones), ns_names)


@pytest.fixture(scope="session")
def knot_parent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    """Knot DNS for ".", com. and example. on ``127.0.0.1:<free port>`` (UDP+TCP)."""
    with _start_knot(tmp_path_factory, "knot-parent", PARENT_ZONES, PARENT_NS) as server:
        yield server


@pytest.fixture(scope="session")
def knot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    """Knot DNS for contoso.com, pphosted.com, outlook.com, nomx.example (UDP+TCP)."""
    with _start_knot(tmp_path_factory, "knot", CHILD_ZONES, CHILD_NS) as server:
        yield server


# --------------------------------------------------------------------------- Unbound


def unbound_config(workdir: Path, host: str, port: int, stubs: dict[str, DnsServer]) -> str:
    """unbound.conf for a foreground, loopback-only, non-validating recursive resolver.

    - ``do-not-query-localhost: no``: by default Unbound refuses to send queries to
      127.0.0.0/8, which is exactly where Knot is.
    - ``module-config: "iterator"`` and no trust anchor: the lab zones are unsigned.
    - One stub zone per lab zone, each pointing at the Knot serving it: the referrals in
      the zones name servers at 127.0.0.1 port 53, where nothing listens; stubs keep every
      query on the Knots' ports (``stub-prime: no``: use the stub address as given).
    - ``chroot: ""``/``username: ""``: run as the invoking user in place (root here) —
      no /etc/unbound, no privilege drop to an "unbound" user that may not exist.
    - TTLs are not capped (no ``cache-min-ttl``/``cache-max-ttl``/``cache-max-negative-ttl``)
      so the TTLs seen through Unbound are the zones' own, as evidence should show; the
      zones never change during a session, so caching them is harmless.
    - ``infra-host-ttl: 5``: should Knot be slow once, Unbound forgets that within 5 s
      instead of the default 15 minutes of backing off from it.
    """
    stub_lines = "\n".join(
        f'stub-zone:\n    name: "{origin}"\n    stub-addr: {server.host}@{server.port}\n'
        "    stub-prime: no\n"
        for origin, server in stubs.items()
    )
    return f"""\
server:
    interface: {host}
    port: {port}
    interface-automatic: no
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{workdir}"
    pidfile: "{workdir / "unbound.pid"}"
    use-syslog: no
    logfile: ""
    log-time-ascii: yes
    verbosity: 1
    num-threads: 1
    so-reuseport: no
    outgoing-range: 64
    do-not-query-localhost: no
    module-config: "iterator"
    access-control: 127.0.0.0/8 allow
    qname-minimisation: no
    harden-referral-path: no
    prefetch: no
    minimal-responses: no
    infra-host-ttl: 5

remote-control:
    control-enable: no

{stub_lines}"""


@pytest.fixture(scope="session")
def unbound_resolver(
    knot_parent: DnsServer, knot_server: DnsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DnsServer]:
    """Unbound on ``127.0.0.1:<free port>``, recursing to the two Knots only."""
    unbound = find_binary("unbound")
    if unbound is None:
        pytest.skip("unbound not installed (Debian package unbound)")
    checkconf = find_binary("unbound-checkconf")
    workdir = tmp_path_factory.mktemp("unbound")
    conf = workdir / "unbound.conf"
    stubs = {origin: knot_parent for origin in knot_parent.zones}
    stubs |= {origin: knot_server for origin in knot_server.zones}

    def configure(port: int) -> list[str]:
        conf.write_text(unbound_config(workdir, LOOPBACK, port, stubs))
        if checkconf is not None:
            checked = subprocess.run(
                [checkconf, str(conf)], capture_output=True, text=True, timeout=10, check=False
            )
            if checked.returncode != 0:
                pytest.fail(f"unbound-checkconf refused {conf}:\n{checked.stdout}{checked.stderr}")
        return [unbound, "-d", "-c", str(conf)]

    ready = [(".", "NS"), ("contoso.com", "MX")]
    with serving("unbound", workdir, configure, ready) as server:
        yield server


# --------------------------------------------------------------------------- Postfix


@pytest.fixture(scope="session")
def postfix_server() -> Iterator[PostfixServer]:
    """A private Postfix on ``127.0.0.1:<free port>`` (see :mod:`.postfix`)."""
    from .postfix import running_postfix  # it imports helpers from this module

    with running_postfix() as server:
        yield server
