"""Who mailtrace is when it asks Microsoft Graph: the cloud and the azure-identity credential.

The cloud follows the topology's Graph URL (graph-exo reference §6, "National clouds"):
each Graph host has its own token scope and its own sign-in authority. Credentials are
read from the run's environment mapping only (``ProbeContext.environ``), never from the
topology file, and never appear in a repr, a message or a log line.

azure-identity is imported inside the functions: it is slow to import and ``mailtrace
--help`` must stay fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mailtrace.clients.msgraph.settings import GraphSettings
from mailtrace.core.network import is_loopback

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential


class GraphConfigError(Exception):
    """The tier's Graph access cannot be used as declared (a missing variable, say)."""


@dataclass(frozen=True)
class Cloud:
    name: str
    authority: str | None  # the sign-in host; None for the lab (token-env only)
    message_trace: bool  # Graph message trace exists in the global cloud only (§5)


# Graph host -> its cloud (reference §6; msgraph_core NationalClouds, AzureAuthorityHosts).
CLOUDS: dict[str, Cloud] = {
    "graph.microsoft.com": Cloud("global", "login.microsoftonline.com", True),
    "graph.microsoft.us": Cloud("US Government L4", "login.microsoftonline.us", False),
    "dod-graph.microsoft.us": Cloud("US Government L5 (DoD)", "login.microsoftonline.us", False),
    "microsoftgraph.chinacloudapi.cn": Cloud("China (21Vianet)", "login.chinacloudapi.cn", False),
}
LAB_CLOUD = Cloud("loopback", None, True)


@dataclass(frozen=True)
class GraphTarget:
    """Where the tier's Graph is: the base URL, its host, the cloud and the token scope."""

    base_url: str
    host: str
    cloud: Cloud

    @property
    def scope(self) -> str:
        scheme = "http" if self.cloud is LAB_CLOUD else "https"
        return f"{scheme}://{self.host}/.default"

    @property
    def loopback(self) -> bool:
        return self.cloud is LAB_CLOUD


def graph_target(access: GraphSettings) -> GraphTarget:
    parts = urlsplit(access.url)
    host = (parts.hostname or "").lower()
    base = access.url.rstrip("/")
    if is_loopback(host):
        return GraphTarget(base, host, LAB_CLOUD)
    cloud = CLOUDS.get(host)
    if cloud is None:
        raise GraphConfigError(
            f"unknown Graph host {host}: expected one of {', '.join(CLOUDS)} "
            "(the token's audience and sign-in authority follow the host)"
        )
    return GraphTarget(base, host, cloud)


class StaticToken:
    """A pre-issued bearer token, as an azure.core ``TokenCredential``.

    For admins who already hold a token (``auth: token-env``). Its repr never shows the
    token; the expiry is unknown, so it is reported an hour ahead and Graph says 401
    when it has really expired.
    """

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class SharedToken:
    """An ``AsyncTokenCredential`` over a synchronous azure-identity credential.

    The synchronous credentials do blocking HTTP, so the call runs in a thread; one token
    is fetched for all the probes of a run (they start together), then reused until five
    minutes before it expires.
    """

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        async with self._lock:
            if self._token is None or self._token.expires_on - 300 < time.time():
                # claims/enable_cae are for continuous access evaluation, which a
                # read-only diagnostic run does not need; pass only the scopes.
                self._token = await asyncio.to_thread(self._credential.get_token, *scopes)
            return self._token

    async def close(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()

    async def __aenter__(self) -> SharedToken:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SharedToken({type(self._credential).__name__})"


def _env(environ: Mapping[str, str], name: str | None, what: str) -> str:
    if name is None:
        raise GraphConfigError(f"no environment variable named for the {what}")
    value = environ.get(name, "")
    if not value.strip():
        raise GraphConfigError(f"environment variable {name} (the {what}) is not set")
    return value.strip()


def make_credential(access: GraphSettings, target: GraphTarget, environ: Mapping[str, str],
                    tenant: str | None = None) -> TokenCredential:
    """The azure-identity credential the tier declares (reference §6, "Construction")."""
    if access.auth == "token-env":
        return StaticToken(_env(environ, access.token_env, "Graph bearer token"))
    if access.auth == "device-code":
        # A person signs in once with `mailtrace login`; a run uses that sign-in silently
        # (mailtrace.clients.msgraph.signin, which the engine builds), never a prompt
        # inside a probe's deadline.
        raise GraphConfigError("auth device-code is a person's own sign-in: run `mailtrace "
                               "login --topology FILE` once, then every run signs in silently")
    if target.loopback:
        # A loopback Graph is the lab: never let a credential sign in to a real authority.
        raise GraphConfigError(
            f"a loopback Graph URL takes auth token-env, not {access.auth}"
        )
    from azure import identity

    authority = target.cloud.authority
    tenant_id = access.tenant_id or tenant or access.tenant
    if access.auth == "client-secret":
        if tenant_id is None:
            raise GraphConfigError("auth client-secret needs tenant_id (or the tier's tenant)")
        return identity.ClientSecretCredential(
            tenant_id, access.client_id or "", _env(environ, access.secret_env, "client secret"),
            authority=authority,
        )
    if access.auth == "client-certificate":
        if tenant_id is None:
            raise GraphConfigError(
                "auth client-certificate needs tenant_id (or the tier's tenant)")
        path = os.path.expanduser(access.certificate_path or "")
        if not os.path.isfile(path):
            raise GraphConfigError(f"certificate file {access.certificate_path} not found")
        return identity.CertificateCredential(
            tenant_id, access.client_id or "", certificate_path=path, authority=authority,
        )
    if access.auth == "managed-identity":
        if access.client_id:
            return identity.ManagedIdentityCredential(client_id=access.client_id)
        return identity.ManagedIdentityCredential()
    if access.auth == "azure-cli":
        return identity.AzureCliCredential(tenant_id=tenant_id or "")
    raise GraphConfigError(f"unknown auth {access.auth}")
