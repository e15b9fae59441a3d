"""The SMTP probe client against real SMTP listeners on loopback, polite and hostile.

Every peer behaviour ends as a dialogue with an outcome and a transcript, inside the
deadline: never an exception, never a hang, never ``DATA``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from mailtrace.clients.smtp import Dialogue, Outcome, SmtpClient, SmtpTimeouts
from mailtrace.core.network import ConnectTo, Redirects
from mailtrace.lab.ca import LabCA
from mailtrace.lab.smtp_server import CLOSE, SmtpScript, SmtpServer

HOST = "mx.example.test"
FAST = SmtpTimeouts(connect=1.0, banner=1.0, command=1.0, tls=1.0)


@pytest.fixture(scope="module")
def ca():
    authority = LabCA()
    yield authority
    authority.close()


def converse(ca: LabCA, script: SmtpScript, *, recipient: str = "alice@example.test",
             certificate_for: str = HOST, expired: bool = False, deadline: float = 8.0,
             ca_file: bool = True) -> tuple[Dialogue, list[str], float]:
    async def main() -> tuple[Dialogue, list[str], float]:
        issued = ca.issue(certificate_for, expired=expired)
        async with SmtpServer(HOST, script, tls=issued.server_context()) as server:
            client = SmtpClient(Redirects((ConnectTo(HOST, 25, "127.0.0.1", server.port),)),
                                FAST, ca.ca_file if ca_file else None, helo="probe.test")
            started = time.monotonic()
            d = await client.dialogue(HOST, "192.0.2.10", recipient, None,
                                      time.monotonic() + deadline)
            return d, server.commands, time.monotonic() - started
    return asyncio.run(main())


def transcript(d: Dialogue) -> str:
    return "\n".join(step.text for step in d.transcript)


def test_a_polite_server_gives_the_whole_dialogue_and_never_data(ca):
    d, commands, _ = converse(ca, SmtpScript())
    assert d.outcome is Outcome.COMPLETED and d.rcpt is not None and d.rcpt.code == 250
    assert d.banner is not None and d.banner.code == 220
    assert "STARTTLS" in d.extensions or d.tls is not None
    assert d.tls is not None and d.tls.established and d.tls.version in ("TLSv1.2", "TLSv1.3")
    assert d.tls.cert is not None and d.tls.cert.chain_ok and d.tls.cert.name_ok
    assert [c.split(" ")[0].split(":")[0] for c in commands] == [
        "EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"]
    assert not any(c.upper().startswith("DATA") for c in commands)
    assert d.connected_to.address == "127.0.0.1"  # the address, redirected
    assert all(step.at_ms >= 0 for step in d.transcript)


def test_the_null_sender_and_the_recipient_go_on_the_wire_as_given(ca):
    _, commands, _ = converse(ca, SmtpScript(), recipient="bob+tag@example.test")
    assert "MAIL FROM:<>" in commands and "RCPT TO:<bob+tag@example.test>" in commands


@pytest.mark.parametrize("value", ["a@b.test\r\nDATA", "a@b.test\nRSET", "ü@b.test",
                                   "a@b.test>", "a b@c.test", "x@y.test\0"])
def test_a_value_that_could_inject_a_command_is_refused(value):
    client = SmtpClient()
    with pytest.raises(ValueError, match="refusing"):
        asyncio.run(client.dialogue(HOST, "127.0.0.1", value, None, time.monotonic() + 1))
    with pytest.raises(ValueError, match="refusing"):
        asyncio.run(client.dialogue(HOST, "127.0.0.1", "a@b.test", value, time.monotonic() + 1))


def test_a_tarpit_ends_as_a_banner_timeout_inside_the_deadline(ca):
    d, _, elapsed = converse(ca, SmtpScript(banner=None))
    assert (d.outcome, d.phase) == (Outcome.BANNER_TIMEOUT, "banner")
    assert elapsed < FAST.banner + 1.0


def test_the_run_deadline_is_not_blamed_on_the_server(ca):
    d, _, elapsed = converse(ca, SmtpScript(banner=None), deadline=0.3)
    assert d.outcome is Outcome.OUT_OF_TIME and elapsed < 1.0


@pytest.mark.parametrize(("raw", "outcome", "error"), [
    ({"BANNER": (b"HELLO THERE\r\n",)}, Outcome.PROTOCOL_ERROR, "not an SMTP reply"),
    ({"BANNER": (b"\x16\x03\x01\x00\xff garbage\r\n",)}, Outcome.PROTOCOL_ERROR, "not an SMTP"),
    ({"BANNER": (b"220 " + b"x" * 1_000_000 + b"\r\n",)}, Outcome.PROTOCOL_ERROR, "longer than"),
    ({"EHLO": (b"250-first\r\n251 second\r\n",)}, Outcome.PROTOCOL_ERROR, "different codes"),
    ({"MAIL": CLOSE}, Outcome.CLOSED, "closed by the server"),
    ({"RCPT": (b"250 2.1.5 O",)}, Outcome.TIMEOUT, "no reply"),  # never ends its line
])
def test_hostile_replies_become_outcomes_with_the_transcript(ca, raw, outcome, error):
    d, _, elapsed = converse(ca, SmtpScript(raw=raw))
    assert d.outcome is outcome, transcript(d)
    assert d.error is not None and error in d.error
    assert d.transcript and elapsed < 5


def test_a_multi_line_reply_split_at_odd_places_is_read_whole(ca):
    banner = (b"220-mx.exam", b"ple.test ESMTP\r\n220-more te", b"xt\r", b"\n220 ready\r\n")
    d, _, _ = converse(ca, SmtpScript(raw={"BANNER": banner}))
    assert d.outcome is Outcome.COMPLETED
    assert d.banner is not None and d.banner.lines == ("mx.example.test ESMTP", "more text",
                                                       "ready")


def test_a_failed_handshake_is_recorded_and_the_dialogue_ends_in_clear_text(ca):
    d, commands, _ = converse(ca, SmtpScript(certificate="broken"))
    assert d.outcome is Outcome.COMPLETED, transcript(d)
    assert d.tls is not None and d.tls.offered and not d.tls.established
    assert d.tls.error and "handshake failed" in d.tls.error
    assert commands.count("STARTTLS") == 1 and "RCPT TO:<alice@example.test>" in commands


def test_starttls_refused_after_being_offered_carries_on_in_clear_text(ca):
    d, _, _ = converse(ca, SmtpScript(raw={"STARTTLS": (b"454 4.7.0 TLS not available\r\n",)}))
    assert d.outcome is Outcome.COMPLETED
    assert d.tls is not None and d.tls.error == "STARTTLS answered 454 4.7.0 TLS not available"


@pytest.mark.parametrize(("cert_kw", "check"), [
    ({"expired": True}, lambda c: c.expired and not c.chain_ok and c.days_left < 0),
    ({"certificate_for": "other.example"}, lambda c: c.chain_ok and not c.name_ok),
    ({"ca_file": False}, lambda c: not c.chain_ok and not c.expired),  # unknown issuer
])
def test_certificate_problems_are_recorded_and_the_recipient_still_asked(ca, cert_kw, check):
    d, commands, _ = converse(ca, SmtpScript(), **cert_kw)
    assert d.outcome is Outcome.COMPLETED and d.rcpt is not None
    assert d.tls is not None and d.tls.cert is not None and check(d.tls.cert), d.tls.cert
    assert "RCPT TO:<alice@example.test>" in commands


def test_an_old_server_gets_helo_after_ehlo_is_unknown(ca):
    d, commands, _ = converse(ca, SmtpScript(raw={"EHLO": (b"502 5.5.2 unrecognized\r\n",)}))
    assert d.outcome is Outcome.COMPLETED
    assert commands[:2] == ["EHLO probe.test", "HELO probe.test"]
    assert d.tls is not None and not d.tls.offered


@pytest.mark.parametrize(("script", "outcome", "phase"), [
    (SmtpScript(banner="421 4.3.2 busy"), Outcome.REJECTED, "banner"),
    (SmtpScript(mail_reply="553 5.1.8 sender refused"), Outcome.REJECTED, "mail"),
])
def test_a_refusal_before_rcpt_ends_the_dialogue_politely(ca, script, outcome, phase):
    d, commands, _ = converse(ca, script)
    assert (d.outcome, d.phase) == (outcome, phase)
    assert d.last_reply is not None and not d.last_reply.positive
    assert "RCPT TO:<alice@example.test>" not in commands


def test_refused_and_reachable():
    async def main() -> tuple[Dialogue, Dialogue]:
        async with SmtpServer(HOST, SmtpScript()) as server:
            client = SmtpClient(Redirects((ConnectTo(HOST, 25, "127.0.0.1", server.port),)),
                                FAST)
            ok = await client.reachable(HOST, "127.0.0.1", time.monotonic() + 2)
        closed = await client.dialogue(HOST, "127.0.0.1", "a@b.test", None,
                                       time.monotonic() + 2)
        return ok, closed
    ok, closed = asyncio.run(main())
    assert ok.connected and ok.outcome is Outcome.COMPLETED
    assert (closed.outcome, closed.error) == (Outcome.REFUSED, "connection refused")

