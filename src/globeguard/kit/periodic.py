"""Background tasks: housekeeping that runs for as long as the process serves (retention
purges), and stopping tasks cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)


async def woken_or_after(wake: asyncio.Event, seconds: float) -> None:
    """Until `wake` is set or `seconds` pass; the caller clears `wake`. Not `asyncio.wait_for`:
    on Python 3.11 it returns normally when a cancellation (a stop) arrives in the loop turn
    after the event completed it (CPython gh-86296), and a worker loop built on it then never
    stops: shutdown waits for it forever."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


async def every(interval: timedelta, task: Callable[[], Awaitable[int | None]], what: str) -> None:
    """Run `task` every `interval`, forever; it may return how many rows it handled. The
    first run waits one interval: start-up stays quick, and processes started together do
    not all run it at once. A failure (a database hiccup) is logged; the next round retries."""
    seconds = interval.total_seconds()
    while True:
        await asyncio.sleep(seconds)
        try:
            done = await task()
        except Exception:
            log.exception("%s failed", what)
            continue
        if done:
            log.info("%s: %d rows", what, done)


async def stop_all(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until each has finished (its cleanup included)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
