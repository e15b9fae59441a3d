"""Microsoft Graph, read-only, through msgraph-sdk's request path: the only code that
talks to Graph.

One :class:`GraphClient` per tier per run, built by the engine from plain
:class:`~mailtrace.clients.msgraph.settings.GraphSettings`, shared by the tier's probes
and closed when the run ends. What the SDK is good at does the work: its request builders
make each request (URL templates, ``$filter``/``$select``/``$top``, the national cloud's
base URL), its ``GraphRequestAdapter`` sends it with the azure-identity token and maps an
error status to its ``ODataError``. The answer is taken as bytes (the adapter's primitive
``"bytes"`` response) and read by the small models of
:mod:`~mailtrace.clients.msgraph.models` — only the fields the probes use. The SDK's own
models are not used for answers: reading one entity with them imports the model graph
reachable from it, thousands of modules (msgraph-sdk-python issues #584 and #904).

Each call goes through :meth:`GraphClient.ask` (one object) or
:meth:`GraphClient.ask_all` (a collection, following ``@odata.nextLink`` while the
deadline allows), which record what was asked and answered (the evidence), bound the call
by the probe's deadline, honour ``Retry-After`` when the wait fits that deadline, and map
every failure once, here, to a small tree:

    GraphError
    ├── GraphDenied       401/403: a permission (or a prerequisite) is missing
    ├── GraphNotFound     404: the object does not exist (its meaning is the caller's)
    ├── GraphThrottled    429/503/504 whose Retry-After does not fit the deadline
    ├── GraphUnavailable  no connection, no answer in time, another error status
    └── GraphBadResponse  an answer that cannot be read (HTML, malformed JSON, another
                          shape, no body)

The SDK's own retry handler is switched off: it would sleep up to 180 s on a
Retry-After, past any deadline (reference §6, "Retry / throttling middleware").
msgraph is imported inside the functions (:func:`load_sdk`, in a thread, before the first
call): ``mailtrace --help`` and the commands that ask no tenant never load it.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from mailtrace.clients.msgraph.credentials import (
    GraphConfigError,
    GraphTarget,
    SharedToken,
    graph_target,
    make_credential,
)
from mailtrace.clients.msgraph.settings import GraphSettings
from mailtrace.clients.msgraph.signin import SignInExpired
from mailtrace.core.evidence import ApiCall

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials import TokenCredential
    from kiota_abstractions.headers_collection import HeadersCollection
    from kiota_abstractions.request_information import RequestInformation
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_service_client import GraphServiceClient
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")
#: What a probe asks: the request msgraph-sdk's builders make, e.g.
#: ``lambda sdk: sdk.domains.by_domain_id(d).to_get_request_information()``.
Request = Callable[["GraphServiceClient"], "RequestInformation"]

#: How much of an unreadable body is kept as evidence.
EXCERPT = 300
RETRYABLE = frozenset({429, 503, 504})
#: Pages of one collection read at most (message trace: 1,000 messages a page).
MAX_PAGES = 20


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
    pages: int = 0  # of a collection, when more than one was read
    note: str | None = None  # why a collection was not read to its end

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
        if self.pages > 1:
            details["pages"] = self.pages
        if self.note:
            details["incomplete"] = self.note
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
    if not exchange.url:  # a collection's first page says what was asked
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


class GraphClient:
    """The tier's Graph: msgraph-sdk's request builders (``sdk``) and request adapter,
    and the answers read as JSON into :mod:`~mailtrace.clients.msgraph.models`."""

    def __init__(self, target: GraphTarget, sdk: GraphServiceClient,
                 adapter: GraphRequestAdapter, http: httpx.AsyncClient, token: SharedToken,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.target = target
        self.sdk = sdk
        self.adapter = adapter
        self.http = http
        self.token = token
        self.transport = transport  # the connection pool under ``http``
        #: Every exchange so far, in order (the benchmark and the tests read it).
        self.exchanges: list[Exchange] = []

    async def ask(self, call: str, request: Request, model: type[M],
                  deadline: float) -> tuple[M, Exchange]:
        """One call within ``deadline`` (a ``time.monotonic()`` value): the request the
        builders make (``request(sdk)``), its answer read as ``model``."""
        exchange = Exchange(call)
        self.exchanges.append(exchange)
        started = time.monotonic()
        try:
            body = await self._send(exchange, lambda: request(self.sdk), deadline)
            return _read(model, body, exchange), exchange
        finally:
            exchange.elapsed_ms = (time.monotonic() - started) * 1000

    async def ask_all(self, call: str, request: Request, item: type[M], deadline: float,
                      *, max_pages: int = MAX_PAGES) -> tuple[Listing[M], Exchange]:
        """A collection, page after page through ``@odata.nextLink`` while the deadline
        allows (the next page is asked only if it can come back in time, judged by the
        last one); what was read is kept when a later page fails, marked incomplete."""
        from mailtrace.clients.msgraph.models import Page

        exchange = Exchange(call)
        self.exchanges.append(exchange)
        started = time.monotonic()
        items: list[M] = []
        pages = 0
        link: str | None = None
        try:
            while True:
                asked = time.monotonic()
                make = (lambda: request(self.sdk)) if link is None else _next_page(
                    request, self.sdk, link)
                try:
                    body = await self._send(exchange, make, deadline)
                    page = _read(Page[item], body, exchange)  # type: ignore[valid-type]
                except GraphError as exc:
                    if not pages:
                        raise
                    exchange.note = f"page {pages + 1} not read: {exc}"
                    break
                pages += 1
                items += page.value or ()
                link = page.next_link
                if not link:
                    break
                if not self._ours(link):
                    exchange.note = "next page refused: its link leaves the tier's Graph host"
                    break
                if pages >= max_pages or time.monotonic() + (time.monotonic() - asked) > deadline:
                    exchange.note = f"{pages} pages read: more than the deadline allows"
                    break
            exchange.pages = pages
            return Listing(tuple(items), pages, link is None), exchange
        finally:
            exchange.elapsed_ms = (time.monotonic() - started) * 1000

    def _ours(self, link: str) -> bool:
        """The token goes only to the tier's own Graph (the adapter also refuses it to any
        other host): a next page elsewhere is not asked."""
        parts = urlsplit(link)
        base = urlsplit(self.target.base_url)
        return (parts.scheme, (parts.hostname or "").lower(), parts.port) == (
            base.scheme, self.target.host, base.port)

    async def _send(self, exchange: Exchange, make: Callable[[], RequestInformation],
                    deadline: float) -> bytes:
        """Send one request through the adapter, retrying while a Retry-After fits the
        deadline; the answer's bytes, or a :class:`GraphError`."""
        from kiota_abstractions.api_error import APIError

        call = exchange.call
        while True:
            exchange.attempts += 1
            info = make()
            token = _CURRENT.set(exchange)
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                    body = await self.adapter.send_primitive_async(info, "bytes", _errors())
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
            if not body:  # 204, or a 200 with nothing in it
                raise GraphBadResponse(f"Graph gave an empty answer ({call})", exchange)
            assert isinstance(body, bytes)
            return body

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
            await self.http.aclose()
            if self.transport is not None:
                await self.transport.aclose()
        finally:
            await self.token.close()


@dataclass(frozen=True)
class Listing(Generic[M]):
    """The items of a collection, over ``pages`` pages; ``complete`` is False when Graph
    had more than was read (the deadline, the page cap, a failed page)."""

    items: tuple[M, ...]
    pages: int = 1
    complete: bool = True


def _next_page(request: Request, sdk: GraphServiceClient,
               link: str) -> Callable[[], RequestInformation]:
    """The request for the page at ``link``: the first one's headers, the link's URL
    (builders' ``with_url`` does the same)."""
    def make() -> RequestInformation:
        info = request(sdk)
        info.url = link
        return info
    return make


def _read(model: type[M], body: bytes, exchange: Exchange) -> M:
    """The answer as ``model``; JSON of another shape, or no JSON, is a bad response."""
    from pydantic import ValidationError

    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        if exchange.excerpt is None:
            exchange.excerpt = "(JSON that does not have the documented shape)"
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise GraphBadResponse(f"an answer that cannot be read ({exchange.call}): "
                               f"{where}: {first['msg']}", exchange) from None


_ERRORS: dict[str, Any] = {}


def _errors() -> dict[str, Any]:
    """Every error status is read as an OData error, as the SDK's builders map it."""
    if not _ERRORS:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        _ERRORS["XXX"] = ODataError
    return _ERRORS


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
    "msgraph.generated.users.item.get_mail_tips.get_mail_tips_request_builder",
    "msgraph.generated.users.item.mailbox_settings.mailbox_settings_request_builder",
    "msgraph.generated.users.item.mail_folders.item.message_rules.message_rules_request_builder",
    "msgraph.generated.domains.item.domain_item_request_builder",
    "msgraph.generated.domains.item.service_configuration_records."
    "service_configuration_records_request_builder",
    "msgraph.generated.admin.exchange.tracing.message_traces.item."
    "exchange_message_trace_item_request_builder",
    "msgraph.generated.models.o_data_errors.o_data_error",
    "mailtrace.clients.msgraph.models",
    "mailtrace.clients.msgraph.transport",
    # what httpx and httpcore import when the first client is made and the first request
    # sent: on the event loop, that would hold up the DNS probes' answers
    "httpcore",
    "certifi",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
)


_sdk_loaded = False


def sdk_loaded() -> bool:
    return _sdk_loaded


def load_sdk() -> None:
    """Import msgraph-sdk's request path (a few tenths of a second); call it in a
    thread, once before the first call, so the event loop is not held up by imports."""
    global _sdk_loaded
    import importlib

    for name in SDK_MODULES:
        importlib.import_module(name)
    from mailtrace.clients.msgraph.models import build

    build()  # the answers' validators too, rather than inside the first answer
    _sdk_loaded = True


def connect(settings: GraphSettings, environ: Mapping[str, str], *,
            credential: TokenCredential | None = None) -> GraphClient:
    """Build the tier's client: the credential it declares (or ``credential``, built by the
    engine: a recorded sign-in), its cloud's scope, and an HTTP client whose retries are
    ours, following ``--connect-to`` and trusting ``--ca-file`` (raises
    :class:`GraphConfigError`)."""
    target = graph_target(settings)
    token = SharedToken(credential or make_credential(settings, target, environ,
                                                      settings.tenant))

    import httpx
    from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
    from kiota_authentication_azure.azure_identity_access_token_provider import (
        AzureIdentityAccessTokenProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory

    from mailtrace.clients.msgraph.transport import GraphTransport, redirected, tls_context

    # The token goes only to the tier's own Graph host, whatever a nextLink says.
    provider = BaseBearerTokenAuthenticationProvider(AzureIdentityAccessTokenProvider(
        token, None, scopes=[target.scope], allowed_hosts=[target.host]))
    # plain http (a loopback stand-in) has no TLS to verify: skip building a context
    verify = tls_context(settings.ca_file) if target.base_url.startswith("https:") else False
    # Proxies from the environment serve an admin behind one; a loopback Graph, or one
    # that --connect-to sends to a given address, is reached directly.
    direct = target.loopback or redirected(settings.redirects, target.base_url)
    # Kept to close it ourselves: msgraph_core's AsyncGraphTransport, which wraps it, has
    # no aclose(), so closing the client alone would leave its connections open.
    transport = GraphTransport(settings.redirects, verify, trust_env=not direct)
    http = httpx.AsyncClient(
        transport=transport,
        verify=verify,  # also for a proxy the environment names
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
        trust_env=not direct,
        event_hooks={"response": [_record]},
    )
    options: dict[str, Any] = {
        RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, should_retry=False)}
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    adapter = GraphRequestAdapter(provider, http)
    adapter.base_url = target.base_url
    return GraphClient(target, GraphServiceClient(request_adapter=adapter), adapter, http,
                       token, transport=transport)


__all__ = [
    "Exchange",
    "GraphBadResponse",
    "GraphClient",
    "GraphConfigError",
    "GraphDenied",
    "GraphError",
    "GraphNotFound",
    "GraphSettings",
    "GraphThrottled",
    "GraphUnavailable",
    "Listing",
    "Request",
    "connect",
    "headers",
    "load_sdk",
    "retry_after",
    "sdk_loaded",
]
