"""A scriptable SMTP listener for the lab: real SMTP on loopback, STARTTLS on a lab
certificate, and the misbehaviours the probes must survive.

A :class:`SmtpScript` says how one host behaves: its banner (or none: a tarpit), whether
it offers STARTTLS and with which certificate, what it answers to ``MAIL FROM`` and to
each recipient, a delay before every reply, and raw bytes to send instead of a reply
(garbage, a reply split oddly, a line of a megabyte, a close mid-command). The server
records every command it received, so a test can prove ``DATA`` was never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

MAX_COMMAND = 4096
IDLE_TIMEOUT = 30.0

Raw = tuple[bytes, ...]  # chunks sent one by one, with a short pause between them
CLOSE = (b"",)  # as a raw reply: close the connection instead of answering


@dataclass(frozen=True)
class SmtpScript:
    listening: bool = True  # False: connections are refused (nothing on port 25)
    banner: str | None = "220 {host} ESMTP mailtrace lab"  # None: never greet (a tarpit)
    extensions: tuple[str, ...] = ("PIPELINING", "SIZE 52428800", "ENHANCEDSTATUSCODES",
                                   "8BITMIME")
    starttls: bool = True
    certificate: str = "valid"  # valid | expired | wrong-name | broken (no TLS after 220)
    mail_reply: str = "250 2.1.0 Sender OK"
    rcpt_reply: str = "250 2.1.5 Recipient OK"
    rcpt_replies: Mapping[str, str] = field(default_factory=dict)  # by lowercased address
    reply_delay: float = 0.0  # before every reply, the banner included
    raw: Mapping[str, Raw] = field(default_factory=dict)  # by verb ("BANNER", "EHLO", ...)


class SmtpServer:
    """One host's listener: ``async with SmtpServer("mx.example", script, tls=ctx)``."""

    def __init__(self, host_name: str, script: SmtpScript, *, tls: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.host_name = host_name
        self.script = script
        self.tls = tls
        self.host = host
        self.port = port
        self.commands: list[str] = []
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_COMMAND)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._sessions):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmtpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await asyncio.wait_for(self._dialogue(reader, writer), IDLE_TIMEOUT)
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError,
                asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _send(self, writer: asyncio.StreamWriter, verb: str, reply: str) -> bool:
        """Send the reply (or the raw script for this verb); False: the connection ends."""
        script = self.script
        if script.reply_delay:
            await asyncio.sleep(script.reply_delay)
        raw = script.raw.get(verb)
        if raw is not None:
            if raw == CLOSE:
                return False
            for i, chunk in enumerate(raw):
                if i:
                    await asyncio.sleep(0.02)
                writer.write(chunk)
                await writer.drain()
            return True
        writer.write(reply.replace("{host}", self.host_name).encode() + b"\r\n")
        await writer.drain()
        return True

    async def _dialogue(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script = self.script
        if script.banner is None:  # a tarpit: accept, then say nothing until the client gives up
            await reader.read()
            return
        if not await self._send(writer, "BANNER", script.banner):
            return
        secure = False
        while True:
            line = (await reader.readuntil(b"\n")).rstrip(b"\r\n").decode("ascii", "replace")
            self.commands.append(line)
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            reply = self._reply(verb, line, secure)
            if not await self._send(writer, verb, reply):
                return
            if verb == "QUIT":
                return
            if verb == "STARTTLS" and reply.startswith("220") and verb not in script.raw:
                if script.certificate == "broken" or self.tls is None:
                    writer.write(b"this is not a TLS handshake\r\n")
                    await writer.drain()
                    return
                await writer.start_tls(self.tls)
                secure = True

    def _reply(self, verb: str, line: str, secure: bool) -> str:
        script = self.script
        if verb in ("EHLO", "HELO"):
            if verb == "HELO":
                return "250 {host}"
            offered = [*script.extensions]
            if script.starttls and not secure:
                offered.append("STARTTLS")
            lines = ["{host} Hello", *offered]
            return "\r\n".join(
                f"250{'-' if i < len(lines) - 1 else ' '}{text}" for i, text in enumerate(lines)
            )
        if verb == "STARTTLS":
            return "220 2.0.0 Ready to start TLS" if script.starttls and not secure else \
                "503 5.5.1 TLS already active or not offered"
        if verb == "MAIL":
            return script.mail_reply
        if verb == "RCPT":
            address = line.partition("<")[2].partition(">")[0].lower()
            return script.rcpt_replies.get(address, script.rcpt_reply)
        if verb in ("RSET", "NOOP"):
            return "250 2.0.0 OK"
        if verb == "QUIT":
            return "221 2.0.0 Bye"
        if verb == "DATA":
            return "554 5.5.1 The lab never takes a message"
        return "500 5.5.2 Command not recognized"
