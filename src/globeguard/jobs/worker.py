"""The job loops of a process: the runner and the purge of old jobs and their files.
Started by `serve` when embedded, and by `globeguard worker`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from globeguard.db.session import Database
from globeguard.jobs.files import JobFiles
from globeguard.jobs.repository import JobRepository
from globeguard.kit.clock import Clock, utcnow
from globeguard.settings import JobsSettings

if TYPE_CHECKING:
    from globeguard.wiring import Container

log = logging.getLogger(__name__)
PURGE_INTERVAL_S = 3600.0
PURGE_BATCH = 100


async def purge(db: Database, files: JobFiles, settings: JobsSettings, clock: Clock) -> int:
    """Delete finished jobs older than the retention, with their files; returns how many."""
    purged = 0
    while True:
        async with db.transaction() as session:
            repo = JobRepository(session)
            old = await repo.finished_before(clock() - settings.retention, PURGE_BATCH)
            await repo.delete([job.id for job in old])
        for job in old:
            files.remove_all(job.id)
        purged += len(old)
        if len(old) < PURGE_BATCH:
            return purged


async def purge_loop(db: Database, files: JobFiles, settings: JobsSettings) -> None:
    while True:
        try:
            await purge(db, files, settings, utcnow)
        except Exception:  # next round retries
            log.exception("purging old jobs failed")
        await asyncio.sleep(PURGE_INTERVAL_S)


def start(container: Container) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(container.job_runner.run(), name="job-runner"),
        asyncio.create_task(
            purge_loop(container.db, container.jobs.files, container.settings.jobs),
            name="job-purge",
        ),
    ]
