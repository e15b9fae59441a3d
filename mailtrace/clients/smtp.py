"""SMTP probe client: one dialogue per address, stopping after ``RCPT TO``. Never ``DATA``.

connect → banner → EHLO (HELO if refused) → STARTTLS when offered (handshake, certificate
checked against the system's CAs or a CA file, the name against the host) → EHLO again →
``MAIL FROM`` → ``RCPT TO`` → ``RSET`` → ``QUIT``. Each phase has its own deadline
(connect, banner, each command, TLS), all inside the caller's deadline. The transcript,
with a timestamp on each line, is the evidence; the dialogue records how it ended
(:class:`Outcome`) and never raises for anything a peer does.

A certificate that fails validation is recorded, and the dialogue carries on over a new
connection without validation, as an opportunistic-TLS sender would: the recipient's
answer is still worth having.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

from mailtrace.clients.smtp_reply import MAX_LINE, MAX_LINES, Reply, ReplyError, build, decode
from mailtrace.clients.smtp_reply import parse_line as _parse_line
from mailtrace.core.evidence import SmtpDialogue
from mailtrace.core.network import Endpoint, Redirects

SMTP_PORT = 25
_ENCODING_DER = 2  # _ssl.ENCODING_DER: the format argument of _ssl.Certificate.public_bytes
CLOSE_TIMEOUT = 1.0  # seconds a closing connection may take before it is aborted


class Outcome(StrEnum):
    """How one dialogue ended."""

    COMPLETED = "completed"  # RCPT TO was answered (whatever the code)
    REFUSED = "refused"  # the connection was refused (TCP RST)
    CONNECT_TIMEOUT = "connect-timeout"
    NO_ROUTE = "no-route"  # no route from here (e.g. no IPv6 on this machine)
    NETWORK_ERROR = "network-error"
    BANNER_TIMEOUT = "banner-timeout"  # connected, never greeted (a tarpit)
    REJECTED = "rejected"  # a 4xx/5xx reply ended the dialogue before RCPT TO
    TIMEOUT = "timeout"  # a command got no reply in time
    CLOSED = "closed"  # the server closed the connection mid-dialogue
    PROTOCOL_ERROR = "protocol-error"  # the server sent something that is not SMTP
    OUT_OF_TIME = "out-of-time"  # the run's budget ended before the server had its turn


@dataclass(frozen=True)
class SmtpTimeouts:
    connect: float = 5.0
    banner: float = 10.0
    command: float = 10.0
    tls: float = 10.0


@dataclass(frozen=True)
class Step:
    at_ms: float  # since the dialogue started
    direction: str  # "C" client, "S" server, "-" a note (connected, TLS, closed)
    text: str

    def as_evidence(self) -> str:
        return f"{self.at_ms:8.1f} ms {self.direction}: {self.text}"


@dataclass(frozen=True)
class CertInfo:
    subject: str
    issuer: str
    names: tuple[str, ...]  # subjectAltName DNS names (the subject CN when there are none)
    not_after: str  # ISO 8601, UTC
    days_left: int
    expired: bool
    chain_ok: bool
    chain_error: str | None
    name_ok: bool


@dataclass
class TlsInfo:
    offered: bool
    established: bool = False
    version: str | None = None
    cipher: str | None = None
    error: str | None = None  # the handshake failed: why
    cert: CertInfo | None = None
    #: The certificates the server presented, DER, its own first (what DANE matches,
    #: RFC 7671 §5); only the leaf where Python cannot give the chain.
    chain: tuple[bytes, ...] = ()


@dataclass
class Dialogue:
    host: str
    address: str
    port: int
    connected_to: Endpoint
    outcome: Outcome = Outcome.COMPLETED
    phase: str = "connect"  # the phase it ended in
    error: str | None = None
    banner: Reply | None = None
    ehlo: Reply | None = None
    extensions: list[str] = field(default_factory=list)
    tls: TlsInfo | None = None
    mail: Reply | None = None
    rcpt: Reply | None = None
    last_reply: Reply | None = None
    transcript: list[Step] = field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def connected(self) -> bool:
        return any(step.text.startswith("connected") for step in self.transcript)

    def evidence(self) -> SmtpDialogue:
        return SmtpDialogue(f"{self.host} [{self.address}]:{self.port}",
                            str(self.connected_to), self.outcome.value, self.phase,
                            tuple(step.as_evidence() for step in self.transcript))


class _Mode(StrEnum):
    VALIDATE = "validate"  # STARTTLS, the certificate validated
    OPPORTUNISTIC = "opportunistic"  # STARTTLS, any certificate
    PLAIN = "plain"  # no STARTTLS


class _Ended(Exception):
    """Internal: the dialogue is over (the outcome is already recorded)."""


class _Session:
    """One connection's worth of dialogue, writing into a :class:`Dialogue`."""

    def __init__(self, d: Dialogue, timeouts: SmtpTimeouts, deadline: float,
                 started: float | None = None) -> None:
        self.d = d
        self.timeouts = timeouts
        self.deadline = deadline
        self.started = started if started is not None else time.monotonic()  # of the dialogue
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def note(self, direction: str, text: str) -> None:
        at = (time.monotonic() - self.started) * 1000
        self.d.transcript.append(Step(round(at, 1), direction, text))

    def end(self, outcome: Outcome, error: str | None = None) -> _Ended:
        self.d.outcome, self.d.error = outcome, error
        if error:
            self.note("-", error)
        return _Ended()

    def budget(self, phase_timeout: float) -> tuple[float, bool]:
        """Seconds to wait, and whether the run's deadline (not the phase's) binds."""
        left = self.deadline - time.monotonic()
        return max(min(phase_timeout, left), 0.0), left < phase_timeout

    async def connect(self, target: Endpoint) -> None:
        self.d.phase = "connect"
        wait, cut = self.budget(self.timeouts.connect)
        if wait <= 0:
            raise self.end(Outcome.OUT_OF_TIME, "no time left to connect")
        try:
            async with asyncio.timeout(wait):
                self.reader, self.writer = await asyncio.open_connection(
                    target.address, target.port, limit=MAX_LINE
                )
        except TimeoutError:
            outcome = Outcome.OUT_OF_TIME if cut else Outcome.CONNECT_TIMEOUT
            raise self.end(outcome, f"no TCP connection within {wait:.1f} s") from None
        except OSError as exc:
            raise self.end(*_connect_error(exc)) from None
        self.note("-", f"connected to {target}")

    async def read_reply(self, phase_timeout: float, silent: Outcome = Outcome.TIMEOUT) -> Reply:
        assert self.reader is not None
        wait, cut = self.budget(phase_timeout)
        lines: list[str] = []
        try:
            async with asyncio.timeout(wait):
                while True:
                    raw = await self.reader.readuntil(b"\n")
                    text = decode(raw)
                    self.note("S", text)
                    last = _parse_line(text)[1]
                    lines.append(text)
                    if last:
                        break
                    if len(lines) >= MAX_LINES:
                        raise ReplyError(f"more than {MAX_LINES} reply lines")
            reply = build(lines)
        except TimeoutError:
            outcome = Outcome.OUT_OF_TIME if cut else silent
            raise self.end(outcome, f"no reply within {wait:.1f} s") from None
        except asyncio.LimitOverrunError:
            raise self.end(Outcome.PROTOCOL_ERROR,
                           f"reply line longer than {MAX_LINE} bytes") from None
        except asyncio.IncompleteReadError as exc:
            partial = decode(exc.partial)
            detail = f" (after {partial[:120]!r})" if partial else ""
            raise self.end(Outcome.CLOSED, f"connection closed by the server{detail}") from None
        except ReplyError as exc:
            raise self.end(Outcome.PROTOCOL_ERROR, str(exc)) from None
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise self.end(Outcome.CLOSED, f"connection lost: {_describe(exc)}") from None
        self.d.last_reply = reply
        return reply

    async def command(self, line: str) -> Reply:
        assert self.writer is not None
        self.d.phase = line.split(" ", 1)[0].split(":", 1)[0].lower()
        self.note("C", line)
        try:
            self.writer.write(line.encode("ascii") + b"\r\n")
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise self.end(Outcome.CLOSED, f"connection lost: {_describe(exc)}") from None
        return await self.read_reply(self.timeouts.command)

    async def starttls(self, host: str, context: ssl.SSLContext) -> None:
        assert self.writer is not None
        self.d.phase = "tls"
        wait, cut = self.budget(self.timeouts.tls)
        try:
            async with asyncio.timeout(wait):
                await self.writer.start_tls(context, server_hostname=_sni(host))
        except TimeoutError:
            outcome = Outcome.OUT_OF_TIME if cut else Outcome.TIMEOUT
            raise self.end(outcome, f"TLS handshake not done within {wait:.1f} s") from None

    async def close(self) -> None:
        """Close the connection and wait, briefly, until it is; a peer that does not
        answer a TLS close is cut off."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (TimeoutError, OSError, ssl.SSLError):
            writer.transport.abort()


def _sni(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None  # no SNI for an address literal


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or type(exc).__name__ if isinstance(exc, OSError) else str(exc)


def _connect_error(exc: OSError) -> tuple[Outcome, str]:
    if isinstance(exc, ConnectionRefusedError):
        return Outcome.REFUSED, "connection refused"
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL,
                     errno.EAFNOSUPPORT):
        return Outcome.NO_ROUTE, f"no route from here: {exc.strerror}"
    return Outcome.NETWORK_ERROR, f"cannot connect: {exc.strerror or exc}"


def _parse_ehlo(reply: Reply) -> list[str]:
    """EHLO keywords (RFC 5321 §4.1.1.1): the first word of each line after the greeting."""
    return [line.split()[0].upper() for line in reply.lines[1:] if line.split()]


# --- certificates ---------------------------------------------------------------------

def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4: exact, or a wildcard standing for the whole left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*.") and "." in host:
        return host.split(".", 1)[1] == pattern[2:] and pattern.count(".") >= 2
    return False


def cert_info(der: bytes, host: str, chain_error: str | None) -> CertInfo:
    # cryptography is loaded with the first certificate, not with the probe catalog
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if not names:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = tuple(str(cn.value) for cn in cns)
    now = dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=names,
        not_after=not_after.isoformat(),
        days_left=(not_after - now).days,
        expired=not_after < now or cert.not_valid_before_utc > now,
        chain_ok=chain_error is None,
        chain_error=chain_error,
        name_ok=any(name_matches(n, host) for n in names),
    )


def presented_chain(tls: ssl.SSLObject) -> tuple[bytes, ...]:
    """The certificate chain as the server sent it, DER, leaf first. Python 3.13 has
    ``get_unverified_chain()``; 3.10 to 3.12 have it on the private object under the
    public one. Empty when neither is there (the caller keeps the leaf)."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        return ()
    try:
        certs = getter() or []
        return tuple(c if isinstance(c, bytes) else c.public_bytes(_ENCODING_DER)
                     for c in certs)
    except (ssl.SSLError, ValueError, AttributeError, TypeError):
        return ()


@cache
def _contexts(ca_file: Path | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(validating, opportunistic) client contexts. The name is checked separately, so
    a wrong name is reported as such rather than failing the handshake."""
    validating = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    validating.check_hostname = False
    validating.verify_mode = ssl.CERT_REQUIRED
    opportunistic = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    opportunistic.check_hostname = False
    opportunistic.verify_mode = ssl.CERT_NONE
    return validating, opportunistic


# --- the client ---------------------------------------------------------------------

@dataclass
class SmtpClient:
    redirects: Redirects = field(default_factory=Redirects)
    timeouts: SmtpTimeouts = field(default_factory=SmtpTimeouts)
    ca_file: Path | None = None  # trust these CAs instead of the system's
    helo: str | None = None  # EHLO name; default: this machine's FQDN or address literal
    mail_from: str = ""  # the probes' sender; "" is the null sender
    references: tuple[str, ...] = ()  # HOST[:PORT] that show outbound SMTP works from here
    port: int = SMTP_PORT

    async def dialogue(self, host: str, address: str, recipient: str, mail_from: str | None,
                       deadline: float) -> Dialogue:
        """One full probe dialogue with ``host`` at ``address``. Never raises for what
        the peer does; ``mail_from`` None means the client's own sender. Refuses (ValueError)
        an address or name that could inject a command."""
        mail_from = self.mail_from if mail_from is None else mail_from
        for value in (recipient, mail_from, self.helo or ""):
            if not value.isascii() or any(c in value for c in "\r\n\0<> "):
                raise ValueError(f"refusing to send {value!r} in an SMTP command")
        target = self.redirects.resolve(host, address, self.port)
        d = Dialogue(host, address, self.port, target)
        started = time.monotonic()
        mode, chain_error, note = _Mode.VALIDATE, None, None
        while True:
            s = _Session(d, self.timeouts, deadline, started)
            if note:
                s.note("-", note)
            retry = await self._run(s, target, recipient, mail_from, mode, chain_error)
            if retry is None:
                break
            # As a sending MTA would: a certificate that does not validate is used anyway
            # (opportunistic TLS), a failed handshake is followed by a plain connection.
            mode, reason = retry
            if mode is _Mode.OPPORTUNISTIC:
                chain_error = reason
                note = f"certificate not valid ({reason}); reconnecting without validating it"
            else:
                note = f"TLS failed ({reason}); reconnecting without STARTTLS"
        d.elapsed_ms = (time.monotonic() - started) * 1000
        return d

    async def reachable(self, host: str, address: str, deadline: float,
                        port: int | None = None) -> Dialogue:
        """Only the TCP connection (the observer's port 25 check)."""
        port = port or self.port
        target = self.redirects.resolve(host, address, port)
        d = Dialogue(host, address, port, target)
        session = _Session(d, self.timeouts, deadline)
        with contextlib.suppress(_Ended):
            await session.connect(target)
        await session.close()
        d.elapsed_ms = (time.monotonic() - session.started) * 1000
        return d

    async def _run(self, s: _Session, target: Endpoint, recipient: str, mail_from: str,
                   mode: _Mode, chain_error: str | None) -> tuple[_Mode, str] | None:
        """Run the dialogue on one connection; returns how to try again when TLS failed
        in a way a sending MTA works around (see :meth:`dialogue`)."""
        d = s.d
        try:
            await s.connect(target)
            d.phase = "banner"
            d.banner = await s.read_reply(self.timeouts.banner, silent=Outcome.BANNER_TIMEOUT)
            if not d.banner.positive:
                raise s.end(Outcome.REJECTED)
            d.ehlo = await self._greet(s)
            d.extensions = _parse_ehlo(d.ehlo)
            if "STARTTLS" not in d.extensions:
                d.tls = TlsInfo(offered=False)
            elif mode is not _Mode.PLAIN:
                retry = await self._tls(s, d, mode, chain_error)
                if retry is not None:
                    return retry
                if d.tls is not None and d.tls.established:
                    d.ehlo = await self._greet(s)
                    d.extensions = _parse_ehlo(d.ehlo)
            d.mail = await s.command(f"MAIL FROM:<{mail_from}>")
            if not d.mail.positive:
                raise s.end(Outcome.REJECTED)
            d.rcpt = await s.command(f"RCPT TO:<{recipient}>")
            with contextlib.suppress(_Ended):
                await s.command("RSET")
                await s.command("QUIT")
            raise _Ended
        except _Ended:
            if d.rcpt is not None:  # the answer we wanted came; what followed does not matter
                d.outcome, d.phase, d.error = Outcome.COMPLETED, "rcpt", None
            elif d.outcome is Outcome.REJECTED and s.writer is not None:
                with contextlib.suppress(Exception):
                    s.writer.write(b"QUIT\r\n")
                    s.note("C", "QUIT")
        finally:
            await s.close()
        return None

    async def _greet(self, s: _Session) -> Reply:
        name = self.helo or _local_name(s)
        reply = await s.command(f"EHLO {name}")
        if reply.permanent and reply.code in (500, 502):  # EHLO unknown: an old server
            reply = await s.command(f"HELO {name}")
        if not reply.positive:
            raise s.end(Outcome.REJECTED)
        return reply

    async def _tls(self, s: _Session, d: Dialogue, mode: _Mode,
                   chain_error: str | None) -> tuple[_Mode, str] | None:
        reply = await s.command("STARTTLS")
        d.tls = TlsInfo(offered=True)
        if reply.code != 220:  # offered, then refused: carry on in plain text
            d.tls.error = f"STARTTLS answered {reply}"
            return None
        validating, opportunistic = _contexts(self.ca_file)
        context = validating if mode is _Mode.VALIDATE else opportunistic
        try:
            await s.starttls(d.host, context)
        except ssl.SSLCertVerificationError as exc:
            return _Mode.OPPORTUNISTIC, exc.verify_message or str(exc)
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            d.tls.error = f"handshake failed: {_describe(exc)}"
            s.note("-", f"TLS {d.tls.error}")
            return _Mode.PLAIN, d.tls.error
        assert s.writer is not None
        tls = s.writer.get_extra_info("ssl_object")
        d.tls.established = True
        if tls is not None:
            d.tls.version = tls.version()
            cipher = tls.cipher()
            d.tls.cipher = cipher[0] if cipher else None
            der = tls.getpeercert(binary_form=True)
            if der:
                with contextlib.suppress(ValueError):
                    d.tls.cert = cert_info(der, d.host, chain_error)
                d.tls.chain = presented_chain(tls) or (der,)
        s.note("-", f"TLS established: {d.tls.version} {d.tls.cipher}"
                    + (f"; certificate not validated: {chain_error}" if chain_error else ""))
        if d.tls.cert is not None:
            cert = d.tls.cert
            s.note("-", f"certificate for {', '.join(cert.names) or cert.subject}, issued by "
                        f"{cert.issuer}, valid until {cert.not_after}")
        return None


def _local_name(s: _Session) -> str:
    """This machine's name when it is fully qualified, else an address literal (RFC 5321
    §4.1.4). Never looked up in DNS: the probes ask only the resolvers they were given."""
    name = _hostname()
    if "." in name and not name.endswith(".localdomain"):
        return name
    assert s.writer is not None
    local = s.writer.get_extra_info("sockname")
    address = str(local[0]) if local else "127.0.0.1"
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


@cache
def _hostname() -> str:
    return socket.gethostname()
