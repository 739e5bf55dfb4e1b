"""The runner: leases, take-over after a crash, resuming from the checkpoint, giving up
with a reason, cancelling a running job. Clocks are injected; nothing waits on real time
except the heartbeat test, which only bounds how long it may take."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import func, select

from globeguard.identity.models import User
from globeguard.identity.permissions import ALL_PERMISSIONS
from globeguard.jobs.handlers import ImportHandler
from globeguard.jobs.imports import BATCH_SIZE, UserImporter
from globeguard.jobs.models import Job
from globeguard.jobs.repository import JobRepository
from globeguard.jobs.runner import JobContext, JobRunner
from globeguard.jobs.schemas import IMPORT
from tests.conftest import make_settings

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, jobs={"embedded": False, "lease": "PT3S"})


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def submit_import(container, records: list[dict], tmp_path) -> uuid.UUID:
    path = tmp_path / f"in-{uuid.uuid4().hex}.ndjson"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    async with container.db.transaction() as session:
        job = await container.jobs.submit_import(
            session, path, upsert=False, actor="test", scopes=ALL_PERMISSIONS
        )
    return job.id


async def get(container, job_id) -> Job:
    async with container.db.read() as session:
        return await JobRepository(session).get(job_id)


async def users(container) -> int:
    async with container.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(User)))


def records(n: int, start: int = 0) -> list[dict]:
    return [{"user_id": f"auth0|r{i}", "email": f"r{i}@example.com"} for i in range(start, n)]


class CrashAfterFirstBatch:
    """An import handler whose process 'dies' once its first batch has committed."""

    def __init__(self, real: ImportHandler) -> None:
        self.real = real

    async def __call__(self, ctx: JobContext) -> dict:
        original = ctx.save

        async def save_then_die(session, **kw):
            await original(session, **kw)
            await session.commit()
            raise asyncio.CancelledError  # the process stops here, mid-job

        ctx.save = save_then_die  # type: ignore[method-assign]
        return await self.real(ctx)


async def test_a_job_whose_process_died_is_taken_over_and_resumes_at_its_checkpoint(
    app, container, tmp_path
):
    job_id = await submit_import(container, records(2500), tmp_path)
    real = ImportHandler(container.db, UserImporter(16384), container.jobs.files)
    clock = Clock(T0)
    dying = JobRunner(container.db, container.settings.jobs, {IMPORT: CrashAfterFirstBatch(real)},
                      clock=clock, worker_id="dying")  # fmt: skip
    task = asyncio.create_task(dying.run_one(job_id))
    with pytest.raises(asyncio.CancelledError):
        await task
    # A dead process releases nothing: put the job back as a real crash leaves it (our
    # simulated one was a clean cancellation, which hands the job back).
    async with container.db.transaction() as session:
        await session.execute(
            Job.__table__.update()
            .where(Job.id == job_id)
            .values(
                status="processing",
                attempts=1,
                lease_owner="dying",
                lease_expires_at=T0 + timedelta(seconds=3),
            )
        )
    stuck = await get(container, job_id)
    assert stuck.status == "processing" and stuck.progress_done == BATCH_SIZE
    assert await users(container) == BATCH_SIZE
    # Before the lease runs out nobody else may take it; after, another runner does.
    other = JobRunner(container.db, container.settings.jobs, {IMPORT: real}, clock=clock,
                      worker_id="other")  # fmt: skip
    assert not await other.run_one(job_id)
    clock.at = T0 + timedelta(seconds=4)
    assert await other.run_one(job_id)
    done = await get(container, job_id)
    assert done.status == "completed", done.error
    assert done.result["inserted"] == 2500 and done.result["failed"] == 0
    assert done.attempts == 2
    assert await users(container) == 2500


async def test_a_job_interrupted_on_its_last_attempt_fails_with_the_reason(
    app, container, tmp_path
):
    job_id = await submit_import(container, records(10), tmp_path)
    async with container.db.transaction() as session:
        await session.execute(
            Job.__table__.update()
            .where(Job.id == job_id)
            .values(
                status="processing",
                attempts=container.settings.jobs.max_attempts,
                lease_owner="gone",
                lease_expires_at=T0,
            )
        )
    runner = JobRunner(
        container.db, container.settings.jobs, {}, clock=Clock(T0 + timedelta(seconds=1))
    )
    assert await runner.tick() == 0
    job = await get(container, job_id)
    assert job.status == "failed"
    assert job.error == "interrupted 3 times (its process stopped mid-run)"


async def test_cancelling_a_running_import_stops_it_before_its_next_batch(app, container, tmp_path):
    job_id = await submit_import(container, records(3000), tmp_path)
    real = ImportHandler(container.db, UserImporter(16384), container.jobs.files)
    cancelled = asyncio.Event()

    async def cancel_after_first_batch(ctx: JobContext) -> dict:
        original = ctx.save

        async def save(session, **kw):
            await original(session, **kw)
            if not cancelled.is_set():
                await session.commit()
                async with container.db.transaction() as other:
                    await container.jobs.cancel(other, job_id)
                cancelled.set()

        ctx.save = save  # type: ignore[method-assign]
        return await real(ctx)

    runner = JobRunner(container.db, container.settings.jobs, {IMPORT: cancel_after_first_batch})
    await runner.run_one(job_id)
    job = await get(container, job_id)
    assert job.status == "cancelled"
    # The second batch saw the cancel and rolled back.
    assert await users(container) == BATCH_SIZE


async def test_the_heartbeat_stops_a_job_cancelled_while_it_waits(app, container):
    started = asyncio.Event()

    async def slow(ctx: JobContext) -> dict:
        started.set()
        await asyncio.sleep(3600)
        return {}

    async with container.db.transaction() as session:
        from globeguard.jobs.schemas import ExportRequest

        job = await container.jobs.submit_export(
            session, ExportRequest(), "test", scopes=ALL_PERMISSIONS
        )
    runner = JobRunner(container.db, container.settings.jobs, {"users.export": slow})
    running = asyncio.create_task(runner.run_one(job.id))
    await started.wait()
    async with container.db.transaction() as session:
        await container.jobs.cancel(session, job.id)
    await asyncio.wait_for(running, timeout=30)  # a bound, not a measurement
    assert (await get(container, job.id)).status == "cancelled"


async def test_a_clean_shutdown_hands_the_job_back_for_an_immediate_resume(app, container):
    started = asyncio.Event()

    async def slow(ctx: JobContext) -> dict:
        started.set()
        await asyncio.sleep(3600)
        return {}

    async with container.db.transaction() as session:
        from globeguard.jobs.schemas import ExportRequest

        job = await container.jobs.submit_export(
            session, ExportRequest(), "test", scopes=ALL_PERMISSIONS
        )
    runner = JobRunner(container.db, container.settings.jobs, {"users.export": slow})
    loop = asyncio.create_task(runner.run())
    await started.wait()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    back = await get(container, job.id)
    assert back.status == "pending" and back.attempts == 0 and back.lease_owner is None


async def test_no_more_than_the_configured_number_of_jobs_run_at_once(app, container):
    from globeguard.jobs.schemas import ExportRequest

    release, two_running = asyncio.Event(), asyncio.Event()
    running: list[uuid.UUID] = []

    async def held(ctx: JobContext) -> dict:
        running.append(ctx.job_id)
        if len(running) == 2:
            two_running.set()
        await release.wait()
        return {}

    async with container.db.transaction() as session:
        for _ in range(3):
            await container.jobs.submit_export(
                session, ExportRequest(), "test", scopes=ALL_PERMISSIONS
            )
    runner = JobRunner(container.db, container.settings.jobs, {"users.export": held})
    assert container.settings.jobs.concurrency == 2
    assert await runner.tick() == 2
    assert await runner.tick() == 0  # both slots are taken
    await asyncio.wait_for(two_running.wait(), timeout=30)  # a bound, not a measurement
    release.set()
    while len(running) < 3:
        await runner.tick()
        await asyncio.sleep(0.01)
    await runner.stop()
    assert len(set(running)) == 3
