"""Where to send packets: resolver endpoints and curl-style ``--connect-to`` redirects."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache


class EndpointError(ValueError):
    """A malformed ``--resolver`` or ``--connect-to`` value (a usage error, exit 2)."""


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ConnectTo:
    """A connection to ``host:port`` goes to ``addr:to_port`` instead (like curl's --connect-to)."""

    host: str
    port: int
    addr: str
    to_port: int

    def __str__(self) -> str:
        addr = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"{self.host}:{self.port}:{addr}:{self.to_port}"


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise EndpointError(f"{what}: port {text!r} is not a number between 1 and 65535")
    return int(text)


def _ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise EndpointError(f"{what}: {text!r} is not an IPv4 or IPv6 address") from None


def _split_host_port(text: str, what: str) -> tuple[str, str | None]:
    """``1.2.3.4``, ``1.2.3.4:53``, ``[::1]:53`` or ``::1``."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise EndpointError(f"{what}: expected [IPv6]:PORT, got {text!r}")
        return host, rest[1:] or None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def parse_resolver(text: str, default_port: int = 53) -> Endpoint:
    """Parse ``--resolver IP[:PORT]``."""
    what = f"--resolver {text}"
    host, port = _split_host_port(text.strip(), what)
    return Endpoint(_ip(host, what), _port(port, what) if port is not None else default_port)


def parse_connect_to(text: str) -> ConnectTo:
    """Parse ``--connect-to HOST:PORT:ADDR:PORT`` (ADDR may be ``[IPv6]``)."""
    what = f"--connect-to {text}"
    host, sep, rest = text.partition(":")
    port, sep2, target = rest.partition(":")
    if not (sep and sep2 and host and target):
        raise EndpointError(f"{what}: expected HOST:PORT:ADDR:PORT")
    addr, to_port = _split_host_port(target, what)
    if to_port is None:
        addr, _, to_port = target.rpartition(":")
        if not addr:
            raise EndpointError(f"{what}: expected HOST:PORT:ADDR:PORT")
    return ConnectTo(
        host.lower().rstrip("."), _port(port, what), _ip(addr, what), _port(to_port, what)
    )


@dataclass(frozen=True)
class Redirects:
    rules: tuple[ConnectTo, ...] = ()

    def resolve(self, host: str | None, address: str, port: int) -> Endpoint:
        """Where a connection meant for ``host``/``address`` on ``port`` really goes (the
        first rule that names either, on that port)."""
        index = self._index
        found = index.get((address, port))
        if host:
            other = index.get((host.lower().rstrip("."), port))
            if other is not None and (found is None or other[0] < found[0]):
                found = other
        return found[1] if found is not None else Endpoint(address, port)

    @cached_property
    def _index(self) -> dict[tuple[str, int], tuple[int, Endpoint]]:
        return _rule_index(self.rules)


@lru_cache(maxsize=64)
def _rule_index(rules: tuple[ConnectTo, ...]) -> dict[tuple[str, int], tuple[int, Endpoint]]:
    """Each (host, port) a rule names, with the first such rule's place and target: every
    connection of a run asks, a fleet's tens of thousands (its runs share the rules).
    Read only."""
    index: dict[tuple[str, int], tuple[int, Endpoint]] = {}
    for place, rule in enumerate(rules):
        index.setdefault((rule.host, rule.port), (place, Endpoint(rule.addr, rule.to_port)))
    return index


_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")


def check_host_name(text: str) -> str:
    """A host name (letters, digits, '-', '_' labels), lowercased without a final dot."""
    host = text.strip().lower().rstrip(".")
    if not host or len(host) > 253 or not all(_HOST_LABEL.match(x) for x in host.split(".")):
        raise EndpointError(f"{text!r} is not a host name")
    return host


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``HOST[:PORT]``, ``ADDR[:PORT]`` or ``[IPv6]:PORT``: nothing else reaches a wire."""
    host, port = _split_host_port(text.strip(), repr(text))
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = check_host_name(host)
    return host, _port(port, repr(text)) if port is not None else default_port


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: the only place plain http:// may go."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
