"""The job runner: claims jobs under a lease, runs at most `concurrency` at once, renews
each lease while its job runs, and stops a job whose lease it loses (cancelled, or taken
over after this process stalled). Runs inside `globeguard serve` and `globeguard worker`.

A process that dies leaves its jobs `processing` with a lease that runs out within
`jobs.lease`; the next runner to look takes them over (resuming from their checkpoint), and
one that has used up `max_attempts` is failed with the reason instead of looping forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.jobs.models import Job
from globeguard.jobs.repository import JobRepository
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.periodic import woken_or_after
from globeguard.settings import JobsSettings

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """An expected failure; its message becomes the job's `error`."""


class JobLost(Exception):
    """The job was cancelled or taken over: stop, and commit nothing more."""


ProgressCallback = Callable[[int, int | None], None]


@dataclass
class JobContext:
    job_id: uuid.UUID
    kind: str
    params: dict[str, Any]
    checkpoint: dict[str, Any]
    attempts: int
    created_by: str
    owner: str
    db: Database
    clock: Clock
    on_progress: ProgressCallback | None = None
    total: int | None = field(default=None)

    async def save(
        self,
        session: AsyncSession,
        *,
        done: int,
        total: int | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        """Record progress in the caller's transaction; raises JobLost (rolling the caller's
        work back) when the job is no longer this runner's."""
        if total is not None:
            self.total = total
        held = await JobRepository(session).checkpoint(
            self.job_id, self.owner, self.clock(), done=done, total=total, checkpoint=checkpoint
        )
        if not held:
            raise JobLost(str(self.job_id))
        if checkpoint is not None:
            self.checkpoint = checkpoint
        if self.on_progress is not None:
            self.on_progress(done, self.total)

    async def progress(self, done: int, total: int | None = None) -> None:
        async with self.db.transaction() as session:
            await self.save(session, done=done, total=total)


Handler = Callable[[JobContext], Awaitable[dict[str, Any]]]


def _worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobRunner:
    def __init__(
        self,
        db: Database,
        settings: JobsSettings,
        handlers: Mapping[str, Handler],
        *,
        clock: Clock = utcnow,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.handlers = dict(handlers)
        self.clock = clock
        self.worker_id = worker_id or _worker_id()
        self._wake = asyncio.Event()
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}

    def wake(self) -> None:
        self._wake.set()

    def _until(self, now: datetime) -> datetime:
        return now + self.settings.lease

    async def run(self) -> None:
        """Claim and run jobs until cancelled; then hand running jobs back."""
        try:
            while True:
                try:
                    await self.tick()
                except Exception:  # a database hiccup must not end the loop
                    log.exception("job runner round failed")
                await self._idle()
                self._wake.clear()
        finally:
            await self.stop()

    async def _idle(self) -> None:
        await woken_or_after(self._wake, self.settings.poll_interval.total_seconds())

    async def tick(self) -> int:
        """Start as many claimable jobs as there are free slots."""
        started = 0
        while len(self._running) < self.settings.concurrency:
            job = await self._claim()
            if job is None:
                break
            task = asyncio.create_task(self._execute(job, None), name=f"job-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(partial(self._finished, job.id))
            started += 1
        return started

    def _finished(self, job_id: uuid.UUID, _: object = None) -> None:
        self._running.pop(job_id, None)
        self.wake()

    async def _claim(self, job_id: uuid.UUID | None = None) -> Job | None:
        """A stop arriving while the claim commits waits for it and hands a claimed job
        back. A stop can land after the commit (SQLAlchemy closes the session in a task of
        its own, then raises the cancellation), and the job would then stay held by a
        stopped process until its lease ran out (`jobs.lease`, 60 s by default)."""
        claim = asyncio.ensure_future(self._claim_now(job_id))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # a failed claim holds nothing
                job = await claim
                if job is not None:
                    await self._release(job.id)
            raise

    async def _claim_now(self, job_id: uuid.UUID | None) -> Job | None:
        now = self.clock()
        async with self.db.transaction() as session:
            return await JobRepository(session).claim(
                now, self.worker_id, self._until(now), self.settings.max_attempts, job_id
            )

    async def run_one(self, job_id: uuid.UUID, on_progress: ProgressCallback | None = None) -> bool:
        """Run one given job here and now (the CLI); False when it is not claimable."""
        job = await self._claim(job_id)
        if job is None:
            return False
        await self._execute(job, on_progress)
        return True

    async def _execute(self, job: Job, on_progress: ProgressCallback | None) -> None:
        context = JobContext(
            job_id=job.id,
            kind=job.kind,
            params=dict(job.params or {}),
            checkpoint=dict(job.checkpoint or {}),
            attempts=job.attempts,
            created_by=job.created_by,
            owner=self.worker_id,
            db=self.db,
            clock=self.clock,
            on_progress=on_progress,
            total=job.progress_total,
        )
        work = asyncio.create_task(self._handle(context))
        lost = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(job.id, work, lost))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            if lost.is_set() and work.done():
                return  # cancelled by an admin or taken over: nothing of ours to record
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            await self._release(job.id)
            raise
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _handle(self, context: JobContext) -> None:
        handler = self.handlers.get(context.kind)
        try:
            if handler is None:
                raise JobFailed(f"no handler for job kind '{context.kind}' in this process")
            result = await handler(context)
        except JobLost:
            return
        except JobFailed as exc:
            await self._finish(context.job_id, "failed", error=str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s (%s) crashed", context.job_id, context.kind)
            await self._finish(
                context.job_id, "failed", error=f"internal error ({type(exc).__name__})"
            )
            return
        await self._finish(context.job_id, "completed", result=result)

    async def _finish(
        self,
        job_id: uuid.UUID,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        async with self.db.transaction() as session:
            await JobRepository(session).finish(
                job_id, self.worker_id, self.clock(), status, result=result, error=error
            )

    async def _heartbeat(
        self, job_id: uuid.UUID, work: asyncio.Task[None], lost: asyncio.Event
    ) -> None:
        """Renew the lease every third of it; stop the work the moment it is not ours."""
        interval = self.settings.lease.total_seconds() / 3
        while not work.done():
            await asyncio.sleep(interval)
            try:
                now = self.clock()
                async with self.db.transaction() as session:
                    held = await JobRepository(session).renew(
                        job_id, self.worker_id, now, self._until(now)
                    )
            except Exception:  # keep working: the lease outlasts a few missed beats
                log.exception("renewing the lease of job %s failed", job_id)
                continue
            if not held:
                lost.set()
                work.cancel()
                return

    async def _release(self, job_id: uuid.UUID) -> None:
        with contextlib.suppress(Exception):  # shutting down; the lease expires anyway
            async with self.db.transaction() as session:
                await JobRepository(session).release(job_id, self.worker_id, self.clock())

    async def stop(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
