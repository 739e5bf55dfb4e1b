"""The delivery loops of a process: the dispatcher and the outbox purge. Started by `serve`
when embedded, and alone by `globeguard worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from sqlalchemy.engine import make_url

from globeguard.events.outbox import OutboxListener
from globeguard.events.retention import retention_loop
from globeguard.kit.periodic import stop_all
from globeguard.wiring import Container

log = logging.getLogger(__name__)


def start(app: Container) -> list[asyncio.Task[None]]:
    tasks = [
        asyncio.create_task(app.dispatcher.run(), name="dispatcher"),
        asyncio.create_task(retention_loop(app.db, app.settings.delivery), name="outbox-retention"),
    ]
    if app.db.dialect == "postgresql":
        # Events committed by other processes (API servers) wake this dispatcher at once.
        dsn = make_url(app.settings.db.url).set(drivername="postgresql")
        listener = OutboxListener(dsn.render_as_string(hide_password=False), app.dispatcher.wake)
        tasks.append(asyncio.create_task(listener.run(), name="outbox-listener"))
    return tasks


async def close_sinks(app: Container) -> None:
    for sink in app.sinks.values():
        with contextlib.suppress(Exception):  # shutting down: a sink that fails to close is moot
            await sink.close()


async def run_until_stopped(app: Container) -> None:
    """`globeguard worker`: deliver until SIGTERM or SIGINT, then stop. Sends in flight are
    abandoned; their leases expire and another worker (or this one, restarted) sends them."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = start(app)
    log.info(
        "delivery worker %s started on %s's event loop",
        app.dispatcher.worker_id,
        type(loop).__module__.split(".")[0],
    )
    try:
        await stop.wait()
    finally:
        await stop_all(tasks)
        await close_sinks(app)
