from __future__ import annotations

import asyncio
import logging

import uvloop

from globeguard.boot import prepare
from globeguard.cli.common import load_settings
from globeguard.events.delivery.worker import run_until_stopped
from globeguard.jobs import worker as jobs_worker
from globeguard.kit.periodic import stop_all
from globeguard.wiring import build


def worker() -> None:
    """Deliver events (webhooks, NATS) without serving HTTP. Run any number against one
    PostgreSQL database; set GLOBEGUARD_DELIVERY__EMBEDDED=false on the API servers."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper())
    if settings.db.is_sqlite:
        logging.getLogger(__name__).warning(
            "SQLite has one writer: run the worker only when `serve` does not deliver "
            "(GLOBEGUARD_DELIVERY__EMBEDDED=false), or use PostgreSQL"
        )

    async def main() -> None:
        container = build(settings)
        try:
            await prepare(container)
            # Bulk jobs too (set GLOBEGUARD_JOBS__EMBEDDED=false on the API servers), and mail.
            job_tasks = jobs_worker.start(container)
            job_tasks.append(asyncio.create_task(container.mail_sender.run(), name="mail-sender"))
            try:
                await run_until_stopped(container)
            finally:
                await stop_all(job_tasks)
                await container.mail_sender.close()
        finally:
            await container.db.dispose()

    # uvloop, as `serve` runs on (uvicorn picks it): a webhook sent from asyncio's own loop
    # cost ~87 µs of CPU, from uvloop ~45 (bench/events.py's send-only side).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
