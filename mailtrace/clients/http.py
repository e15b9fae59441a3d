"""HTTP(S) through ``requests`` that honours the project's ``--connect-to`` rules.

A connection meant for ``host:port`` goes to the rule's address instead, while the request
stays about ``host``: the ``Host`` header, TLS SNI and certificate-name checking all use
the original name, so a lab server on a loopback port is checked exactly as the real one
would be (curl's ``--connect-to`` semantics). Without a matching rule the adapter is
plain ``requests``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool

from mailtrace.core.network import Endpoint, Redirects

_DEFAULT_PORTS = {"http": 80, "https": 443}


class ConnectToAdapter(HTTPAdapter):
    def __init__(self, redirects: Redirects, **kwargs: Any) -> None:
        self.redirects = redirects
        super().__init__(**kwargs)

    def _redirect(self, url: str) -> tuple[str, Endpoint] | None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
        endpoint = self.redirects.resolve(host, host, port)
        if endpoint == Endpoint(host, port):
            return None
        return host, endpoint

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: bool | str | None,
        proxies: Any = None, cert: Any = None,
    ) -> ConnectionPool:
        found = self._redirect(request.url or "")
        if found is None:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        host, endpoint = found
        host_params, key_kwargs = self.build_connection_pool_key_attributes(
            request, True if verify is None else verify, cert)
        pool_kwargs: dict[str, Any] = dict(key_kwargs)
        if host_params["scheme"] == "https":
            # SNI and the certificate check are about the name asked for, not the address.
            pool_kwargs.update(server_hostname=host, assert_hostname=host)
        pool: ConnectionPool = self.poolmanager.connection_from_host(
            endpoint.address, endpoint.port, scheme=host_params["scheme"],
            pool_kwargs=pool_kwargs)
        return pool

    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        if self._redirect(request.url or "") is not None:
            request.headers["Host"] = urlsplit(request.url or "").netloc
        return super().send(request, *args, **kwargs)


def session(redirects: Redirects | None = None) -> requests.Session:
    """A session whose connections follow ``redirects`` (``--connect-to``)."""
    s = requests.Session()
    if redirects is not None and redirects.rules:
        adapter = ConnectToAdapter(redirects)
        s.mount("https://", adapter)
        s.mount("http://", adapter)
    return s


CHUNK = 64 * 1024


class BodyTooLarge(requests.exceptions.ContentDecodingError):
    """The body grew past the reader's limit; it was not read further."""


def read_body(response: requests.Response, deadline: float, limit: int) -> bytes:
    """The body of a ``stream=True`` response, within ``deadline`` (a ``time.monotonic()``
    value) and ``limit`` bytes: a server that trickles its body, or never ends it, is cut
    off (requests' read timeout bounds each read, not the whole response)."""
    chunks: list[bytes] = []
    size = 0
    try:
        # read1 returns what has arrived (a full-size read would wait for CHUNK bytes).
        while chunk := response.raw.read1(CHUNK, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"body larger than {limit} bytes")
            if time.monotonic() > deadline:
                raise requests.exceptions.ReadTimeout("body not complete within the deadline")
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks)
