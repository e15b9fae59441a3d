"""The lab's MTA-STS policy hosts: ``https://mta-sts.<domain>/.well-known/mta-sts.txt``
over real TLS, with a certificate from the lab CA for ``mta-sts.<domain>``.

Each policy host listens on its own loopback port; the lab's ``connect_to`` sends
``mta-sts.<domain>:443`` there, and the CA file is handed to clients through
``lab.environ["MAILTRACE_CA_FILE"]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailtrace.core.network import ConnectTo
from mailtrace.lab.ca import LabCA
from mailtrace.lab.http_server import HttpServer, Request, Response

CA_FILE_ENV = "MAILTRACE_CA_FILE"
WELL_KNOWN = "/.well-known/mta-sts.txt"

#: The policy each lab domain serves by default (RFC 8461 §3.2).
POLICIES: dict[str, str] = {
    "contoso.com": (
        "version: STSv1\r\nmode: enforce\r\nmx: mx0a-001234.pphosted.com\r\n"
        "mx: *.pphosted.com\r\nmax_age: 604800\r\n"
    ),
}


class PolicyHost(HttpServer):
    def __init__(self, domain: str, policy: str, ca: LabCA) -> None:
        self.domain = domain
        self.policy = policy
        issued = ca.issue(f"mta-sts.{domain}")
        super().__init__(self._handle, tls=issued.server_context())

    def _handle(self, request: Request) -> Response:
        if request.method != "GET" or request.path != WELL_KNOWN:
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        return Response(200, self.policy.encode(), {"Content-Type": "text/plain"})

    @property
    def connect_to(self) -> ConnectTo:
        return ConnectTo(f"mta-sts.{self.domain}", 443, self.host, self.port)


def policy_hosts(ca: LabCA, overrides: Mapping[str, str | None] | None = None
                 ) -> list[PolicyHost]:
    """One host per domain with a policy; an override of None serves no policy host."""
    policies: dict[str, str | None] = {**POLICIES, **(overrides or {})}
    return [PolicyHost(d, p, ca) for d, p in sorted(policies.items()) if p is not None]
