"""SIGTERM for the commands, so that every ``with``, ``async with`` and ``finally`` runs
(the lab removes its CA key and credentials) before the process exits with 143.

Outside an event loop the signal becomes an exception where the process is. Inside one, an
exception raised by a signal handler lands in whichever task happens to run — a lab
server answering a query, say — and a task keeps an exception to itself: the command would
run on. So while a command's event loop runs (:func:`run`), SIGTERM cancels the command's
own task instead, which unwinds it, and then ends it with :class:`Terminated`.
"""

from __future__ import annotations

import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Terminated(BaseException):
    """SIGTERM, raised where the process is."""


def terminate(signum: int, frame: object) -> None:
    raise Terminated


def run(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, with SIGTERM cancelling ``work`` and then raising
    :class:`Terminated` (where the loop cannot watch signals, as on Windows, the handler
    the command line installed stays)."""
    import asyncio

    async def main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        hit: list[bool] = []

        def cancel() -> None:
            if not hit and task is not None:  # once: a second SIGTERM must not cut the
                task.cancel()  # clean-up the first one started
            hit.append(True)

        previous = signal.getsignal(signal.SIGTERM)
        try:
            loop.add_signal_handler(signal.SIGTERM, cancel)
            watched = True
        except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
            watched = False
        try:
            result = await work
        except asyncio.CancelledError:
            if hit:
                raise Terminated from None
            raise
        finally:
            if watched:
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGTERM, previous)
        if hit:
            raise Terminated
        return result

    return asyncio.run(main())
