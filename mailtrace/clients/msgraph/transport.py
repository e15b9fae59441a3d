"""The HTTP transport under the Graph client: ``--connect-to``, ``--ca-file``, a body cap.

A connection meant for the Graph host:port goes to the ``--connect-to`` rule's address
instead, while the request stays about the host: the ``Host`` header, TLS SNI and the
certificate's name check all use the original name (curl's ``--connect-to`` semantics,
as ``clients/http.py`` does for the gateway's APIs), so a stand-in on a loopback port is
checked exactly as Graph itself would be. ``--ca-file`` replaces the system's CAs, for
admins behind a TLS-inspecting proxy. No answer body is read past :data:`MAX_BODY`.

Imported when a client is made (``client.connect``), not with the client module: httpx is
not needed to list the probes.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from mailtrace.core.network import Endpoint, Redirects

#: Far more than any answer the probes ask for (a page of 1,000 message traces is ~1 MB).
MAX_BODY = 16 * 1024 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}


def tls_context(ca_file: Path | None) -> ssl.SSLContext | bool:
    """What to verify servers against: ``ca_file``'s CAs only, else httpx's default."""
    if ca_file is None:
        return True
    return ssl.create_default_context(cafile=str(ca_file))


def redirected(redirects: Redirects, url: str) -> bool:
    """Does a ``--connect-to`` rule send connections for ``url``'s host:port elsewhere?"""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    return redirects.resolve(host, host, port) != Endpoint(host, port)


class BodyTooLarge(httpx.DecodingError):
    """An answer body grew past :data:`MAX_BODY`; it was not read further."""


class CappedBody(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, limit: int | None = None) -> None:
        self.stream = stream
        self.limit = MAX_BODY if limit is None else limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self.stream:
            size += len(chunk)
            if size > self.limit:
                raise BodyTooLarge(f"answer body larger than {self.limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


class GraphTransport(httpx.AsyncBaseTransport):
    """One connection pool; ``redirects`` decide where each connection really goes."""

    def __init__(self, redirects: Redirects, verify: ssl.SSLContext | bool,
                 trust_env: bool) -> None:
        self.redirects = redirects
        self.pool = httpx.AsyncHTTPTransport(verify=verify, trust_env=trust_env)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or DEFAULT_PORTS.get(url.scheme, 443)
        endpoint = self.redirects.resolve(url.host, url.host, port)
        if endpoint != Endpoint(url.host, port):
            # The headers (Host among them) and the name TLS checks stay the host's.
            request = httpx.Request(
                request.method, url.copy_with(host=endpoint.address, port=endpoint.port),
                headers=request.headers, stream=request.stream,
                extensions={**request.extensions, "sni_hostname": url.host})
        response = await self.pool.handle_async_request(request)
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = CappedBody(response.stream)
        return response

    async def aclose(self) -> None:
        await self.pool.aclose()
