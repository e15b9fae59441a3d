"""Read-only HTTPS GETs to the gateway's APIs, on ``requests``: one deadline, retries inside it.

Errors are mapped once, here (as httpx does), into a small tree; every one carries the
trail of attempts and says why the API could not be asked — the probe turns it into *not
tested*, never into a fault of the tier::

    ApiError
    ├── MissingCredentials   the topology names env vars that are not set
    ├── Unauthorized         401 / 403: wrong credentials or a role without the module
    ├── Throttled            429 (TAP sends no Retry-After: it is not retried)
    ├── ApiUnreachable       connection refused, reset, TLS failure, timeout
    └── ApiFailed            any other 4xx or 5xx (5xx retried while the deadline allows)

Credentials travel only in headers (HTTP Basic, or Essentials' X-User / X-Password), never
in a URL; they are held in :class:`Secret`, whose repr hides the value, and no message,
evidence or exception here names them. Only GET is ever sent: nothing here can change the
gateway.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit

from mailtrace.core.evidence import ApiCall, Observed
from mailtrace.core.network import Redirects, is_loopback

if TYPE_CHECKING:  # requests is imported when a request is made, not with the probes
    import requests

#: One attempt of a call, as kept in evidence: what was sent and what came back.
Attempt = dict[str, Any]

#: Cap of one attempt's connect phase; the read phase gets whatever the deadline leaves.
CONNECT_TIMEOUT = 5.0
#: First back-off between attempts (doubled each time), never past the deadline.
BACKOFF = 0.2
#: Non-JSON bodies are kept for evidence up to this many characters.
TEXT_LIMIT = 300
MAX_BODY = 16 * 1024 * 1024  # far more than any answer these APIs give for one recipient
USER_AGENT = "mailtrace (read-only mail-flow diagnosis)"


class Secret:
    """A credential value: usable by the client, never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class Credentials:
    user: str = field(repr=False)
    password: Secret = field(repr=False)


class ApiError(Exception):
    """The API could not be asked; ``reason`` is one sentence for *not tested*."""

    def __init__(self, reason: str, attempts: list[Attempt] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts or []

    def evidence(self) -> list[Observed]:
        """Each attempt, as evidence of why the API could not be asked."""
        return [Observed(a) for a in self.attempts]


class MissingCredentials(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class Throttled(ApiError):
    pass


class ApiUnreachable(ApiError):
    pass


class ApiFailed(ApiError):
    pass


def credentials(environ: Mapping[str, str], user_env: str | None,
                password_env: str | None, what: str) -> Credentials:
    """Read the credentials the topology names, from ``environ`` only."""
    if not user_env or not password_env:
        raise MissingCredentials(f"the topology names no credentials for {what}")
    missing = [name for name in (user_env, password_env) if not environ.get(name)]
    if missing:
        raise MissingCredentials(
            f"credentials for {what} not set: environment variable(s) {', '.join(missing)}")
    for name in (user_env, password_env):  # named, never shown: it may be the secret
        if not _header_safe(environ[name]):
            raise MissingCredentials(f"environment variable {name} for {what} holds characters "
                                     "an HTTP header cannot carry")
    return Credentials(environ[user_env], Secret(environ[password_env]))


def _header_safe(value: str) -> bool:
    """Printable Latin-1, what HTTP headers (and Basic auth in requests) can carry."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


@dataclass(frozen=True)
class ApiResponse:
    """One answered GET: status, parsed JSON (``None`` for 204 or an empty body), the text
    of a body that is not JSON, and where and how it was obtained."""

    url: str  # path and query, no credentials
    status: int
    data: Any
    text: str | None  # the body when it is not JSON (truncated), else None
    elapsed_ms: float
    attempts: list[Attempt]

    @property
    def is_json(self) -> bool:
        return self.text is None

    def evidence(self) -> ApiCall:
        details: dict[str, Any] = {}
        if len(self.attempts) > 1:
            details["attempts"] = self.attempts
        if self.text is not None:
            details["body"] = self.text
        return ApiCall(f"GET {self.url}", self.status, elapsed_ms=self.elapsed_ms,
                       details=details)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (RFC 9110 §10.2.3); the HTTP-date form is not waited for."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass
class HttpApi:
    """GETs under one base URL with one way of authenticating.

    ``auth`` is ``basic`` (PPS/PoD, TAP) or ``headers`` (Essentials' X-User/X-Password).
    Blocking: call :meth:`get` through ``asyncio.to_thread`` from a probe. Safe to share
    between threads: a requests Session is not, so each GET takes one from a small pool
    (kept connections are reused) and gives it back.
    """

    base_url: str
    creds: Credentials = field(repr=False)
    auth: Literal["basic", "headers"] = "basic"
    max_attempts: int = 3
    #: CA certificates to trust instead of the system's (a TLS-inspecting proxy, the lab).
    ca_file: Path | None = None
    #: ``--connect-to`` rules: a connection for the API's host:port may go elsewhere.
    redirects: Redirects | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.host = parts.hostname or ""
        # Given with each request: a session-level value loses to REQUESTS_CA_BUNDLE.
        self._verify: str | bool = str(self.ca_file) if self.ca_file else True
        self._idle: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def _new_session(self) -> requests.Session:
        from mailtrace.clients.http import session

        http = session(self.redirects)
        # Proxies and .netrc from the environment serve a real admin behind a proxy; the
        # lab's loopback stand-ins are reached directly, whatever the environment says.
        http.trust_env = not is_loopback(self.host)
        http.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if self.auth == "basic":
            http.auth = (self.creds.user, self.creds.password.reveal())
        else:
            http.headers.update({"X-User": self.creds.user,
                                 "X-Password": self.creds.password.reveal()})
        with self._lock:
            self._all.append(http)
        return http

    @contextlib.contextmanager
    def _session(self) -> Iterator[requests.Session]:
        try:
            http = self._idle.get_nowait()
        except queue.Empty:
            http = self._new_session()
        try:
            yield http
        finally:
            self._idle.put(http)

    def __repr__(self) -> str:
        return f"HttpApi({self.base_url!r}, auth={self.auth!r})"

    def close(self) -> None:
        with self._lock:
            for http in self._all:
                http.close()

    def get(self, path: str, params: Mapping[str, str | int | list[str]] | None,
            deadline: float) -> ApiResponse:
        """GET ``base_url + path``; retry connection errors, 5xx and a 429 whose
        Retry-After fits, while ``deadline`` (a ``time.monotonic()`` value) allows."""
        import requests

        from mailtrace.clients.http import read_body

        query = urlencode(params or {}, doseq=True)
        shown = urlsplit(self.base_url).path + path + (f"?{query}" if query else "")
        url = self.base_url + path + (f"?{query}" if query else "")
        attempts: list[Attempt] = []
        started = time.monotonic()
        for attempt in range(1, self.max_attempts + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiUnreachable(f"no answer from {self.host} within the deadline "
                                     f"(GET {path})", attempts)
            wait: float | None = None
            t0 = time.monotonic()
            try:
                with self._session() as http:
                    response = http.get(
                        url, timeout=(min(CONNECT_TIMEOUT, remaining), remaining),
                        allow_redirects=False, verify=self._verify, stream=True)
                    body = read_body(response, deadline, MAX_BODY)
            except requests.RequestException as exc:
                # requests' message can hold the full URL; name only the kind of failure.
                failure = _failure(exc)
                attempts.append({"attempt": attempt, "request": f"GET {shown}",
                                 "result": failure,
                                 "elapsed_ms": round((time.monotonic() - t0) * 1000, 1)})
                wait = BACKOFF * 2 ** (attempt - 1)
                # A certificate that cannot be trusted will not be trusted a moment later.
                final = isinstance(exc, requests.exceptions.SSLError)
                if final or attempt == self.max_attempts or time.monotonic() + wait >= deadline:
                    raise ApiUnreachable(f"{self.host} could not be reached for GET {path}: "
                                         f"{failure}", attempts) from None
                time.sleep(wait)
                continue
            except (UnicodeError, ValueError) as exc:
                # Encoding a header failed: the message would quote the secret. Its kind only.
                raise ApiFailed(f"GET {path} could not be sent ({type(exc).__name__})",
                                attempts) from None
            status = response.status_code
            attempts.append({"attempt": attempt, "request": f"GET {shown}", "status": status,
                             "elapsed_ms": round((time.monotonic() - t0) * 1000, 1)})
            if status in (401, 403):
                raise Unauthorized(
                    f"{self.host} refused the credentials for GET {path} (HTTP {status}): "
                    "check the account and that its role includes this API", attempts)
            if status == 429:
                wait = _retry_after(response.headers.get("Retry-After"))
                if (wait is None or attempt == self.max_attempts
                        or time.monotonic() + wait >= deadline):
                    after = "no Retry-After" if wait is None else f"Retry-After {wait:g} s"
                    raise Throttled(f"{self.host} throttled GET {path} (HTTP 429, {after}): "
                                    "the API's request quota is spent", attempts)
                time.sleep(wait)
                continue
            if status >= 500:
                wait = BACKOFF * 2 ** (attempt - 1)
                if attempt == self.max_attempts or time.monotonic() + wait >= deadline:
                    raise ApiFailed(f"{self.host} failed GET {path} (HTTP {status})", attempts)
                time.sleep(wait)
                continue
            if (status >= 400 and status != 404) or 300 <= status < 400:
                raise ApiFailed(f"{self.host} answered GET {path} with HTTP {status}", attempts)
            data, text = _body(response.status_code, body)
            elapsed = (time.monotonic() - started) * 1000
            return ApiResponse(shown, status, data, text, elapsed, attempts)
        raise ApiFailed(f"GET {path}: no attempt left", attempts)  # pragma: no cover


def _failure(exc: requests.RequestException) -> str:
    import requests

    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failure"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _body(status: int, raw: bytes) -> tuple[Any, str | None]:
    """(JSON value, None), or (None, text) for a body that is not JSON; 204 and an empty
    body are (None, None)."""
    if status == 204 or not raw.strip():
        return None, None
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        return json.loads(raw), None
    return None, raw[:TEXT_LIMIT].decode("utf-8", "replace")
