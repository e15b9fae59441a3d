"""A connected UDP socket read straight from the event loop's selector.

One query's exchange (RFC 1035 §4.2.1: UDP, resent while the deadline allows) needs a
socket, a send, and a wait for the next datagram with a timeout. Doing that through an
asyncio datagram transport and its protocol's queue costs several tasks, futures and
timers per query; a fleet sends tens of thousands of queries, so here the socket is
registered once with the loop's selector and each wait is one future and one timer.

Errors keep their meaning: an ICMP port-unreachable is reported by the kernel on the
connected socket's next read, and is raised (ConnectionRefusedError) by the wait, as
the transport's ``error_received`` did. A loop without ``add_reader`` (the proactor
loop on Windows) has no such socket: :func:`open_udp` returns None and the caller
uses an asyncio transport.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Any

#: The largest datagram read (a UDP payload cannot be larger).
MAX_DATAGRAM = 65535


class UdpSocket:
    """A non-blocking UDP socket connected to one server, read by the loop's selector."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._ready: deque[bytes | OSError] = deque()
        self._waiter: asyncio.Future[None] | None = None
        loop.add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        try:
            data: bytes | OSError = self._sock.recv(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # an ICMP error reported on the connected socket
            data = exc
        self._ready.append(data)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send(self, data: bytes) -> None:
        try:
            self._sock.send(data)
        except (BlockingIOError, InterruptedError):  # the send buffer is full: wait
            await self._loop.sock_sendall(self._sock, data)

    async def receive(self, timeout: float) -> bytes | None:
        """The next datagram, or None when ``timeout`` seconds pass without one."""
        if not self._ready:
            waiter = self._waiter = self._loop.create_future()
            timer = self._loop.call_later(max(timeout, 0.0), _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if not self._ready:
                return None
        data = self._ready.popleft()
        if isinstance(data, OSError):
            raise data
        return data

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._fd)
            self._sock.close()

    def __enter__(self) -> UdpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def open_udp(family: int, destination: Any) -> UdpSocket | None:
    """A UDP socket connected to ``destination`` (a low-level address tuple), or None
    when the running loop cannot watch a socket itself. Connecting can raise OSError
    (no route): the exchange's error, as for the transport."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(destination)
        return UdpSocket(loop, sock)
    except NotImplementedError:
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
