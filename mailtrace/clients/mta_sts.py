"""Gather what the MTA-STS and TLS-RPT checks judge: the records through DNS, the policy
over HTTPS (RFC 8461 §3.3: ``https://mta-sts.<domain>/.well-known/mta-sts.txt``, the
certificate valid for that name, no redirect followed, a bounded body)."""

from __future__ import annotations

import asyncio
import time

import requests

from mailtrace.clients.http import BodyTooLarge, read_body, session
from mailtrace.core.network import Redirects
from mailtrace.mailauth.lookup import Lookup
from mailtrace.mailauth.mta_sts import MtaStsCheck, PolicyFetch
from mailtrace.topology.model import DnsTier, Topology

MAX_POLICY = 64 * 1024  # RFC 8461 §3.3: senders may refuse larger policies
TIMEOUT = 10.0


def policy_url(domain: str) -> str:
    return f"https://mta-sts.{domain}/.well-known/mta-sts.txt"


def fetch_policy(domain: str, redirects: Redirects | None = None,
                 ca_file: str | None = None, timeout: float = TIMEOUT) -> PolicyFetch:
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


async def collect(lookup: Lookup, topology: Topology, domain: str, *,
                  redirects: Redirects | None = None, ca_file: str | None = None,
                  mx_hosts: tuple[str, ...] | None = None) -> MtaStsCheck:
    """``mx_hosts`` replaces the live MX set (precheck judges the changed one)."""
    record, tlsrpt, mx = await asyncio.gather(
        lookup(f"_mta-sts.{domain}", "TXT"), lookup(f"_smtp._tls.{domain}", "TXT"),
        lookup(domain, "MX"))
    hosts = mx_hosts if mx_hosts is not None else tuple(
        d.split()[1].rstrip(".").lower() for d in mx.data if len(d.split()) == 2)
    expected = None
    for tier in topology.tiers.values():
        if isinstance(tier, DnsTier) and tier.expect.mta_sts is not None:
            expected = tier.expect.mta_sts.mode
    fetch = None
    if any(t.startswith("v=STSv1") for t in record.data):
        fetch = await asyncio.to_thread(fetch_policy, domain, redirects, ca_file)
    return MtaStsCheck(domain, record, tlsrpt, hosts, fetch, expected,
                       [mx.evidence()])
