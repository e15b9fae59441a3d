"""Stand-ins for the Proofpoint APIs, on the lab's HTTP server: PoD/PPS admin REST (Smart
Search, quarantine), Essentials v1 (endpoints, domains, users) and TAP SIEM v2.

They answer with the documented shapes (reference/proofpoint.md §1, §3, §5) and, where
real records and the documentation disagree, with both spellings on purpose: Smart Search
records alternate ``GUID``/``guid``, TAP events ``cluster``/``clusterId``,
``threatID``/``threatId`` and ``fromAddress`` as a list or a string. They check the
credentials the way the real APIs take them (HTTP Basic, or X-User/X-Password), enforce
TAP's one-hour interval and twelve-hour look-back, answer 204 for an empty TAP window,
refuse anything but GET (405), and can be told to refuse everything (401) or throttle
(429 without Retry-After, as TAP does). The lab's HttpServer records every request.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import ssl
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from mailtrace.clients.proofpoint.records import parse_time
from mailtrace.lab import maillog
from mailtrace.lab.http_server import HttpServer, Request, Response
from mailtrace.lab.scenarios import GatewayApi, MessageFate, Scenario
from mailtrace.topology.flow import FlowGraph
from mailtrace.topology.model import ProofpointTier, Topology


@dataclass(frozen=True)
class World:
    """The facts the stand-ins serve, taken from the scenario and its topology."""

    recipient: str
    domain: str
    org: str
    next_host: str
    settings: GatewayApi
    now: dt.datetime
    #: The scenario's mail log (None: the latest-message fate of ``settings``).
    messages: tuple[maillog.LabMessage, ...] | None = None


def _ago(world: World, **delta: float) -> dt.datetime:
    return world.now - dt.timedelta(**delta)


def _pps_date(when: dt.datetime) -> str:
    """Smart Search's date form, in a UTC-06:00 zone as the documentation's sample."""
    local = when.astimezone(dt.timezone(dt.timedelta(hours=-6)))
    return local.strftime("%Y-%m-%d %H:%M:%S [UTC-0600]")


def _search_record(world: World, when: dt.datetime, fate: MessageFate, n: int) -> dict[str, Any]:
    message = maillog.DEFAULT_MESSAGES[min(n, 1)]
    sender = message.sender
    relay = f"relay={world.next_host}. [192.0.2.25]"
    record: dict[str, Any] = {
        "GUID" if n % 2 else "guid": f"lab{n}-{secrets.token_hex(8)}",
        "QID": f"5AB{n}CD{when.strftime('%H%M%S')}", "SID": "2y1lab0001",
        "Date": _pps_date(when), "Duration": "0.21",
        "Sender": sender, "Recipients": world.recipient,
        "Sender_Host": "mail.fabrikam-supplier.example", "Sender_IP_Address": "192.0.2.10",
        "country": "**", "TLS": "TLSv1.3", "Message_ID": message.message_id(),
        "Subject": message.subject, "Message_Size": "18230",
        "Final_Action": "accept", "Final_Rule": "system", "Module_ID": "access",
        "Rule_ID": "system", "module_rules": ["access.system"],
        "Policy_Routes": "default_inbound", "Quarantine_Folder": "", "Quarantine_Rule": "",
        "current_folder": "", "Spam_Score": "0", "Virus_Names": "", "Attachment_Names": "",
        "Sendmail_Action": "", "Sendmail_To": world.recipient,
        "Sendmail_Stat": "Sent (Ok: queued as 4ZlabQ2x1z)", "Sendmail_To_Stat": "",
        "Sendmail_Errorcode": "",
        "SendmailRaw_Log": f"to=<{world.recipient}>, delay=00:00:01, mailer=esmtp, "
                           f"{relay}, dsn=2.0.0, stat=Sent (Ok: queued as 4ZlabQ2x1z)",
        "Raw_Log": "", "FQIN": "lab.pphosted.com-10000_instance1", "Agent": "m0000001.ppops.net",
    }
    if fate == "rejected":
        record.update({"Final_Action": "reject", "Final_Rule": "firewall.block_finance_inbound",
                       "Module_ID": "firewall", "Rule_ID": "block_finance_inbound",
                       "module_rules": ["firewall.block_finance_inbound"], "Sendmail_To": "",
                       "Sendmail_Stat": "", "SendmailRaw_Log": ""})
    elif fate == "quarantined":
        record.update({"Final_Action": "discard", "Final_Rule": "impostor.policy_impostor",
                       "Module_ID": "impostor", "Rule_ID": "policy_impostor",
                       "Quarantine_Folder": "Quarantine",
                       "Quarantine_Rule": "impostor.policy_impostor", "Spam_Score": "",
                       "Sendmail_To": "", "Sendmail_Stat": "", "SendmailRaw_Log": ""})
    elif fate == "onward-failed":
        reply = (f"550 5.4.1 [{world.recipient}]: Recipient address rejected: Access denied "
                 f"[{world.next_host}]")
        record.update({"Sendmail_Stat": "Service unavailable", "Sendmail_Errorcode": "550 5.4.1",
                       "SendmailRaw_Log": f"to=<{world.recipient}>, delay=00:00:01, "
                       f"mailer=esmtp, {relay}, dsn=5.4.1, stat=Service unavailable; {reply}"})
    return record


def _quarantine_record(world: World, when: dt.datetime) -> dict[str, Any]:
    return {"guid": f"labq-{secrets.token_hex(8)}", "localguid": "6:6:239",
            "folder": "Quarantine", "rule": "impostor.policy_impostor",
            "date": when.strftime("%Y-%m-%d %H:%M:%S"),
            "from": "orders@fabrikam-supplier.example", "rcpts": [world.recipient],
            "subject": "Purchase order",
            "messageid": maillog.DEFAULT_MESSAGES[1].message_id(),
            "size": "18230", "spamscore": "12", "host_ip": "[192.0.2.10] [192.0.2.10]"}


def _threat(world: World, when: dt.datetime, disposition: str, spelling: int) -> dict[str, Any]:
    """A TAP message event; ``spelling`` 0 = real records' keys, 1 = the doc sample's."""
    sender = "e99d7ed5580193f36a51f597bc2c0210@evil.example"
    event: dict[str, Any] = {
        "id": f"{secrets.token_hex(4)}-lab", "QID": "3XlabX-1",
        "messageID": "<lab-threat@evil.example>",
        "messageTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "sender": sender, "senderIP": "192.0.2.66",
        "recipient": [world.recipient], "toAddresses": [world.recipient],
        "ccAddresses": [], "replyToAddress": [], "headerFrom": "<billing@evil.example>",
        "subject": "Invoice overdue", "policyRoutes": ["default_inbound"],
        "quarantineFolder": "Malware" if disposition == "blocked" else None,
        "quarantineRule": "module.sandbox.threat" if disposition == "blocked" else None,
        "spamScore": 0, "phishScore": 0, "malwareScore": 100, "impostorScore": 0.0,
    }
    if spelling == 0:
        event.update({"GUID": f"labt-{secrets.token_hex(6)}", "cluster": "lab_hosted",
                      "fromAddress": ["billing@evil.example"],
                      "threatsInfoMap": [{"threatID": secrets.token_hex(8),
                                          "threatStatus": "active",
                                          "classification": "malware", "threatType": "url",
                                          "threat": "evil.example/x", "campaignID": None}]})
    else:
        event.update({"guid": f"labt-{secrets.token_hex(6)}", "clusterId": "lab_hosted",
                      "fromAddress": "billing@evil.example",
                      "threatsInfoMap": [{"threatId": secrets.token_hex(8),
                                          "threatStatus": "active",
                                          "classification": "PHISH",
                                          "threatType": "ATTACHMENT", "campaignId": None}]})
    return event


def _error(status: int, message: str) -> Response:
    return Response.json({"error": message}, status)


class ProofpointStandIn:
    """One API host: ``pps`` (PoD admin REST), ``essentials`` (v1) or ``tap`` (SIEM v2)."""

    def __init__(self, api: Literal["pps", "essentials", "tap"], world: World, user: str,
                 password: str, prefix: str = "", tls: ssl.SSLContext | None = None) -> None:
        self.api = api
        self.world = world
        self.prefix = prefix
        self._user = user
        self._password = password
        self.server = HttpServer(self.handle, tls=tls)

    def __repr__(self) -> str:
        return f"ProofpointStandIn({self.api!r})"

    @property
    def url(self) -> str:
        return self.server.url + self.prefix

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    def _authorized(self, request: Request) -> bool:
        if self.api == "essentials":
            return (request.headers.get("x-user") == self._user
                    and request.headers.get("x-password") == self._password)
        token = base64.b64encode(f"{self._user}:{self._password}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {token}"

    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            return Response(405, b"Method Not Allowed", {"Allow": "GET"})
        refuse = self.world.settings.refuse
        if refuse == "unauthorized" or not self._authorized(request):
            return Response(401, b"<html><body>401 Unauthorized</body></html>",
                            {"Content-Type": "text/html", "WWW-Authenticate": 'Basic realm="api"'})
        if refuse == "throttled":
            return Response(429, b"Too Many Requests", {"Content-Type": "text/plain"})
        path = unquote(request.path)
        if not path.startswith(self.prefix):
            return _error(404, "not found")
        path = path[len(self.prefix):]
        route = {"pps": self._pps, "essentials": self._essentials, "tap": self._tap}[self.api]
        return route(path, request)

    # -- PoD / PPS ---------------------------------------------------------------------

    def _pps(self, path: str, request: Request) -> Response:
        w = self.world
        if path == "/rest/v1/pss/filter":
            start = parse_time(request.arg("from")) or _ago(w, days=1)
            end = parse_time(request.arg("to")) or w.now
            rcpt = (request.arg("env_rcpt") or "").lower()
            if rcpt not in (w.recipient, f"*@{w.domain}"):
                return Response.json({"result": []})
            if w.messages is not None:
                return self._search_log(request, start, end)
            # A rule that blocks the recipient blocks all its mail; a failing next hop
            # refuses what comes after the change that broke it.
            fate = w.settings.message
            earlier = fate if fate in ("rejected", "quarantined") else "delivered"
            records = [(_ago(w, hours=5), earlier, 0), (_ago(w, minutes=20), fate, 1)]
            result = [_search_record(w, when, fate, n) for when, fate, n in records
                      if start <= when <= end and maillog.matches(
                          maillog.DEFAULT_MESSAGES[n], sender=request.arg("env_from"),
                          message_id=request.arg("hdr_mid"), subject=request.arg("subject"))]
            count = int(request.arg("count") or 100)
            return Response.json({"result": result[:count]})
        if path == "/rest/v1/quarantine":
            rcpt = request.arg("rcpt") or ""
            if not (rcpt or request.arg("from") or request.arg("subject")):
                return _error(400, "one of from, rcpt, subject is required")
            folder = request.arg("folder") or "Quarantine"
            if w.messages is not None:
                return self._quarantine_log(request, folder)
            held = [_quarantine_record(w, _ago(w, minutes=20))] \
                if w.settings.message == "quarantined" and folder == "Quarantine" \
                and rcpt.lower() == w.recipient else []
            return Response.json({"count": len(held), "records": held})
        if path == "/rest/v1/pss/health":
            return Response.json({"status": "ok"})
        return _error(404, "not found")

    def _search_log(self, request: Request, start: dt.datetime, end: dt.datetime) -> Response:
        """Smart Search over the scenario's mail log: by sender (``env_from``, an address
        or ``*@domain``), Message-ID (``hdr_mid``) and subject, newest first."""
        w = self.world
        assert w.messages is not None
        found = [m for m in maillog.in_window(w.messages, w.now, start, end)
                 if maillog.matches(m, sender=request.arg("env_from"),
                                    message_id=request.arg("hdr_mid"),
                                    subject=request.arg("subject"))]
        found.sort(key=lambda m: m.minutes_ago)
        result = []
        for n, m in enumerate(found):
            record = _search_record(w, m.when(w.now), "delivered", n)
            record.update(maillog.search_fields(m, w.recipient, w.next_host))
            result.append(record)
        return Response.json({"result": result[:int(request.arg("count") or 100)]})

    def _quarantine_log(self, request: Request, folder: str) -> Response:
        """The quarantine list over the scenario's mail log: one folder per call."""
        w = self.world
        assert w.messages is not None
        start = parse_time(request.arg("startdate")) or _ago(w, days=1)
        end = parse_time(request.arg("enddate")) or w.now
        rcpt = (request.arg("rcpt") or "").lower()
        held = [m for m in maillog.in_window(w.messages, w.now, start, end)
                if m.gateway == "quarantined" and m.folder.lower() == folder.lower()
                and (not rcpt or rcpt == w.recipient)
                and maillog.matches(m, sender=request.arg("from"),
                                    subject=request.arg("subject"))]
        records = [{**_quarantine_record(w, m.when(w.now)), **maillog.quarantine_fields(m)}
                   for m in held]
        return Response.json({"count": len(records), "records": records})

    # -- Essentials --------------------------------------------------------------------

    def _essentials(self, path: str, request: Request) -> Response:
        w = self.world
        if path == f"/endpoints/{w.org}":
            return Response.json({"endpoints": [{"region": "lab", "url": self.url}]})
        if path == f"/orgs/{w.org}/domains":
            destination = w.settings.destination or w.next_host
            return Response.json({"domains": [
                {"name": w.domain, "is_active": True, "is_relay": True,
                 "destination": destination, "failovers": []},
            ]})
        if path == f"/orgs/{w.org}/users":
            local = w.recipient.split("@")[0]
            return Response.json({"users": [
                {"uid": 1001, "primary_email": w.recipient, "firstname": local.title(),
                 "surname": "Lab", "type": "end_user", "is_active": True,
                 "is_billable": True, "alias_emails": [f"{local}.lab@{w.domain}"],
                 "safe_list_senders": [], "block_list_senders": [], "read_only_user": False},
                {"uid": 1002, "primary_email": f"admin@{w.domain}", "firstname": "Admin",
                 "surname": "Lab", "type": "organization_admin", "is_active": "1",
                 "alias_emails": [], "safe_list_senders": [], "block_list_senders": []},
            ]})
        return _error(404, "organisation or resource not found")

    # -- TAP SIEM ----------------------------------------------------------------------

    def _tap(self, path: str, request: Request) -> Response:
        w = self.world
        if path != "/v2/siem/all":
            return _error(404, "not found")
        start_text, _, end_text = (request.arg("interval") or "").partition("/")
        start, end = parse_time(start_text), parse_time(end_text)
        if start is None or end is None or not dt.timedelta(seconds=30) <= end - start \
                <= dt.timedelta(hours=1):
            return _error(400, "interval must be start/end, 30 seconds to 1 hour")
        if start < w.now - dt.timedelta(hours=12, minutes=5):
            return _error(400, "the maximum time into the past that can be queried is "
                          "twelve hours")
        events = [("messagesBlocked", _threat(w, _ago(w, hours=2), "blocked", 0)),
                  ("messagesDelivered", _threat(w, _ago(w, hours=7), "delivered", 1))]
        body: dict[str, Any] = {"queryEndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "messagesBlocked": [], "messagesDelivered": [],
                                "clicksPermitted": [], "clicksBlocked": []}
        found = False
        for key, event in events:
            when = parse_time(event["messageTime"])
            if when is not None and start <= when < end:
                body[key].append(event)
                found = True
        return Response.json(body) if found else Response(204)


def api_hosts(topology: Topology) -> list[str]:
    """The host names of the Proofpoint APIs a topology declares."""
    urls = [access.url for tier in topology.tiers.values() if isinstance(tier, ProofpointTier)
            for access in (tier.api, tier.tap) if access is not None]
    return sorted({urlsplit(url).hostname or "" for url in urls} - {""})


@dataclass(frozen=True)
class StandIn:
    tier: str
    key: str  # the topology's access key it serves: "api" or "tap"
    server: ProofpointStandIn


def stand_ins(scenario: Scenario, topology: Topology, environ: dict[str, str],
              tls: ssl.SSLContext | None = None) -> list[StandIn]:
    """The stand-ins a scenario's topology declares (over HTTPS with ``tls``), with the
    lab's credentials put in ``environ`` under the names the topology uses (random each
    run, so a test can look for them in every output)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out: list[StandIn] = []
    for tier_id, tier in topology.tiers.items():
        if not isinstance(tier, ProofpointTier):
            continue
        hops = FlowGraph(topology).next_hops(tier_id)
        next_host = topology.inbound_hosts(hops[0])[0] if hops else "none.invalid"
        domain = scenario.recipient.rpartition("@")[2]
        org = (tier.api.org if tier.api and tier.api.org else None) or topology.domains[0]
        world = World(scenario.recipient.lower(), domain, org, next_host, scenario.gateway_api,
                      now, scenario.messages)
        if tier.api is not None and tier.api.username_env and tier.api.password_env:
            user = f"mailtrace-lab-api@{domain}"
            environ[tier.api.username_env] = user
            environ[tier.api.password_env] = "lab-secret-" + secrets.token_urlsafe(18)
            kind: Literal["pps", "essentials"] = "pps" if tier.flavour == "pod" else "essentials"
            prefix = "/api/v1" if kind == "essentials" else ""
            out.append(StandIn(tier_id, "api", ProofpointStandIn(
                kind, world, user, environ[tier.api.password_env], prefix, tls)))
        if tier.tap is not None:
            principal = f"lab-principal-{secrets.token_hex(4)}"
            environ[tier.tap.principal_env] = principal
            environ[tier.tap.secret_env] = "lab-secret-" + secrets.token_urlsafe(18)
            out.append(StandIn(tier_id, "tap", ProofpointStandIn(
                "tap", world, principal, environ[tier.tap.secret_env], tls=tls)))
    return out
