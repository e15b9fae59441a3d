"""The lab's SMTP listeners (real SMTP, STARTTLS on a lab CA) for the integration tests'
contoso hosts, served from an event loop in a background thread while the CLI runs in a
subprocess."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mailtrace.lab.ca import LabCA
from mailtrace.lab.scenarios import SMTP_HOSTS
from mailtrace.lab.smtp_server import SmtpServer

CONTOSO_SMTP_HOSTS = (
    "mx0a-001234.pphosted.com",
    "mx0b-001234.pphosted.com",
    "contoso-com.mail.protection.outlook.com",
)


@contextmanager
def lab_smtp_hosts(hosts: tuple[str, ...] = CONTOSO_SMTP_HOSTS) -> Iterator[list[str]]:
    """Yields the CLI flags (``--connect-to HOST:25:…``, ``--ca-file``) that reach them."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ca = LabCA()
    servers = [SmtpServer(host, SMTP_HOSTS[host], tls=ca.issue(host).server_context())
               for host in hosts]
    try:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=5)
        flags = ["--ca-file", str(ca.ca_file)]
        for server in servers:
            flags += ["--connect-to", f"{server.host_name}:25:{server.host}:{server.port}"]
        yield flags
    finally:
        for server in servers:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
        ca.close()
