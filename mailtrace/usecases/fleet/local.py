"""The fleet in this process: the list streamed in, ``concurrency`` domains verified at a
time, each result handed out as it finishes.

The list is read in a thread, a batch of lines at a time, so a slow stdin never holds up
the event loop while queries are in flight; at most ``concurrency`` domains and one
batch of lines are held. Cancelled (Ctrl-C, SIGTERM), it stops the domains in flight:
what finished has been handed out already. SIGTERM is taken by the event loop while the
run lasts (an exception raised by a signal handler would land in whichever task or
callback runs, and could be lost there): it stops the run the same way and ends in
:class:`Stopped`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from mailtrace.topology.model import Topology
from mailtrace.usecases.fleet.plan import Item
from mailtrace.usecases.fleet.results import Results
from mailtrace.usecases.fleet.verifying import FleetSettings, Vantage, Verifier, Work

#: Lines read from the list at a time, in a thread.
BATCH = 256


async def _batches(items: Iterator[Item]) -> AsyncIterator[list[Item]]:
    """The items, a batch at a time, read by a thread of their own (a daemon: a stdin
    that never ends does not keep an interrupted run from exiting); two batches at most
    wait to be taken."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[list[Item] | BaseException | None] = asyncio.Queue(maxsize=2)
    stop = threading.Event()

    def hand(value: list[Item] | BaseException | None) -> bool:
        """Put ``value`` on the queue, waiting for room while the run goes on."""
        future = asyncio.run_coroutine_threadsafe(queue.put(value), loop)
        while not stop.is_set():
            try:
                future.result(timeout=0.2)
                return True
            except concurrent.futures.TimeoutError:
                continue
        future.cancel()
        return False

    def read() -> None:
        last: BaseException | None = None
        try:
            while not stop.is_set() and (batch := list(itertools.islice(items, BATCH))):
                if not hand(batch):
                    return
        except BaseException as exc:  # handed to the loop, raised there
            last = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: the run was interrupted
            hand(last)

    threading.Thread(target=read, name="mailtrace-fleet-reader", daemon=True).start()
    try:
        while True:
            batch = await queue.get()
            if batch is None:
                return
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        stop.set()


class Stopped(BaseException):
    """SIGTERM came during the run: it stopped as Ctrl-C stops it (the domains in flight
    cancelled, what finished handed out already)."""


def _quiet_when_cancelled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Interrupted, hundreds of domains' gathers end cancelled with nobody left to read
    them: that is the interruption, already reported once, not one error per gather."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


async def run_local(items: Iterator[Item], topologies: Mapping[str, Topology],
                    settings: FleetSettings, vantages: Sequence[Vantage],
                    results: Results) -> None:
    verifier = Verifier(settings, vantages)
    running: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(settings.concurrency)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_when_cancelled)
    stopped: list[BaseException] = []

    def terminate() -> None:
        if not stopped and main is not None:
            stopped.append(Stopped())
            main.cancel()

    previous = signal.getsignal(signal.SIGTERM)
    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
        handled = True
    except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
        handled = False

    async def one(work: Work) -> None:
        try:
            results.domain(work, await verifier.verify(work, topologies[work.topology]))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # Raised in this task, not the run's: a SIGTERM turned into an exception
            # (cli.main) lands in whichever task runs. The run stops, as it would had
            # it landed there; a task keeps a BaseException to itself otherwise.
            if not stopped and main is not None:
                stopped.append(exc)
                main.cancel()
        finally:
            room.release()

    try:
        async for batch in _batches(items):
            for item in batch:
                if not isinstance(item, Work):
                    results.set_aside(item)
                    continue
                await room.acquire()
                task = asyncio.ensure_future(one(item))
                running.add(task)
                task.add_done_callback(running.discard)
        if running:
            await asyncio.gather(*running)
    except asyncio.CancelledError:
        if stopped:
            raise stopped[0] from None
        raise
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, previous)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
