"""Clients for the Proofpoint APIs a mail-flow triage reads (GET only, never an action).

- PPS / Proofpoint on Demand admin REST (``https://<cluster>:10000/rest/v1``, HTTP Basic
  with an account whose role is of type API): Smart Search and the quarantine list.
- Proofpoint Essentials v1 (``https://<stack>.proofpointessentials.com/api/v1``, headers
  ``X-User``/``X-Password``): the org's stack, its domains and their delivery
  destination, its users.
- TAP SIEM v2 (``https://tap-api-v2.proofpoint.com``, HTTP Basic with a service
  principal): threat-only, at most one hour per request, twelve hours back.

Each call is blocking ``requests`` work run in a thread (``asyncio.to_thread``), bounded
by the probe's deadline. Sources: ``reference/proofpoint.md`` §1, §3, §5.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from mailtrace.clients.proofpoint.http import ApiResponse, Credentials, HttpApi
from mailtrace.core.network import Redirects

#: Smart Search's default page size; the server's maximum is site configuration
#: (``com.proofpoint.pss.query.default-count``).
SMART_SEARCH_COUNT = 100
#: TAP SIEM: at most one hour per request, and at most twelve hours into the past.
TAP_WINDOW = dt.timedelta(hours=1)
TAP_LOOKBACK = dt.timedelta(hours=12)


def pps_time(when: dt.datetime) -> str:
    """Smart Search's ``from``/``to``: ``%Y-%m-%dT%H:%M:%S%z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def quarantine_time(when: dt.datetime) -> str:
    """The quarantine list's ``startdate``/``enddate``: ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def tap_interval(start: dt.datetime, end: dt.datetime) -> str:
    """TAP's ISO-8601 ``interval``: ``start/end`` in UTC, at most one hour apart."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return f"{start.astimezone(dt.UTC).strftime(fmt)}/{end.astimezone(dt.UTC).strftime(fmt)}"


class _Client:
    def __init__(self, url: str, creds: Credentials, auth: str = "basic",
                 ca_file: Path | None = None, redirects: Redirects | None = None) -> None:
        self._http = HttpApi(url, creds, "headers" if auth == "headers" else "basic",
                             ca_file=ca_file, redirects=redirects)

    @property
    def host(self) -> str:
        return self._http.host

    async def _get(self, path: str, params: Mapping[str, str | int | list[str]] | None,
                   deadline: float) -> ApiResponse:
        return await asyncio.to_thread(self._http.get, path, params, deadline)

    def close(self) -> None:
        self._http.close()


class PpsClient(_Client):
    """PPS / PoD admin REST API, port 10000."""

    def __init__(self, url: str, creds: Credentials, ca_file: Path | None = None,
                 redirects: Redirects | None = None) -> None:
        super().__init__(url, creds, "basic", ca_file, redirects)

    async def smart_search(self, recipient: str, start: dt.datetime, end: dt.datetime,
                           deadline: float, count: int = SMART_SEARCH_COUNT, *,
                           sender: str | None = None, message_id: str | None = None,
                           subject: str | None = None) -> ApiResponse:
        """``sender``: an address, or a domain as ``@domain`` (Smart Search matches
        ``*@domain``); ``message_id``: the Message-ID header (``hdr_mid``)."""
        params: dict[str, str | int | list[str]] = {
            "env_rcpt": recipient, "from": pps_time(start), "to": pps_time(end),
            "count": count}
        if sender:
            params["env_from"] = f"*{sender}" if sender.startswith("@") else sender
        if message_id:
            params["hdr_mid"] = message_id if message_id.startswith("<") else f"<{message_id}>"
        if subject:
            params["subject"] = subject
        return await self._get("/rest/v1/pss/filter", params, deadline)

    async def quarantine(self, recipient: str, start: dt.datetime, end: dt.datetime,
                         deadline: float, folder: str | None = None, *,
                         sender: str | None = None, subject: str | None = None
                         ) -> ApiResponse:
        """``sender``: an address, or a domain as ``@domain`` (the list matches a domain)."""
        params: dict[str, str | int | list[str]] = {
            "rcpt": recipient, "startdate": quarantine_time(start),
            "enddate": quarantine_time(end)}
        if folder:
            params["folder"] = folder
        if sender:
            params["from"] = sender.lstrip("@")
        if subject:
            params["subject"] = subject
        return await self._get("/rest/v1/quarantine", params, deadline)


class EssentialsClient(_Client):
    """Proofpoint Essentials v1 admin API; organisations are named by primary domain."""

    def __init__(self, url: str, creds: Credentials, ca_file: Path | None = None,
                 redirects: Redirects | None = None) -> None:
        super().__init__(url, creds, "headers", ca_file, redirects)

    async def endpoints(self, org: str, deadline: float) -> ApiResponse:
        return await self._get(f"/endpoints/{quote(org)}", None, deadline)

    async def domains(self, org: str, deadline: float) -> ApiResponse:
        return await self._get(f"/orgs/{quote(org)}/domains", None, deadline)

    async def users(self, org: str, deadline: float) -> ApiResponse:
        return await self._get(f"/orgs/{quote(org)}/users", None, deadline)


class TapClient(_Client):
    """TAP SIEM API v2 (the Essentials Threat API answers the same paths)."""

    def __init__(self, url: str, creds: Credentials, ca_file: Path | None = None,
                 redirects: Redirects | None = None) -> None:
        super().__init__(url, creds, "basic", ca_file, redirects)

    async def siem_all(self, start: dt.datetime, end: dt.datetime,
                       deadline: float) -> ApiResponse:
        params = {"interval": tap_interval(start, end), "format": "json"}
        return await self._get("/v2/siem/all", params, deadline)
