"""The requests-based API client against the lab's real HTTP server: authentication as each
API takes it, retries inside one deadline, 429 without Retry-After, and no secret in any
URL, repr or error."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from typing import Any

import pytest

from mailtrace.clients.proofpoint.http import (
    ApiFailed,
    ApiResponse,
    ApiUnreachable,
    Credentials,
    HttpApi,
    MissingCredentials,
    Secret,
    Throttled,
    Unauthorized,
    credentials,
)
from mailtrace.lab.http_server import HttpServer, Request, Response

PASSWORD = "pa55-w0rd-not-for-output"
CREDS = Credentials("api-user@contoso.com", Secret(PASSWORD))


def _serve(replies: list[Response], auth: str = "basic", *, timeout: float = 5.0,
           path: str = "/rest/v1/pss/filter", params: dict[str, Any] | None = None,
           ) -> tuple[ApiResponse | Exception, list[Request], float]:
    """Answer with ``replies`` in turn (the last one repeats); return what ``get`` gave,
    the requests the server saw and the seconds it took."""

    def handle(request: Request) -> Response:
        return replies[min(len(server.requests) - 1, len(replies) - 1)]

    async def body() -> tuple[ApiResponse | Exception, float]:
        api = HttpApi(server.url, CREDS, auth)  # type: ignore[arg-type]
        started = time.monotonic()
        try:
            result: ApiResponse | Exception = await asyncio.to_thread(
                api.get, path, params, time.monotonic() + timeout)
        except Exception as exc:
            result = exc
        finally:
            api.close()
        return result, time.monotonic() - started

    async def main() -> tuple[ApiResponse | Exception, float]:
        async with server:
            return await body()

    server = HttpServer(handle)
    result, took = asyncio.run(main())
    return result, server.requests, took


def test_basic_auth_in_a_header_and_nothing_secret_in_the_url():
    result, requests, _ = _serve([Response.json({"result": []})],
                                 params={"env_rcpt": "alice@contoso.com", "count": 100})
    assert isinstance(result, ApiResponse)
    assert (result.status, result.data, result.is_json) == (200, {"result": []}, True)
    [request] = requests
    assert request.method == "GET"
    assert request.query == {"env_rcpt": ["alice@contoso.com"], "count": ["100"]}
    expected = base64.b64encode(f"api-user@contoso.com:{PASSWORD}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert PASSWORD not in request.target and PASSWORD not in str(result.evidence())
    assert result.evidence()["request"].startswith("GET /rest/v1/pss/filter?env_rcpt=")


def test_essentials_takes_x_user_and_x_password_not_basic():
    result, [request], _ = _serve([Response.json({"users": []})], "headers",
                                  path="/orgs/contoso.com/users")
    assert isinstance(result, ApiResponse)
    assert (request.headers["x-user"], request.headers["x-password"]) == (
        "api-user@contoso.com", PASSWORD)
    assert "authorization" not in request.headers


def test_a_server_error_is_retried_within_the_deadline():
    result, requests, _ = _serve([Response(503, b"busy"), Response.json({"result": []})])
    assert isinstance(result, ApiResponse) and result.status == 200
    assert len(requests) == 2
    assert [a.get("status") for a in result.evidence()["attempts"]] == [503, 200]


def test_a_server_error_that_persists_is_a_failure_with_its_attempts():
    result, requests, _ = _serve([Response(500, b"oops")])
    assert isinstance(result, ApiFailed) and len(requests) == 3
    assert [a["status"] for a in result.attempts] == [500, 500, 500]


def test_429_without_retry_after_is_not_retried():
    result, requests, _ = _serve([Response(429, b"Too Many Requests")])
    assert isinstance(result, Throttled) and len(requests) == 1
    assert "429" in result.reason and "no Retry-After" in result.reason


def test_429_with_a_retry_after_that_fits_is_waited_for():
    result, requests, _ = _serve([Response(429, b"", {"Retry-After": "0"}),
                                  Response.json({"result": []})])
    assert isinstance(result, ApiResponse) and len(requests) == 2


def test_429_with_a_retry_after_beyond_the_deadline_gives_up_at_once():
    result, requests, took = _serve([Response(429, b"", {"Retry-After": "3600"})])
    assert isinstance(result, Throttled) and len(requests) == 1 and took < 2
    assert "Retry-After 3600" in result.reason


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_unauthorized_and_never_echoed(status):
    result, requests, _ = _serve([Response(status, b"<html>denied</html>")])
    assert isinstance(result, Unauthorized) and len(requests) == 1
    assert f"HTTP {status}" in result.reason
    assert PASSWORD not in repr(result) and PASSWORD not in str(result.attempts)


@pytest.mark.parametrize(("reply", "data", "text"), [
    (Response(204), None, None),
    (Response(200, b""), None, None),
    (Response(200, b"<html><body>maintenance</body></html>", {"Content-Type": "text/html"}),
     None, "<html><body>maintenance</body></html>"),
    (Response(200, b"\xff\xfe not json"), None, "\ufffd\ufffd not json"),
    (Response(404, b'{"error": "not found"}'), {"error": "not found"}, None),
])
def test_bodies_that_are_empty_or_not_json_are_kept_as_they_are(reply, data, text):
    result, _, _ = _serve([reply])
    assert isinstance(result, ApiResponse)
    assert (result.data, result.text) == (data, text)
    assert result.is_json is (text is None)


def test_a_redirect_is_not_followed_so_credentials_stay_with_the_declared_host():
    result, requests, _ = _serve([Response(302, b"", {"Location": "http://127.0.0.2:9/x"})])
    assert isinstance(result, ApiFailed) and "HTTP 302" in result.reason
    assert len(requests) == 1


def test_a_silent_server_costs_the_deadline_not_more():
    result, _, took = _serve([Response(200, b"{}", delay=3.0)], timeout=0.5)
    assert isinstance(result, ApiUnreachable)
    assert took < 1.5
    assert "timeout" in result.reason or "deadline" in result.reason


def test_a_closed_port_is_unreachable_with_the_attempts():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = HttpApi(f"http://127.0.0.1:{port}", CREDS)
    with pytest.raises(ApiUnreachable) as info:
        api.get("/rest/v1/quarantine", None, time.monotonic() + 3)
    assert [a["result"] for a in info.value.attempts] == ["connection failed"] * 3
    assert PASSWORD not in str(info.value)


def test_reprs_hide_the_secret():
    api = HttpApi("https://pp.example:10000", CREDS)
    for text in (repr(api), repr(CREDS), str(CREDS.password), repr(CREDS.password)):
        assert PASSWORD not in text and "api-user" not in text.replace("HttpApi", "")


@pytest.mark.parametrize(("environ", "names", "needle"), [
    ({}, ("PP_USER", "PP_PASS"), "PP_USER, PP_PASS"),
    ({"PP_USER": "u"}, ("PP_USER", "PP_PASS"), "PP_PASS"),
    ({"PP_USER": "u", "PP_PASS": ""}, ("PP_USER", "PP_PASS"), "PP_PASS"),
    ({}, (None, "PP_PASS"), "names no credentials"),
])
def test_missing_credentials_name_the_variables(environ, names, needle):
    with pytest.raises(MissingCredentials, match=needle):
        credentials(environ, *names, "the Proofpoint admin API")


def test_credentials_come_from_the_mapping_given():
    creds = credentials({"U": "user", "P": PASSWORD}, "U", "P", "x")
    assert (creds.user, creds.password.reveal()) == ("user", PASSWORD)


def test_a_certificate_the_client_cannot_trust_is_unreachable_never_a_fault():
    """TLS is verified (the lab CA is not in the trust store): the API could not be asked."""
    from mailtrace.lab.ca import LabCA

    ca = LabCA()
    try:
        server = HttpServer(lambda r: Response.json({}), tls=ca.issue("localhost",
                                                                     "127.0.0.1").server_context())

        async def main() -> Exception | ApiResponse:
            async with server:
                api = HttpApi(f"https://localhost:{server.port}", CREDS)
                try:
                    return await asyncio.to_thread(api.get, "/rest/v1/quarantine", None,
                                                   time.monotonic() + 5)
                except Exception as exc:
                    return exc
                finally:
                    api.close()

        result = asyncio.run(main())
        assert isinstance(result, ApiUnreachable) and "TLS failure" in result.reason
        assert len(result.attempts) == 1  # not retried: it would fail the same way
        assert server.requests == []  # nothing, credentials included, went over it

        async def trusting() -> ApiResponse:
            async with server:
                api = HttpApi(f"https://localhost:{server.port}", CREDS, ca_file=ca.ca_file)
                try:
                    return await asyncio.to_thread(api.get, "/rest/v1/quarantine", None,
                                                   time.monotonic() + 5)
                finally:
                    api.close()

        # with the CA given (--ca-file: the lab's, or a TLS-inspecting proxy's) it works
        assert asyncio.run(trusting()).status == 200
    finally:
        ca.close()


def test_a_credential_no_header_can_carry_is_refused_by_name_never_quoted():
    from mailtrace.clients.proofpoint.http import MissingCredentials, credentials

    env = {"PP_USER": "api@contoso.com", "PP_PASS": "hunter€2xyz"}
    with pytest.raises(MissingCredentials) as info:
        credentials(env, "PP_USER", "PP_PASS", "the PPS API")
    assert "PP_PASS" in str(info.value) and "hunter" not in str(info.value)
    assert "€" not in str(info.value)


def test_a_body_that_trickles_past_the_deadline_is_cut_off():
    import socket
    import threading

    from mailtrace.clients.proofpoint.http import ApiUnreachable, HttpApi

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                break
            stop.wait(0.2)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    api = HttpApi(f"http://127.0.0.1:{port}", CREDS)
    started = time.monotonic()
    try:
        with pytest.raises(ApiUnreachable, match=r"deadline|could not be reached"):
            api.get("/rest/v1/pss/filter", None, time.monotonic() + 1.0)
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        listener.close()
