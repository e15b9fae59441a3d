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

    def traces(self, now: dt.datetime) -> list[dict[str, Any]]:
        wanted = self.faults.traces
        if wanted is None:
            wanted = ({"status": "delivered", "subject": "Quarterly report"},
                      {"status": "delivered", "subject": "Lunch?"})
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
        traces = [t for t in self.tenant.traces(now)
                  if t["recipientAddress"].lower() == match.group(1).lower()
                  and start <= dt.datetime.fromisoformat(
                      t["receivedDateTime"].replace("Z", "+00:00")) <= end]
        return self._collection(request, "admin/exchange/tracing/messageTraces", traces)

    def _traceDetails(self, params: tuple[str, ...], request: Request) -> Response:
        trace_id, _address = params
        now = dt.datetime.now(dt.UTC)
        trace = next((t for t in self.tenant.traces(now) if t["id"] == trace_id), None)
        if trace is None:
            return _error(404, "NotFound", f"Message trace '{trace_id}' not found.")
        events = [{"id": f"{trace_id}-1", "messageId": trace["messageId"],
                   "dateTime": trace["receivedDateTime"], "event": "Receive", "action": "",
                   "description": "Message received by: MN2PR00MB0670.namprd00.prod.outlook.com",
                   "data": "<root></root>"}]
        last = {"quarantined": ("Quarantine", "The message was quarantined: High "
                                "confidence phish."),
                "failed": ("Fail", "Reason: [{LED=550 5.2.2 mailbox full}]"),
                "delivered": ("Deliver", "The message was successfully delivered.")}
        event, text = last.get(trace["status"].lower(), ("Defer", "Delivery was deferred."))
        events.append({**events[0], "id": f"{trace_id}-2", "event": event,
                       "description": text})
        return self._collection(request,
                                "Collection(microsoft.graph.exchangeMessageTraceDetail)", events)


def lab_tenant(topology: Mapping[str, Any], tier: str, recipient: str,
               faults: TenantFaults) -> LabTenant:
    """The lab tenant of an Exchange Online tier of a topology file (as loaded YAML)."""
    data = topology["tiers"][tier]
    domains = [str(d).lower() for d in topology["domains"]]
    tenant = str(data.get("tenant") or f"{domains[0].split('.')[0]}.onmicrosoft.com")
    return LabTenant(domains, str(data["inbound_host"]), recipient, tenant, faults)
