"""A small HTTP/1.1 server for the lab's API stand-ins (Graph, Proofpoint, MTA-STS).

Real HTTP on loopback, over TLS when given a context: request line, headers, a
Content-Length body, keep-alive. A stand-in is one ``handle(request) -> Response``
function; the server records every request it saw (method, path, query, headers), so tests
can prove what a client sent — only GETs, say, or no secret in a URL. Bounded: head
size, header count, body size and idle time are capped, so a hostile client cannot hold
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024
IDLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # as sent: path and query
    headers: dict[str, str]  # names lowercased
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (latency injection)

    @classmethod
    def json(cls, data: Any, status: int = 200, **kwargs: Any) -> Response:
        body = json.dumps(data).encode()
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return cls(status, body, headers, **kwargs)


Handler = Callable[[Request], Response | Awaitable[Response]]


class HttpServer:
    """``async with HttpServer(handle) as server: server.url``."""

    def __init__(self, handle: Handler, *, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.handle = handle
        self.host = host
        self.port = port
        self.tls = tls
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  ssl=self.tls, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await asyncio.wait_for(_read_request(reader), IDLE_TIMEOUT)
                if request is None:
                    break
                if isinstance(request, Response):  # the request could not be read
                    await _write(writer, request, close=True)
                    break
                self.requests.append(request)
                outcome = self.handle(request)
                response = await outcome if isinstance(outcome, Awaitable) else outcome
                if response.delay:
                    await asyncio.sleep(response.delay)
                close = request.headers.get("connection", "").lower() == "close"
                await _write(writer, response, close=close)
                if close:
                    break
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            # stop() cancels idle keep-alive connections; ending normally keeps asyncio's
            # own done-callback (Python 3.11) from logging the cancellation as an error.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()


def _error(status: HTTPStatus) -> Response:
    return Response(status.value, status.phrase.encode(), {"Content-Type": "text/plain"})


async def _read_request(reader: asyncio.StreamReader) -> Request | Response | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        return None if not exc.partial.strip() else _error(HTTPStatus.BAD_REQUEST)
    except asyncio.LimitOverrunError:
        return _error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return _error(HTTPStatus.BAD_REQUEST)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or len(headers) >= MAX_HEADERS:
            return _error(HTTPStatus.BAD_REQUEST)
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return _error(HTTPStatus.BAD_REQUEST)
    if not 0 <= length <= MAX_BODY:
        return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    body = await reader.readexactly(length) if length else b""
    return Request(parts[0], parts[1], headers, body)


async def _write(writer: asyncio.StreamWriter, response: Response, *, close: bool) -> None:
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = "Unknown"
    headers = dict(response.headers)
    if response.status not in (204, 304):  # these carry no body, hence no length
        headers = {"Content-Length": str(len(response.body)), **headers}
    if close:
        headers["Connection"] = "close"
    head = f"HTTP/1.1 {response.status} {phrase}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1") + response.body)
    await writer.drain()
