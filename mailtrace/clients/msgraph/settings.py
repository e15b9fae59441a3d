"""What the Graph client is given: plain values, no topology.

The engine copies them from the tier's ``graph:`` section and the run's options
(``engine/clients.py``); the client never reads the topology file or its model.
Credentials are only *named* here (environment variable names, a certificate path, a
sign-in method): their values are read from the run's environment when the credential is
made (``credentials.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailtrace.core.network import Redirects

#: Graph v1.0 in the global cloud (graph-exo reference §6, "National clouds").
GLOBAL_URL = "https://graph.microsoft.com/v1.0"


@dataclass(frozen=True)
class GraphSettings:
    """How one tier reaches Microsoft Graph."""

    url: str = GLOBAL_URL  # the base URL: the host picks the cloud
    auth: str = "token-env"  # client-secret | client-certificate | device-code | ...
    tenant_id: str | None = None
    client_id: str | None = None
    certificate_path: str | None = None
    secret_env: str | None = None  # the name of the variable, never its value
    token_env: str | None = None
    #: The tier's tenant (``contoso.onmicrosoft.com``): the sign-in tenant when
    #: ``tenant_id`` is not given.
    tenant: str | None = None
    #: Trust these CA certificates instead of the system's (a TLS-inspecting proxy, the lab).
    ca_file: Path | None = None
    #: ``--connect-to`` rules: a connection for the Graph host:port may go elsewhere, with
    #: TLS still checked against the Graph host's name.
    redirects: Redirects = field(default_factory=Redirects)
    #: Cap of one HTTP exchange; each call is also bounded by its probe's deadline.
    timeout: float = 30.0
