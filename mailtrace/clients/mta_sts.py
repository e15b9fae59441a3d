"""The MTA-STS policy over HTTPS (RFC 8461 §3.3: ``https://mta-sts.<domain>/.well-known/
mta-sts.txt``, the certificate valid for that name, no redirect followed, a bounded body).

requests is imported when a policy is fetched: the commands that fetch none do not load it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from mailtrace.core.network import Redirects
from mailtrace.mailauth.mta_sts import PolicyFetch

MAX_POLICY = 64 * 1024  # RFC 8461 §3.3: senders may refuse larger policies
TIMEOUT = 10.0


def policy_url(domain: str) -> str:
    return f"https://mta-sts.{domain}/.well-known/mta-sts.txt"


def fetch_policy(domain: str, redirects: Redirects | None = None,
                 ca_file: str | None = None, timeout: float = TIMEOUT) -> PolicyFetch:
    import requests

    from mailtrace.clients.http import BodyTooLarge, read_body, session

    url = policy_url(domain)
    try:
        with session(redirects) as http, http.get(
            url, timeout=timeout, allow_redirects=False, stream=True,
            verify=ca_file if ca_file else True,
        ) as response:
            if response.is_redirect:
                return PolicyFetch(url, response.status_code, error=(
                    f"redirect to {response.headers.get('Location')} refused "
                    "(RFC 8461 §3.3)"))
            try:
                raw = read_body(response, time.monotonic() + timeout, MAX_POLICY)
            except BodyTooLarge:
                return PolicyFetch(url, response.status_code,
                                   error=f"policy larger than {MAX_POLICY} bytes")
            return PolicyFetch(url, response.status_code, raw.decode("utf-8", "replace"),
                               response.headers.get("Content-Type"))
    except requests.exceptions.SSLError as exc:
        return PolicyFetch(url, error=f"TLS or certificate failure: {_reason(exc)}")
    except requests.exceptions.Timeout:
        return PolicyFetch(url, error=f"no answer within {timeout:g} s")
    except requests.exceptions.RequestException as exc:
        return PolicyFetch(url, error=f"{type(exc).__name__}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


@dataclass(frozen=True)
class PolicyFetcher:
    """Fetches MTA-STS policies with the run's ``--connect-to`` rules and CA file."""

    redirects: Redirects | None = None
    ca_file: Path | None = None

    async def fetch(self, domain: str) -> PolicyFetch:
        ca = str(self.ca_file) if self.ca_file is not None else None
        return await asyncio.to_thread(fetch_policy, domain, self.redirects, ca)
