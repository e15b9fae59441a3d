"""The lab's HTTP stand-in server and certificate authority, seen by real clients."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import urllib.error
import urllib.request

import pytest

from mailtrace.lab.ca import LabCA
from mailtrace.lab.http_server import HttpServer, Request, Response


def _handle(request: Request) -> Response:
    if request.path == "/empty":
        return Response(204)
    return Response.json({"path": request.path, "q": request.arg("q")})


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _run(body):  # type: ignore[no-untyped-def]
    return asyncio.run(body())


def test_answers_and_records_the_requests_it_saw():
    async def body() -> None:
        async with HttpServer(_handle) as server:
            status, data = await asyncio.to_thread(_get, server.url + "/rest/v1?q=a%20b")
            assert (status, json.loads(data)) == (200, {"path": "/rest/v1", "q": "a b"})
            status, data = await asyncio.to_thread(_get, server.url + "/empty")
            assert (status, data) == (204, b"")
            assert [(r.method, r.path) for r in server.requests] == [
                ("GET", "/rest/v1"), ("GET", "/empty")]
    _run(body)


def test_garbage_and_oversized_heads_get_an_error_not_a_hang():
    def raw(port: int, payload: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            return s.recv(200)

    async def body() -> None:
        async with HttpServer(_handle) as server:
            reply = await asyncio.to_thread(raw, server.port, b"NONSENSE\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 400 ")
            reply = await asyncio.to_thread(raw, server.port, b"GET / HTTP/1.1\r\nX: "
                                            + b"a" * 70_000 + b"\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 431 ")
    _run(body)


def test_tls_with_the_lab_ca_validates_and_wrong_certificates_do_not():
    ca = LabCA()
    try:
        client = ssl.create_default_context(cafile=str(ca.ca_file))

        async def serve(cert, url_host: str) -> tuple[int, bytes]:
            async with HttpServer(_handle, tls=cert.server_context()) as server:
                url = f"https://{url_host}:{server.port}/x"
                return await asyncio.to_thread(_get, url, client)

        assert _run(lambda: serve(ca.issue("localhost"), "localhost"))[0] == 200
        for cert, why in ((ca.issue("localhost", expired=True), "expired"),
                          (ca.issue("other.example"), "match")):
            with pytest.raises(urllib.error.URLError, match=why):
                _run(lambda cert=cert: serve(cert, "localhost"))
    finally:
        ca.close()
