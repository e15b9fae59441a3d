"""What every lab listener over TCP shares: start on loopback, one task per connection,
a bounded life for each, and a stop that leaves no socket or task behind."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Self

#: What a misbehaving or departing peer raises: the end of its connection, nothing more.
PEER_GONE: tuple[type[BaseException], ...] = (
    TimeoutError, ConnectionError, OSError, ssl.SSLError,
    asyncio.IncompleteReadError, asyncio.LimitOverrunError,
)
#: ... and the lab stopping: the end of a connection task, not an error to report.
_CONNECTION_ENDS: tuple[type[BaseException], ...] = (*PEER_GONE, asyncio.CancelledError)


class StreamServer:
    """Subclasses implement :meth:`serve` for one connection."""

    #: Longest line or head a peer may send (asyncio's stream limit).
    limit = 64 * 1024
    #: How long one connection may last, whatever the peer does.
    idle_timeout = 30.0

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 listen_tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = port
        self.listen_tls = listen_tls  # TLS from the first byte (HTTPS); not STARTTLS
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port,
                                                  ssl=self.listen_tls, limit=self.limit)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await asyncio.wait_for(self.serve(reader, writer), self.idle_timeout)
        except _CONNECTION_ENDS:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
