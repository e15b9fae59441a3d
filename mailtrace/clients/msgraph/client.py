"""Microsoft Graph, read-only, through msgraph-sdk (async): the only code that talks to Graph.

One :class:`GraphClient` per tier per run, built by the engine, shared by the tier's
probes and closed when the run ends. Each call goes
through :meth:`GraphClient.ask`, which records what was asked and answered (the
evidence), bounds the call by the probe's deadline, honours ``Retry-After`` when the
wait fits that deadline, and maps every failure once, here, to a small tree:

    GraphError
    ├── GraphDenied       401/403: a permission (or a prerequisite) is missing
    ├── GraphNotFound     404: the object does not exist (its meaning is the caller's)
    ├── GraphThrottled    429/503/504 whose Retry-After does not fit the deadline
    ├── GraphUnavailable  no connection, no answer in time, another error status
    └── GraphBadResponse  an answer the SDK cannot read (HTML, malformed JSON, no body)

The SDK's own retry handler is switched off: it would sleep up to 180 s on a
Retry-After, past any deadline (reference §6, "Retry / throttling middleware").

The SDK runs on an event loop of its own, in a thread (:class:`SdkLoop`): it spends a few
milliseconds of CPU on every answer (deserialising entities), and on the triage's loop
that would hold up the DNS probes' answers queued behind it.
msgraph is imported inside the functions: importing it takes most of a second.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from mailtrace.clients.msgraph.credentials import (
    GraphConfigError,
    GraphTarget,
    SharedToken,
    graph_target,
    make_credential,
)
from mailtrace.clients.msgraph.signin import SignInExpired
from mailtrace.core.evidence import ApiCall
from mailtrace.topology.model import GraphAccess

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials import TokenCredential
    from kiota_abstractions.headers_collection import HeadersCollection
    from msgraph.graph_service_client import GraphServiceClient

T = TypeVar("T")

#: How much of an unreadable body is kept as evidence.
EXCERPT = 300
RETRYABLE = frozenset({429, 503, 504})


@dataclass
class Exchange:
    """One call to Graph as seen on the wire: the evidence behind every Graph finding."""

    call: str  # what was asked, e.g. "list users by address"
    method: str = ""
    url: str = ""  # path and query, decoded (no host: the topology names it)
    status: int | None = None
    request_id: str | None = None
    content_type: str | None = None
    excerpt: str | None = None  # the start of a body that could not be read
    attempts: int = 0
    elapsed_ms: float = 0.0

    def evidence(self, **record: Any) -> ApiCall:
        """The call as evidence, with what its answer held (``record``)."""
        details: dict[str, Any] = {}
        if self.request_id:
            details["request_id"] = self.request_id
        if self.excerpt is not None:
            details["content_type"] = self.content_type
            details["body_excerpt"] = self.excerpt
        if self.attempts > 1:
            details["attempts"] = self.attempts
        return ApiCall(f"{self.method} {self.url}".strip(), self.status, "microsoft-graph",
                       self.call, self.elapsed_ms, details, record)


class GraphError(Exception):
    def __init__(self, message: str, exchange: Exchange) -> None:
        super().__init__(message)
        self.exchange = exchange


class GraphDenied(GraphError):
    def __init__(self, message: str, exchange: Exchange, code: str | None) -> None:
        super().__init__(message, exchange)
        self.code = code


class GraphNotFound(GraphError):
    def __init__(self, message: str, exchange: Exchange, code: str | None) -> None:
        super().__init__(message, exchange)
        self.code = code


class GraphThrottled(GraphError):
    def __init__(self, message: str, exchange: Exchange, retry_after: float | None) -> None:
        super().__init__(message, exchange)
        self.retry_after = retry_after


class GraphUnavailable(GraphError):
    pass


class GraphBadResponse(GraphError):
    pass


_CURRENT: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "mailtrace_graph_exchange", default=None)


async def _record(response: httpx.Response) -> None:
    """httpx response hook: note the exchange of the call running in this task."""
    exchange = _CURRENT.get()
    if exchange is None:
        return
    request = response.request
    exchange.method = request.method
    exchange.url = unquote(request.url.raw_path.decode("ascii", "replace"))
    exchange.status = response.status_code
    exchange.request_id = response.headers.get("request-id")
    exchange.content_type = response.headers.get("content-type")
    await response.aread()
    if not response.is_success or "json" not in (exchange.content_type or ""):
        exchange.excerpt = response.content[:EXCERPT].decode("utf-8", "replace")


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date
    (RFC 9110 §10.2.3)."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


def headers(**values: str) -> HeadersCollection:
    """A fresh header collection for one request.

    Never share one: kiota's ``RequestConfiguration`` once defaulted ``headers`` to a
    single collection for every instance, so a header added for one call (the
    ``ConsistencyLevel: eventual`` of an advanced query) leaked into every later call
    (reference §6, the shared-headers pitfall).
    """
    from kiota_abstractions.headers_collection import HeadersCollection

    collection = HeadersCollection()
    for name, value in values.items():
        collection.add(name.replace("_", "-"), value)
    return collection


class SdkLoop:
    """An event loop in a daemon thread, where the SDK's coroutines run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True, name="mailtrace-graph")
        self.thread.start()

    def _serve(self) -> None:
        loop = self.loop
        try:
            loop.run_forever()
            # let closed connections finish closing, then end what is left
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0.01))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Start ``coroutine`` on the SDK's loop now; await the result on the caller's
        loop (cancellation crosses over too)."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await self.submit(coroutine)

    async def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 5)


@dataclass
class GraphClient:
    """The tier's Graph, as msgraph-sdk sees it; ``sdk`` is the GraphServiceClient."""

    target: GraphTarget
    sdk: GraphServiceClient
    http: httpx.AsyncClient
    token: SharedToken
    worker: SdkLoop = field(default_factory=SdkLoop)
    transport: httpx.AsyncBaseTransport | None = None  # the connection pool under ``http``
    #: Every exchange so far, in order (the benchmark and the tests read it).
    exchanges: list[Exchange] = field(default_factory=list)

    async def ask(self, call: str, request: Callable[[], Awaitable[T | None]],
                  deadline: float) -> tuple[T, Exchange]:
        """Make one SDK call within ``deadline`` (a ``time.monotonic()`` value)."""
        return await self.send(call, request, deadline)

    def send(self, call: str, request: Callable[[], Awaitable[T | None]],
             deadline: float) -> asyncio.Future[tuple[T, Exchange]]:
        """Like :meth:`ask`, but the call leaves now (before the caller next yields)."""
        exchange = Exchange(call)
        self.exchanges.append(exchange)
        return self.worker.submit(self._ask(exchange, request, deadline))

    async def _ask(self, exchange: Exchange, request: Callable[[], Awaitable[T | None]],
                   deadline: float) -> tuple[T, Exchange]:
        from kiota_abstractions.api_error import APIError

        call = exchange.call
        started = time.monotonic()
        try:
            while True:
                exchange.attempts += 1
                token = _CURRENT.set(exchange)
                try:
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                        value = await request()
                except APIError as exc:
                    wait = self._retry_wait(exc, exchange, deadline)
                    if wait is None:
                        raise _mapped(exc, exchange) from None
                    await asyncio.sleep(wait)
                    continue
                except GraphError:
                    raise
                except TimeoutError:
                    raise GraphUnavailable(f"no answer from Graph in time ({call})",
                                           exchange) from None
                except Exception as exc:
                    raise _unreadable(exc, exchange) from None
                finally:
                    _CURRENT.reset(token)
                if value is None:
                    raise GraphBadResponse(f"Graph gave an empty answer ({call})", exchange)
                return value, exchange
        finally:
            exchange.elapsed_ms = (time.monotonic() - started) * 1000

    @staticmethod
    def _retry_wait(exc: Any, exchange: Exchange, deadline: float) -> float | None:
        """How long to wait before trying again, or None to give up now."""
        if exc.response_status_code not in RETRYABLE:
            return None
        wait = retry_after(exc.response_headers)
        if wait is None or exchange.attempts >= 3:
            return None
        # Honour it only if the answer can still come before the deadline.
        return wait if time.monotonic() + wait + 0.2 < deadline else None

    async def aclose(self) -> None:
        try:
            await self.worker.run(self.http.aclose())
            if self.transport is not None:
                await self.worker.run(self.transport.aclose())
            await self.worker.run(self.token.close())
        finally:
            await self.worker.close()


def _mapped(exc: Any, exchange: Exchange) -> GraphError:
    status = exc.response_status_code
    error = getattr(exc, "error", None)  # ODataError.error: MainError
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(exc.message or "")
    text = f"{status} {code or ''}: {message}".replace(" :", ":").strip()
    if exchange.status is None:
        exchange.status = status
    if status in (401, 403):
        return GraphDenied(text, exchange, code)
    if status == 404:
        return GraphNotFound(text, exchange, code)
    if status in RETRYABLE:
        return GraphThrottled(text, exchange, retry_after(exc.response_headers))
    if error is None and exchange.excerpt is not None:
        return GraphBadResponse(f"{status}: an error body Graph clients cannot read", exchange)
    return GraphUnavailable(text, exchange)


def _unreadable(exc: Exception, exchange: Exchange) -> GraphError:
    import httpx

    if isinstance(exc, SignInExpired):  # no token without a person: say what to do
        return GraphUnavailable(str(exc), exchange)
    if isinstance(exc, UnicodeError):  # a header (the token) could not be encoded: its
        # message would quote part of it, so only its kind is kept
        return GraphUnavailable(f"the request could not be sent ({type(exc).__name__})",
                                exchange)
    if isinstance(exc, httpx.HTTPError) and exchange.status is None:
        return GraphUnavailable(f"cannot reach Graph: {type(exc).__name__}: {exc}", exchange)
    if exchange.excerpt is None and exchange.status is not None:
        exchange.excerpt = "(JSON that does not have the documented shape)"
    return GraphBadResponse(f"an answer the SDK cannot read: {type(exc).__name__}: {exc}",
                            exchange)


#: The SDK modules the probes use, imported together by :func:`load_sdk`.
SDK_MODULES = (
    "msgraph.graph_service_client",
    "msgraph.graph_request_adapter",
    "msgraph_core",
    "kiota_http.middleware.options",
    "kiota_authentication_azure.azure_identity_access_token_provider",
    "msgraph.generated.users.users_request_builder",
    "msgraph.generated.groups.groups_request_builder",
    "msgraph.generated.contacts.contacts_request_builder",
    "msgraph.generated.admin.service_announcement.issues.issues_request_builder",
    "msgraph.generated.admin.exchange.tracing.message_traces.message_traces_request_builder",
    "msgraph.generated.users.item.get_mail_tips.get_mail_tips_post_request_body",
)


_sdk_loaded = False


def sdk_loaded() -> bool:
    return _sdk_loaded


def load_sdk() -> None:
    """Import msgraph-sdk (slow: most of a second); call it in a thread, once before the
    first call, so the event loop is not held up by imports."""
    global _sdk_loaded
    import importlib

    for name in SDK_MODULES:
        importlib.import_module(name)
    from msgraph.generated.models.entity import Entity

    # Deserialising any entity first imports every entity model (~1300 modules): do it
    # here too, rather than inside the first answer.
    Entity().get_field_deserializers()
    _sdk_loaded = True


def connect(access: GraphAccess, environ: Mapping[str, str], tenant: str | None = None,
            *, timeout: float = 30.0, credential: TokenCredential | None = None) -> GraphClient:
    """Build the tier's client: the credential it declares (or ``credential``, built by the
    engine: a recorded sign-in), its cloud's scope, and an HTTP client whose retries are
    ours (raises :class:`GraphConfigError`)."""
    target = graph_target(access)
    token = SharedToken(credential or make_credential(access, target, environ, tenant))

    import httpx
    from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
    from kiota_authentication_azure.azure_identity_access_token_provider import (
        AzureIdentityAccessTokenProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory

    # The token goes only to the tier's own Graph host, whatever a nextLink says.
    provider = BaseBearerTokenAuthenticationProvider(AzureIdentityAccessTokenProvider(
        token, None, scopes=[target.scope], allowed_hosts=[target.host]))
    # Kept to close it ourselves: msgraph_core's AsyncGraphTransport, which wraps it, has
    # no aclose(), so closing the client alone would leave its connections open.
    transport = httpx.AsyncHTTPTransport(
        # plain http (the lab, on loopback) has no TLS to verify: skip building a context
        verify=not target.base_url.startswith("http://"),
        trust_env=not target.loopback)
    http = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        # The lab must never be reached through a proxy from the environment.
        trust_env=not target.loopback,
        event_hooks={"response": [_record]},
    )
    options: dict[str, Any] = {
        RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, should_retry=False)}
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    adapter = GraphRequestAdapter(provider, http)
    adapter.base_url = target.base_url
    return GraphClient(target, GraphServiceClient(request_adapter=adapter), http, token,
                       transport=transport)


__all__ = [
    "Exchange",
    "GraphBadResponse",
    "GraphClient",
    "GraphConfigError",
    "GraphDenied",
    "GraphError",
    "GraphNotFound",
    "GraphThrottled",
    "GraphUnavailable",
    "connect",
    "headers",
    "load_sdk",
    "retry_after",
    "sdk_loaded",
]
