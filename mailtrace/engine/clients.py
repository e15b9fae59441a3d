"""The clients of one run, built by the engine from the topology and the run's options.

The DNS and SMTP clients serve every tier; an API client is built once per tier on the
first probe's request, from what the tier declares (its URL, the names of the environment
variables holding its credentials, its sign-in method) and closed when the run ends.
Credentials are read here, from the run's environment mapping, and handed to the client:
probes never see them, only :class:`~mailtrace.probes.base.ClientUnavailable` naming what
is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mailtrace.clients.dns import DnsClient, Server
from mailtrace.clients.msgraph import signin
from mailtrace.clients.msgraph.client import GraphClient, GraphConfigError, connect
from mailtrace.clients.msgraph.settings import GraphSettings
from mailtrace.clients.mta_sts import PolicyFetcher
from mailtrace.clients.proofpoint import EssentialsClient, PpsClient, TapClient
from mailtrace.clients.proofpoint.http import ApiError, Credentials, credentials
from mailtrace.clients.smtp import SmtpClient
from mailtrace.core.network import Redirects
from mailtrace.engine.settings import Options
from mailtrace.probes.base import ClientUnavailable
from mailtrace.topology.model import (
    ExchangeOnlineTier,
    GraphAccess,
    ProofpointApi,
    ProofpointTier,
    TapAccess,
    Topology,
)

C = TypeVar("C")

#: What the Proofpoint clients are called in the reasons an API is not tested.
PPS_API = "Proofpoint Smart Search / quarantine API"
ESSENTIALS_API = "Proofpoint Essentials API"
TAP_API = "Proofpoint TAP SIEM API"


def graph_settings(access: GraphAccess, tenant: str | None, *, ca_file: Path | None = None,
                   timeout: float = 30.0, redirects: Redirects | None = None) -> GraphSettings:
    """A tier's ``graph:`` section and the run's options, as the Graph client's settings
    (the sign-in commands use it too)."""
    return GraphSettings(
        url=access.url, auth=access.auth, tenant_id=access.tenant_id,
        client_id=access.client_id, certificate_path=access.certificate_path,
        secret_env=access.secret_env, token_env=access.token_env, tenant=tenant,
        ca_file=ca_file, timeout=timeout, redirects=redirects or Redirects())


class RunClients:
    """Implements :class:`mailtrace.probes.base.Clients` for one run."""

    def __init__(self, topology: Topology, options: Options,
                 dns: DnsClient | None = None) -> None:
        self.topology = topology
        self.options = options
        redirects = Redirects(tuple(options.connect_to))
        resolvers = [Server("resolver", e.address, e.port) for e in options.resolvers]
        pool = options.dns_pool
        if dns is None and pool is not None:
            # A fleet's runs share one question table and one budget of queries in flight.
            dns = DnsClient(resolvers, redirects, trust_anchor=options.trust_anchor,
                            _tasks=pool.answers, budget=pool.budget)
        self.dns = dns or DnsClient(resolvers, redirects, trust_anchor=options.trust_anchor)
        self.smtp = SmtpClient(
            redirects=self.dns.redirects,
            timeouts=options.smtp_timeouts,
            ca_file=options.ca_file,
            helo=options.helo or topology.smtp.helo,
            mail_from=(topology.smtp.mail_from if options.mail_from is None
                       else options.mail_from),
            references=tuple(options.smtp_references),
        )
        self._made: dict[tuple[str, str], Any] = {}

    def _once(self, tier: str, what: str, make: Callable[[], C]) -> C:
        key = (tier, what)
        if key not in self._made:
            self._made[key] = make()
        made: C = self._made[key]
        return made

    # --- Exchange Online ---------------------------------------------------------------

    def graph(self, tier: str) -> GraphClient:
        found = self.topology.tiers.get(tier)
        if not isinstance(found, ExchangeOnlineTier) or found.graph is None:
            raise ClientUnavailable(f"tier {tier} declares no graph: access")
        settings = graph_settings(found.graph, found.tenant, ca_file=self.options.ca_file,
                                  timeout=self.options.timeout, redirects=self.dns.redirects)

        def make() -> GraphClient:
            environ = self.options.environ
            try:
                credential = None
                if settings.auth in signin.DELEGATED:
                    # A person's recorded sign-in (`mailtrace login`), used silently, with
                    # the run's CA file for the sign-in service too: no prompt in a probe.
                    place = signin.place_of(settings, environ)
                    credential = signin.signed_in(place, environ, self.options.ca_file)
                return connect(settings, environ, credential=credential)
            except GraphConfigError as exc:
                raise ClientUnavailable(str(exc)) from None

        return self._once(tier, "graph", make)

    # --- Proofpoint --------------------------------------------------------------------

    def _proofpoint(self, tier: str) -> ProofpointTier:
        found = self.topology.tiers.get(tier)
        if not isinstance(found, ProofpointTier):
            raise ClientUnavailable(f"tier {tier} is not a Proofpoint tier")
        return found

    def _admin_api(self, tier: str) -> ProofpointApi:
        api = self._proofpoint(tier).api
        if api is None:
            raise ClientUnavailable(f"tier {tier} declares no api:")
        return api

    def _credentials(self, user_env: str | None, secret_env: str | None,
                     what: str) -> Credentials:
        try:
            return credentials(self.options.environ, user_env, secret_env, what)
        except ApiError as exc:
            raise ClientUnavailable(exc.reason) from None

    def pps(self, tier: str) -> PpsClient:
        api = self._admin_api(tier)
        return self._once(tier, "pps", lambda: PpsClient(
            api.url, self._credentials(api.username_env, api.password_env, PPS_API),
            self.options.ca_file, self.dns.redirects))

    def essentials(self, tier: str) -> EssentialsClient:
        api = self._admin_api(tier)
        return self._once(tier, "essentials", lambda: EssentialsClient(
            api.url, self._credentials(api.username_env, api.password_env, ESSENTIALS_API),
            self.options.ca_file, self.dns.redirects))

    def tap(self, tier: str) -> TapClient:
        tap: TapAccess | None = self._proofpoint(tier).tap
        if tap is None:
            raise ClientUnavailable(f"tier {tier} declares no tap:")
        return self._once(tier, "tap", lambda: TapClient(
            tap.url, self._credentials(tap.principal_env, tap.secret_env, TAP_API),
            self.options.ca_file, self.dns.redirects))

    # --- HTTPS for MTA-STS ---------------------------------------------------------------

    def policy_fetcher(self) -> PolicyFetcher:
        return self._once("", "mta-sts", lambda: PolicyFetcher(self.dns.redirects,
                                                               self.options.ca_file))

    async def aclose(self) -> None:
        """Close every client made, whatever happens to the others."""
        for client in reversed(list(self._made.values())):
            with contextlib.suppress(Exception):
                close = getattr(client, "aclose", None)
                if close is not None:
                    await close()
                else:
                    closing = getattr(client, "close", None)
                    if closing is not None:
                        await asyncio.to_thread(closing)
        self._made.clear()
