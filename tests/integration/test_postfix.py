"""The SMTP probe client against a real Postfix on loopback (see :mod:`.postfix`).

The client is pointed at ``mail.postfix.test:25`` and redirected to the instance's port,
as ``--connect-to`` does in a triage, so the name it checks the certificate against is
the MX host's, not the address it connects to. Assertions are on what the dialogue
recorded — reply codes, enhanced status, TLS facts, the transcript — and, for what the
client must never do, on Postfix's own tally of the session.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest

from mailtrace.clients.smtp import Dialogue, Outcome, SmtpClient, SmtpTimeouts
from mailtrace.core.network import ConnectTo, Redirects

from .postfix import PostfixServer

pytestmark = pytest.mark.integration

HELO = "probe.postfix.test"
DIALOGUE_DEADLINE_S = 20.0
LOG_DEADLINE_S = 5.0
KNOWN = "alice@postfix.test"
UNKNOWN = "bob@postfix.test"


def probe(
    server: PostfixServer, recipient: str, host: str | None = None, trust_lab_ca: bool = True
) -> Dialogue:
    """One dialogue with ``host`` (default: the instance's name) over the instance's port;
    without ``trust_lab_ca`` the client trusts only the system's CAs."""
    host = host or server.hostname
    client = SmtpClient(
        Redirects((ConnectTo(host, 25, server.host, server.port),)),
        timeouts=SmtpTimeouts(),
        ca_file=server.ca_file if trust_lab_ca else None,
        helo=HELO,
    )
    deadline = time.monotonic() + DIALOGUE_DEADLINE_S
    return asyncio.run(client.dialogue(host, server.host, recipient, "", deadline))


def client_commands(d: Dialogue) -> list[str]:
    """The verbs the client sent, in order."""
    return [step.text.split(" ", 1)[0].split(":", 1)[0].upper()
            for step in d.transcript if step.direction == "C"]


def explain(d: Dialogue) -> str:
    return "\n".join(step.as_evidence() for step in d.transcript)


_SESSION_EDGE = re.compile(r"/smtpd\[(\d+)\]: (connect|disconnect) from ")


def _log_until(server: PostfixServer, done: Callable[[str], str | None], what: str) -> str:
    """Poll Postfix's log (postlogd writes a moment after the fact) until ``done`` finds
    what it wants in it; bounded."""
    deadline = time.monotonic() + LOG_DEADLINE_S
    while True:
        log = server.log()
        found = done(log)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not in Postfix's log within {LOG_DEADLINE_S:.0f} s:\n{log}")
        time.sleep(0.02)


def settled_log_offset(server: PostfixServer) -> int:
    """The log's length once every session so far has logged its end."""

    def settled(log: str) -> str | None:
        edges = [m.group(2) for m in _SESSION_EDGE.finditer(log)]
        return str(len(log)) if edges.count("connect") == edges.count("disconnect") else None

    return int(_log_until(server, settled, "the end of every earlier session"))


def session_tally(server: PostfixServer, offset: int) -> str:
    """Postfix's "disconnect from ... ehlo=2 starttls=1 ... commands=N" line for the
    first session that began after ``offset``: its smtpd's next disconnect line."""

    def tally(log: str) -> str | None:
        pid = None
        for line in log[offset:].splitlines():
            edge = _SESSION_EDGE.search(line)
            if edge is None:
                continue
            if pid is None and edge.group(2) == "connect":
                pid = edge.group(1)
            elif edge.group(1) == pid and edge.group(2) == "disconnect":
                return line
        return None

    return _log_until(server, tally, "the probe session's disconnect line")


def test_banner_and_ehlo_name_the_server(postfix_server: PostfixServer) -> None:
    d = probe(postfix_server, KNOWN)
    assert d.outcome is Outcome.COMPLETED, explain(d)
    assert d.banner is not None
    assert d.banner.code == 220
    assert d.banner.text.split()[0] == "mail.postfix.test"
    # The EHLO after STARTTLS: Postfix no longer lists STARTTLS there, rightly.
    assert {"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"} <= set(d.extensions), d.extensions
    assert "STARTTLS" not in d.extensions


def test_starttls_established_and_certificate_valid(postfix_server: PostfixServer) -> None:
    d = probe(postfix_server, KNOWN)
    assert d.outcome is Outcome.COMPLETED, explain(d)
    tls = d.tls
    assert tls is not None
    assert (tls.offered, tls.established, tls.error) == (True, True, None), explain(d)
    assert tls.version in {"TLSv1.2", "TLSv1.3"}
    assert tls.cipher
    cert = tls.cert
    assert cert is not None
    assert cert.names == ("mail.postfix.test",)
    assert (cert.chain_ok, cert.chain_error, cert.name_ok, cert.expired) == (
        True, None, True, False), cert
    assert cert.days_left > 0


def test_certificate_from_an_untrusted_ca_is_recorded_and_the_probe_goes_on(
    postfix_server: PostfixServer,
) -> None:
    """Without the lab CA the chain does not validate: that is recorded, and the client
    carries on over opportunistic TLS, as a sending MTA would, to get the RCPT answer."""
    d = probe(postfix_server, KNOWN, trust_lab_ca=False)
    assert d.outcome is Outcome.COMPLETED, explain(d)
    assert d.tls is not None and d.tls.established, explain(d)
    cert = d.tls.cert
    assert cert is not None
    assert (cert.chain_ok, cert.name_ok) == (False, True), cert
    assert cert.chain_error
    assert d.rcpt is not None and d.rcpt.code == 250


def test_certificate_for_another_name(postfix_server: PostfixServer) -> None:
    """The same server reached as another MX name: the chain is fine, the name is not."""
    d = probe(postfix_server, KNOWN, host="mx2.postfix.test")
    assert d.outcome is Outcome.COMPLETED, explain(d)
    assert d.tls is not None and d.tls.cert is not None
    assert (d.tls.cert.chain_ok, d.tls.cert.name_ok) == (True, False), d.tls.cert


def test_unknown_recipient_is_rejected_550_5_1_1(postfix_server: PostfixServer) -> None:
    d = probe(postfix_server, UNKNOWN)
    assert d.outcome is Outcome.COMPLETED, explain(d)
    assert d.mail is not None and d.mail.code == 250  # the null sender is accepted
    assert d.rcpt is not None
    assert (d.rcpt.code, d.rcpt.enhanced) == (550, "5.1.1"), d.rcpt
    assert UNKNOWN in d.rcpt.text


def test_known_recipient_is_accepted(postfix_server: PostfixServer) -> None:
    d = probe(postfix_server, KNOWN)
    assert d.outcome is Outcome.COMPLETED, explain(d)
    assert d.rcpt is not None
    assert (d.rcpt.code, d.rcpt.enhanced) == (250, "2.1.5"), d.rcpt


@pytest.mark.parametrize(("recipient", "rcpt_tally"), [(KNOWN, "1"), (UNKNOWN, "0/1")])
def test_never_data_and_the_session_ends_with_rset_quit(
    postfix_server: PostfixServer, recipient: str, rcpt_tally: str
) -> None:
    offset = settled_log_offset(postfix_server)
    d = probe(postfix_server, recipient)
    assert d.outcome is Outcome.COMPLETED, explain(d)
    commands = client_commands(d)
    assert commands == ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"], explain(d)
    times = [step.at_ms for step in d.transcript]
    assert times == sorted(times)
    # Postfix's own count of the commands it received in that session agrees.
    tally = session_tally(postfix_server, offset)
    counts = dict(re.findall(r"\b([a-z]+)=(\d+(?:/\d+)?)", tally))
    assert "data" not in counts and "bdat" not in counts, tally
    assert (counts.get("ehlo"), counts.get("starttls"), counts.get("mail"), counts.get("rcpt"),
            counts.get("rset"), counts.get("quit")) == ("2", "1", "1", rcpt_tally, "1", "1"), tally
