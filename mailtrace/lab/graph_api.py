"""The lab's Microsoft Graph: the documented JSON shapes, on the lab HTTP server.

A stand-in for the Graph v1.0 calls the Exchange Online probes make (graph-exo reference
§1-§5): domains and their serviceConfigurationRecords (with the ``@odata.type``
discriminators msgraph-sdk needs to pick the record subclass), users, groups and org
contacts by address, mailboxSettings, inbox rules, getMailTips, service health issues,
message traces and their details by recipient. It answers only a request that carries
the lab's bearer token. A scenario changes the tenant with :class:`TenantFaults`:
a missing recipient, a disabled account, a rule, a full mailbox, an incident, a
quarantined message, 403s, 429s with Retry-After, raw bodies (HTML, malformed JSON), or
collections answered a few items a page, with ``@odata.nextLink`` (Graph's server-side
paging; the ``$skiptoken`` in the link is opaque to clients, here it is an offset).

The lab serves it over HTTPS with a certificate from its CA for the real Graph host, and
sends ``graph.microsoft.com:443`` to it with a ``--connect-to`` rule, so a triage of the
unchanged topology checks TLS as it would against Graph itself.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from mailtrace.lab import maillog
from mailtrace.lab.http_server import HttpServer, Request, Response

API = "/v1.0"
ENTERPRISE_PLAN = "efb87545-963c-4e0d-99df-69c6916d9eb0"  # EXCHANGE_S_ENTERPRISE
FOUNDATION_PLAN = "113feb6c-3fe4-4440-bddc-54d774bf0318"  # EXCHANGE_S_FOUNDATION
USER_ID = "5f0a8f3e-63b1-4b5e-9d0c-2a7c1e9b4d11"
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"


@dataclass(frozen=True)
class Throttle:
    """Answer 429 with this Retry-After, ``times`` times (None: always)."""

    retry_after: int
    times: int | None = 1


@dataclass(frozen=True)
class TenantFaults:
    """What a scenario changes in the lab tenant; the defaults are a healthy tenant.

    Endpoint names: domain, records, users, groups, contacts, mailboxSettings,
    messageRules, getMailTips, issues, messageTraces, traceDetails.
    """

    recipient_missing: bool = False
    mailbox_missing: bool = False  # mailboxSettings, rules and MailTips answer 404
    purpose: str = "user"  # mailboxSettings.userPurpose
    user: Mapping[str, Any] = field(default_factory=dict)  # merged into the recipient
    rules: tuple[Mapping[str, Any], ...] | None = None  # None: one harmless rule
    mailtips: Mapping[str, Any] = field(default_factory=dict)
    issues: tuple[Mapping[str, Any], ...] = ()  # unresolved Exchange Online issues
    traces: tuple[Mapping[str, Any], ...] | None = None  # None: two delivered messages
    deny: frozenset[str] = frozenset()  # endpoints answering 403; "*" for all
    throttle: Mapping[str, Throttle] = field(default_factory=dict)
    raw: Mapping[str, Response] = field(default_factory=dict)  # endpoint -> answer as is
    page_size: int | None = None  # collections answered this many items a page


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": "2026-11-29T00:00:00", "request-id": "lab-request",
        "client-request-id": "lab-client-request"}}}
    return Response.json(body, status, headers=headers)


def _collection(context: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@odata.context": f"{CONTEXT}#{context}", "value": items}


def _time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LabTenant:
    """The tenant's data, built from a topology's Exchange Online tier."""

    domains: list[str]
    inbound_host: str
    recipient: str
    tenant: str
    faults: TenantFaults = field(default_factory=TenantFaults)
    #: The scenario's mail log: the messages that reached the tenant, as message trace
    #: shows them (None: the traces of ``faults``).
    messages: tuple[maillog.LabMessage, ...] | None = None

    def domain(self, name: str) -> dict[str, Any] | None:
        if name.lower() not in self.domains:
            return None
        return {"@odata.context": f"{CONTEXT}#domains/$entity", "authenticationType": "Managed",
                "availabilityStatus": None, "id": name.lower(), "isAdminManaged": True,
                "isDefault": name.lower() == self.domains[0], "isInitial": False,
                "isRoot": True, "isVerified": True,
                "supportedServices": ["Email", "OfficeCommunicationsOnline"],
                "passwordValidityPeriodInDays": None, "passwordNotificationWindowInDays": None,
                "state": None}

    def records(self, name: str) -> list[dict[str, Any]]:
        label = name.lower()
        base = {"isOptional": False, "label": label, "supportedService": "Email", "ttl": 3600}
        return [
            {"@odata.type": "#microsoft.graph.domainDnsMxRecord", "id": "mx", **base,
             "recordType": "Mx", "mailExchange": self.inbound_host, "preference": 0},
            {"@odata.type": "#microsoft.graph.domainDnsTxtRecord", "id": "spf", **base,
             "recordType": "Txt", "text": "v=spf1 include:spf.protection.outlook.com -all"},
            {"@odata.type": "#microsoft.graph.domainDnsCnameRecord", "id": "autodiscover",
             **base, "label": f"autodiscover.{label}", "recordType": "CName",
             "canonicalName": "autodiscover.outlook.com"},
        ]

    def user(self) -> dict[str, Any]:
        local = self.recipient.partition("@")[0]
        user: dict[str, Any] = {
            "id": USER_ID, "displayName": local.title(), "userPrincipalName": self.recipient,
            "mail": self.recipient, "accountEnabled": True, "userType": "Member",
            "proxyAddresses": [f"SMTP:{self.recipient}", f"smtp:{local}@{self.tenant}"],
            "assignedPlans": [
                {"assignedDateTime": "2024-01-15T00:00:00Z", "capabilityStatus": "Enabled",
                 "service": "exchange", "servicePlanId": ENTERPRISE_PLAN},
                {"assignedDateTime": "2024-01-15T00:00:00Z", "capabilityStatus": "Enabled",
                 "service": "exchange", "servicePlanId": FOUNDATION_PLAN}],
            "provisionedPlans": [{"capabilityStatus": "Enabled", "provisioningStatus": "Success",
                                  "service": "exchange"}],
            "onPremisesSyncEnabled": None,  # a cloud-only user (hybrid: True)
        }
        user.update(self.faults.user)
        return user

    def rules(self) -> list[dict[str, Any]]:
        if self.faults.rules is not None:
            return [{"id": f"rule{i}", "sequence": i + 1, "isEnabled": True, "hasError": False,
                     "isReadOnly": False, **r} for i, r in enumerate(self.faults.rules)]
        return [{"id": "AQAAAJ5dZp8=", "displayName": "Newsletters read", "sequence": 1,
                 "isEnabled": True, "hasError": False, "isReadOnly": False,
                 "conditions": {"senderContains": ["newsletter"]},
                 "actions": {"markAsRead": True, "stopProcessingRules": False}}]

    def mailtips(self, address: str) -> dict[str, Any]:
        tips = {"emailAddress": {"name": "", "address": address}, "mailboxFull": False,
                "deliveryRestricted": False, "isModerated": False, "maxMessageSize": 37748736}
        tips.update(self.faults.mailtips)
        return tips

    def issues(self) -> list[dict[str, Any]]:
        resolved = {"id": "EX226792", "title": "Limited number of users unable to send or "
                    "receive email through the Exchange Online service",
                    "classification": "Incident", "status": "ServiceRestored",
                    "service": "Exchange Online", "feature": "Mailflow - delayed delivery "
                    "from Internet", "featureGroup": "E-Mail timely delivery",
                    "isResolved": True, "origin": "Microsoft",
                    "startDateTime": "2026-11-01T08:00:00Z", "impactDescription": "...",
                    "details": [], "posts": []}
        issues = [{**resolved, "isResolved": False, "status": "ServiceDegradation",
                   "endDateTime": None, **i} for i in self.faults.issues]
        return [resolved, *issues]

    def trace_events(self, trace_id: str) -> list[tuple[str, str]]:
        """The (event, description) pairs a scenario gives a traced message, after its
        Receive event: ``{"status": ..., "events": [("Send external", "...")]}``."""
        wanted = self.faults.traces or ()
        for i, t in enumerate(wanted):
            if trace_id.endswith(f"{i:04d}") and t.get("events"):
                return [(str(e), str(d)) for e, d in t["events"]]
        return []

    def traces(self, now: dt.datetime) -> list[dict[str, Any]]:
        if self.messages is not None or self.faults.traces is None:
            messages = maillog.DEFAULT_MESSAGES if self.messages is None else self.messages
            return [maillog.trace(m, self.recipient, now) for m in messages
                    if m.reaches_tenant]
        wanted = self.faults.traces
        out = []
        for i, t in enumerate(wanted):
            out.append({"id": f"4451a062-48cb-e80d-e8c0-19633043{i:04d}",
                        "senderAddress": t.get("sender", f"sender{i}@fabrikam.example"),
                        "recipientAddress": self.recipient,
                        "messageId": f"<lab-{i}@fabrikam.example>",
                        "receivedDateTime": _time(now - dt.timedelta(hours=2 + i)),
                        "subject": t.get("subject", "Hello"), "size": 45678,
                        "fromIP": "192.0.2.10", "toIP": "", "status": t["status"]})
        return out


def _address_in(filter_text: str) -> str | None:
    match = re.search(r"smtp:((?:[^']|'')+)'", filter_text, re.I) or \
        re.search(r"mail eq '((?:[^']|'')+)'", filter_text)
    return match.group(1).replace("''", "'").lower() if match else None


_ROUTES = [
    ("records", re.compile(r"^/domains/([^/]+)/serviceConfigurationRecords$")),
    ("domain", re.compile(r"^/domains/([^/]+)$")),
    ("users", re.compile(r"^/users$")),
    ("groups", re.compile(r"^/groups$")),
    ("contacts", re.compile(r"^/contacts$")),
    ("mailboxSettings", re.compile(r"^/users/([^/]+)/mailboxSettings$")),
    ("messageRules", re.compile(r"^/users/([^/]+)/mailFolders/inbox/messageRules$")),
    ("getMailTips", re.compile(r"^/users/([^/]+)/getMailTips$")),
    ("issues", re.compile(r"^/admin/serviceAnnouncement/issues$")),
    ("messageTraces", re.compile(r"^/admin/exchange/tracing/messageTraces$")),
    ("traceDetails", re.compile(r"^/admin/exchange/tracing/messageTraces/([^/]+)/"
                                r"getDetailsByRecipient\(recipientAddress='(.+)'\)$")),
]


class GraphStandIn:
    """``await GraphStandIn(tenant, token).start()``; ``url`` is the v1.0 base URL on
    loopback (over HTTPS when given a TLS context)."""

    def __init__(self, tenant: LabTenant, token: str, *, delay: float = 0.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.tenant = tenant
        self.token = token
        self.delay = delay
        self.server = HttpServer(self.handle, tls=tls)
        self.seen: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return self.server.url + API

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def requests(self) -> list[Request]:
        return self.server.requests

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    def handle(self, request: Request) -> Response:
        response = self._answer(request)
        if self.delay:
            return Response(response.status, response.body, response.headers, self.delay)
        return response

    def _answer(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "InvalidAuthenticationToken", "Access token is empty.")
        path = unquote(request.path)
        if not path.startswith(API):
            return _error(404, "BadRequest", "Invalid version.")
        path = path[len(API):]
        for name, pattern in _ROUTES:
            match = pattern.match(path)
            if match:
                return self._route(name, match.groups(), request)
        return _error(400, "BadRequest", f"Resource not found for the segment '{path}'.")

    def _route(self, name: str, params: tuple[str, ...], request: Request) -> Response:
        faults = self.tenant.faults
        self.seen[name] += 1
        throttle = faults.throttle.get(name) or faults.throttle.get("*")
        if throttle is not None and (throttle.times is None or self.seen[name] <= throttle.times):
            return _error(429, "TooManyRequests", "Too many requests.",
                          **{"Retry-After": str(throttle.retry_after)})
        if name in faults.deny or "*" in faults.deny:
            if name in ("messageTraces", "traceDetails"):
                return _error(401, "Unauthorized",
                              "Service principal-less Authentication failed: the service "
                              "principal for App ID 8bd644d1-64a1-4d4b-ae52-2e0cbf64e373 "
                              "was not found in the tenant.")
            return _error(403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")
        if name in faults.raw:
            return faults.raw[name]
        return getattr(self, f"_{name}")(params, request)  # type: ignore[no-any-return]

    def _collection(self, request: Request, context: str, items: list[dict[str, Any]],
                    **extra: Any) -> Response:
        """A collection answer: all of it, or one page and the link to the next."""
        doc = {**_collection(context, items), **extra}
        size = self.tenant.faults.page_size
        if size:
            skip = int(request.arg("$skiptoken") or 0)
            doc["value"] = items[skip:skip + size]
            if skip + size < len(items):
                doc["@odata.nextLink"] = self._link(request, skip + size)
        return Response.json(doc)

    def _link(self, request: Request, skip: int) -> str:
        """The next page's absolute URL, on the host the client asked for."""
        scheme = "https" if self.server.tls else "http"
        host = request.headers.get("host") or f"{self.server.host}:{self.server.port}"
        query = [(k, v) for k, values in request.query.items() for v in values
                 if k != "$skiptoken"] + [("$skiptoken", str(skip))]
        return f"{scheme}://{host}{request.path}?{urlencode(query, safe='$')}"

    # -- the endpoints ------------------------------------------------------------------

    def _domain(self, params: tuple[str, ...], request: Request) -> Response:
        domain = self.tenant.domain(params[0])
        if domain is None:
            return _error(404, "Request_ResourceNotFound",
                          f"Resource '{params[0]}' does not exist or one of its queried "
                          "reference-property objects are not present.")
        return Response.json(domain)

    def _records(self, params: tuple[str, ...], request: Request) -> Response:
        if self.tenant.domain(params[0]) is None:
            return _error(404, "Request_ResourceNotFound", f"Resource '{params[0]}' not found.")
        return self._collection(request, f"domains('{params[0]}')/serviceConfigurationRecords",
                                self.tenant.records(params[0]))

    def _matching(self, request: Request) -> bool:
        wanted = _address_in(request.arg("$filter") or "")
        return (wanted == self.tenant.recipient.lower()
                and not self.tenant.faults.recipient_missing)

    def _users(self, params: tuple[str, ...], request: Request) -> Response:
        users = [self.tenant.user()] if self._matching(request) else []
        count = {"@odata.count": len(users)} if request.arg("$count") == "true" else {}
        return self._collection(request, "users", users, **count)

    def _groups(self, params: tuple[str, ...], request: Request) -> Response:
        return Response.json({**_collection("groups", []), "@odata.count": 0})

    def _contacts(self, params: tuple[str, ...], request: Request) -> Response:
        return Response.json({**_collection("contacts", []), "@odata.count": 0})

    def _mailbox(self, user_id: str) -> Response | None:
        if user_id != USER_ID:
            return _error(404, "Request_ResourceNotFound", f"User '{user_id}' not found.")
        if self.tenant.faults.mailbox_missing:
            return _error(404, "MailboxNotEnabledForRESTAPI",
                          "The mailbox is either inactive, soft-deleted, or is hosted "
                          "on-premise.")
        return None

    def _mailboxSettings(self, params: tuple[str, ...], request: Request) -> Response:
        missing = self._mailbox(params[0])
        if missing is not None:
            return missing
        return Response.json({"@odata.context": f"{CONTEXT}#users('{USER_ID}')/mailboxSettings",
                              "archiveFolder": "AQMkAGI2TGuLAAA=", "timeZone": "UTC",
                              "language": {"locale": "en-US", "displayName": "English"},
                              "userPurpose": self.tenant.faults.purpose})

    def _messageRules(self, params: tuple[str, ...], request: Request) -> Response:
        missing = self._mailbox(params[0])
        if missing is not None:
            return missing
        return self._collection(request, "users/messageRules", self.tenant.rules())

    def _getMailTips(self, params: tuple[str, ...], request: Request) -> Response:
        missing = self._mailbox(params[0])
        if missing is not None:
            return missing
        import json

        try:
            body = json.loads(request.body)
            addresses = [str(a) for a in body["EmailAddresses"]]
        except (ValueError, KeyError, TypeError):
            return _error(400, "ErrorInvalidRequest", "EmailAddresses is required.")
        return Response.json(_collection("Collection(microsoft.graph.mailTips)",
                                         [self.tenant.mailtips(a) for a in addresses]))

    def _issues(self, params: tuple[str, ...], request: Request) -> Response:
        issues = self.tenant.issues()
        if "isResolved eq false" in (request.arg("$filter") or ""):
            issues = [i for i in issues if not i["isResolved"]]
        return self._collection(request, "admin/serviceAnnouncement/issues", issues)

    def _messageTraces(self, params: tuple[str, ...], request: Request) -> Response:
        text = request.arg("$filter") or ""
        match = re.search(r"recipientAddress eq '((?:[^']|'')+)'", text)
        bounds = re.findall(r"receivedDateTime (ge|le) (\S+)", text)
        if not match or len(bounds) != 2:
            return _error(400, "BadRequest", "receivedDateTime ge and le are required.")
        start, end = (dt.datetime.fromisoformat(v.replace("Z", "+00:00")) for _, v in bounds)
        if end - start > dt.timedelta(days=10):
            return _error(400, "BadRequest", "The time range cannot exceed 10 days.")
        now = dt.datetime.now(dt.UTC)
        keys = maillog.trace_filter(text)
        traces = [t for t in self.tenant.traces(now)
                  if t["recipientAddress"].lower() == match.group(1).lower()
                  and start <= dt.datetime.fromisoformat(
                      t["receivedDateTime"].replace("Z", "+00:00")) <= end
                  and (not keys["sender"] or t["senderAddress"].lower() == keys["sender"].lower())
                  and (not keys["message_id"] or t["messageId"] == keys["message_id"])
                  and (not keys["subject"]
                       or keys["subject"].lower() in t["subject"].lower())]
        return self._collection(request, "admin/exchange/tracing/messageTraces", traces)

    def _traceDetails(self, params: tuple[str, ...], request: Request) -> Response:
        trace_id, _address = params
        now = dt.datetime.now(dt.UTC)
        trace = next((t for t in self.tenant.traces(now) if t["id"] == trace_id), None)
        if trace is None:
            return _error(404, "NotFound", f"Message trace '{trace_id}' not found.")
        logged = next((m for m in self.tenant.messages or () if maillog.trace_id(m) == trace_id),
                      None)
        if logged is not None:
            return Response.json(_collection(
                "Collection(microsoft.graph.exchangeMessageTraceDetail)",
                maillog.details(logged, now)))
        events = [{"id": f"{trace_id}-1", "messageId": trace["messageId"],
                   "dateTime": trace["receivedDateTime"], "event": "Receive", "action": "",
                   "description": "Message received by: MN2PR00MB0670.namprd00.prod.outlook.com",
                   "data": "<root></root>"}]
        last = {"quarantined": ("Quarantine", "The message was quarantined: High "
                                "confidence phish."),
                "failed": ("Fail", "Reason: [{LED=550 5.2.2 mailbox full}]"),
                "delivered": ("Deliver", "The message was successfully delivered.")}
        scripted = self.tenant.trace_events(trace_id)
        if scripted:  # the scenario's own events after Receive (a hybrid hand-off, say)
            events += [{**events[0], "id": f"{trace_id}-{n + 2}", "event": event,
                        "description": text} for n, (event, text) in enumerate(scripted)]
        else:
            event, text = last.get(trace["status"].lower(),
                                   ("Defer", "Delivery was deferred."))
            events.append({**events[0], "id": f"{trace_id}-2", "event": event,
                           "description": text})
        return self._collection(request,
                                "Collection(microsoft.graph.exchangeMessageTraceDetail)", events)


def lab_tenant(topology: Mapping[str, Any], tier: str, recipient: str,
               faults: TenantFaults,
               messages: tuple[maillog.LabMessage, ...] | None = None) -> LabTenant:
    """The lab tenant of an Exchange Online tier of a topology file (as loaded YAML)."""
    data = topology["tiers"][tier]
    domains = [str(d).lower() for d in topology["domains"]]
    tenant = str(data.get("tenant") or f"{domains[0].split('.')[0]}.onmicrosoft.com")
    return LabTenant(domains, str(data["inbound_host"]), recipient, tenant, faults, messages)


# --- the sign-in authority: the Microsoft identity platform's device code flow -------------

#: How long the lab's access tokens live (seconds): a test shortens it to force a refresh.
TOKEN_LIFETIME = 3600
LAB_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
LAB_USER_ID = "00000000-0000-0000-66f3-3332eca7ea81"


def _b64(data: dict[str, Any]) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _oauth_error(error: str, code: int, description: str) -> Response:
    """An error of the v2.0 token endpoint (RFC 6749 §5.2, with Entra's AADSTS codes)."""
    return Response.json({"error": error, "error_description": f"AADSTS{code}: {description}",
                          "error_codes": [code], "timestamp": "2026-11-29 00:00:00Z",
                          "trace_id": "lab-trace", "correlation_id": "lab-correlation"}, 400)


@dataclass
class _DeviceCode:
    user_code: str
    client_id: str
    scope: str
    expires: float
    approved: bool = False
    declined: bool = False
    redeemed: bool = False


class SignInStandIn:
    """The lab's Microsoft identity platform (login.microsoftonline.com): the v2.0 endpoints
    a device code sign-in uses, in their documented shapes — OpenID discovery
    (``/{tenant}/v2.0/.well-known/openid-configuration``), the device authorization request
    (``/{tenant}/oauth2/v2.0/devicecode``), the token endpoint
    (``/{tenant}/oauth2/v2.0/token``: the device code grant, answering
    ``authorization_pending`` until the code is entered, and the refresh token grant) —
    and the page where a person enters the code (``/devicelogin``).

    The access token it issues is the one the lab's Graph accepts; the ID token names the
    lab user. Over HTTPS only (``tls``), as MSAL requires of an authority.
    """

    def __init__(self, access_token: str, user: str, tenant: str, tls: Any, *,
                 token_lifetime: int = TOKEN_LIFETIME) -> None:
        self.access_token = access_token
        self.user = user
        self.tenant = tenant  # the tenant's initial domain, as a sign-in names it
        self.token_lifetime = token_lifetime
        self.server = HttpServer(self.handle, tls=tls)
        self.codes: dict[str, _DeviceCode] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> client id
        self.grants: Counter[str] = Counter()  # grant type -> tokens issued

    @property
    def authority(self) -> str:
        """``host:port``, as azure-identity's ``authority`` and AZURE_AUTHORITY_HOST take it."""
        return f"{self.server.host}:{self.server.port}"

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    # -- what a person does in the browser ---------------------------------------------------

    def enter_code(self, user_code: str, *, decline: bool = False) -> bool:
        """The user enters the code and signs in (or declines); False for an unknown code."""
        for pending in self.codes.values():
            if pending.user_code == user_code.strip().upper():
                pending.approved, pending.declined = not decline, decline
                return True
        return False

    def revoke(self) -> None:
        """An admin revokes the user's sessions: every refresh token stops working."""
        self.refresh_tokens.clear()

    # -- the endpoints -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["devicelogin"]:
            return self._device_login(request)
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return Response.json(self._configuration(parts[0]))
        if len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"] and request.method == "POST":
            form = {k: v[0] for k, v in _form(request.body).items()}
            if parts[3] == "devicecode":
                return self._devicecode(parts[0], form)
            if parts[3] == "token":
                return self._token(parts[0], form)
        return _error(404, "NotFound", f"no such endpoint {request.path}")

    def _configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.server.url}/{tenant}"
        return {"token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{self.server.url}/{LAB_TENANT_ID}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "tenant_region_scope": "EU", "cloud_instance_name": "lab"}

    def _devicecode(self, tenant: str, form: dict[str, str]) -> Response:
        import secrets
        import time

        if not form.get("client_id"):
            return _oauth_error("invalid_request", 900144, "The request body must contain "
                                "the following parameter: 'client_id'.")
        device_code = secrets.token_urlsafe(48)
        user_code = secrets.token_hex(5).upper()[:9]
        self.codes[device_code] = _DeviceCode(user_code, form["client_id"],
                                              form.get("scope", ""), time.time() + 900)
        uri = f"{self.server.url}/devicelogin"
        return Response.json({
            "user_code": user_code, "device_code": device_code, "verification_uri": uri,
            "expires_in": 900, "interval": 1,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the "
                       f"code {user_code} to authenticate."})

    def _token(self, tenant: str, form: dict[str, str]) -> Response:
        import time

        grant = form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            pending = self.codes.get(form.get("device_code", ""))
            if pending is None or pending.redeemed:
                return _oauth_error("bad_verification_code", 70019, "Verification code "
                                    "expired or was already used.")
            if pending.expires < time.time():
                return _oauth_error("expired_token", 70020, "The provided request was not "
                                    "authorized in time.")
            if pending.declined:
                return _oauth_error("authorization_declined", 70016, "The user declined.")
            if not pending.approved:
                return _oauth_error("authorization_pending", 70016, "The provided request "
                                    "has not yet been authorized by the user. The user must "
                                    "input their code.")
            pending.redeemed = True
            return self._tokens(grant, pending.client_id, pending.scope)
        if grant == "refresh_token":
            client_id = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if client_id is None:
                return _oauth_error("invalid_grant", 700082, "The refresh token has expired "
                                    "due to inactivity or was revoked.")
            return self._tokens(grant, client_id, form.get("scope", ""))
        return _oauth_error("unsupported_grant_type", 70003, f"The app requested an "
                            f"unsupported grant type '{grant}'.")

    def _tokens(self, grant: str, client_id: str, scope: str) -> Response:
        import secrets
        import time

        now = int(time.time())
        refresh = secrets.token_urlsafe(48)
        self.refresh_tokens[refresh] = client_id
        self.grants[grant] += 1
        id_claims = {"aud": client_id, "iss": f"{self.server.url}/{LAB_TENANT_ID}/v2.0",
                     "iat": now, "nbf": now, "exp": now + 3600, "name": self.user,
                     "oid": LAB_USER_ID, "preferred_username": self.user,
                     "sub": "lab-subject", "tid": LAB_TENANT_ID, "ver": "2.0"}
        id_token = ".".join([_b64({"typ": "JWT", "alg": "RS256", "kid": "lab"}),
                             _b64(id_claims), "bGFi"])
        return Response.json({
            # The scopes granted: those asked for, without OpenID Connect's reserved ones.
            "token_type": "Bearer", "scope": " ".join(
                s for s in scope.split() if s not in ("openid", "profile", "offline_access"))
            or "https://graph.microsoft.com/.default",
            "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime,
            "access_token": self.access_token, "refresh_token": refresh, "id_token": id_token,
            "client_info": _b64({"uid": LAB_USER_ID, "utid": LAB_TENANT_ID})})

    def _device_login(self, request: Request) -> Response:
        if request.method == "POST":
            code = _form(request.body).get("otc", [""])[0]
            if self.enter_code(code):
                return Response(200, b"<!doctype html><p>You have signed in to mailtrace "
                                b"(lab). You can close this window.</p>",
                                {"Content-Type": "text/html; charset=utf-8"})
            return Response(400, b"<!doctype html><p>That code is not valid.</p>",
                            {"Content-Type": "text/html; charset=utf-8"})
        return Response(200, b"<!doctype html><form method='post'><label>Enter code "
                        b"<input name='otc'></label><button>Next</button></form>",
                        {"Content-Type": "text/html; charset=utf-8"})


def _form(body: bytes) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
