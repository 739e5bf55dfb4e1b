"""Shutdown with jobs about: the process always stops, and leaves no job it held behind as
`processing` (each has completed, or was handed back to resume elsewhere at once).

Python 3.11's `asyncio.wait_for` returns normally when a cancellation reaches it just after
the awaited thing finished (CPython gh-86296): a runner woken in that instant used to lose
its stop and loop forever, so `serve` never exited. The bounds below only turn such a hang
into a failure; no test asserts on how long stopping took."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from globeguard.app import create_app
from globeguard.identity.permissions import ALL_PERMISSIONS
from globeguard.jobs.repository import JobRepository
from globeguard.jobs.runner import JobContext, JobRunner
from globeguard.jobs.schemas import ExportRequest
from globeguard.wiring import build
from tests.conftest import make_settings, wipe
from tests.helpers import bearer, make_admin
from tests.jobs.support import wait_job

# An upper bound only: a stop that takes this long is a hang.
HANG_S = 30.0


async def test_the_app_stops_right_after_two_exports_are_requested(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path)  # jobs run inside the app, as in `serve`
    container = build(settings)
    app = create_app(settings, container)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            admin = bearer(await make_admin(http, container))
            ids = []
            for _ in range(2):
                response = await http.post(
                    "/api/v1/jobs/users-exports", headers=admin, json={"fields": ["user_id"]}
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
    except BaseException:
        await lifespan.__aexit__(None, None, None)
        raise
    stopping = asyncio.ensure_future(lifespan.__aexit__(None, None, None))
    try:
        await asyncio.wait({stopping}, timeout=HANG_S)
        assert stopping.done(), "the app did not stop: shutdown hangs"
        stopping.result()
        fresh = create_app(settings, container)
        async with fresh.router.lifespan_context(fresh):
            # Completed before the stop, or handed back and finished after the restart.
            try:
                for job_id in ids:
                    assert (await wait_job(container, job_id)).status == "completed"
            finally:
                await wipe(container)
    finally:
        stopping.cancel()


class Ticks(JobRunner):
    """A runner that tells when it has finished a round (and is about to idle)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rounds = asyncio.Event()

    async def tick(self) -> int:
        started = await super().tick()
        self.rounds.set()
        return started


@pytest.fixture
def settings(database_url, tmp_path):
    # No runner inside the app; an hour between polls: only a wake or the stop ends the
    # idle wait of the runner under test.
    return make_settings(database_url, tmp_path, jobs={"embedded": False, "poll_interval": "PT1H"})


@pytest.mark.parametrize("turns", range(6))
async def test_the_runner_stops_however_its_stop_and_a_wake_interleave(app, container, turns):
    """The stop arrives `turns` loop turns after a wake (a job submitted or finished), which
    covers the instant the wake has completed but the runner has not resumed yet."""
    runner = Ticks(container.db, container.settings.jobs, {})
    loop = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.rounds.wait(), HANG_S)
    runner.wake()
    for _ in range(turns):
        await asyncio.sleep(0)
    loop.cancel()
    await asyncio.wait({loop}, timeout=HANG_S)
    try:
        assert loop.done(), "the runner ignored its stop"
        assert loop.cancelled()
    finally:
        loop.cancel()


class Holds:
    """A job handler that runs until cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def __call__(self, ctx: JobContext) -> dict:
        self.started.set()
        await asyncio.Event().wait()
        return {}


async def test_a_stop_at_any_moment_before_a_job_runs_leaves_it_free(app, container):
    """The runner is stopped 0, 1, 2, … loop turns after it starts, up to a stop after its
    job has started: whatever the moment (the claim's commit included), the job ends up
    pending and unowned, never held by the stopped process until its lease runs out."""
    turns = 0
    while True:
        hold = Holds()
        async with container.db.transaction() as session:
            job = await container.jobs.submit_export(
                session, ExportRequest(), "test", scopes=ALL_PERMISSIONS
            )
        runner = JobRunner(container.db, container.settings.jobs, {"users.export": hold})
        loop = asyncio.create_task(runner.run())
        for _ in range(turns):
            await asyncio.sleep(0)
        loop.cancel()
        await asyncio.wait({loop}, timeout=HANG_S)
        assert loop.done(), "the runner ignored its stop"
        async with container.db.transaction() as session:
            repo = JobRepository(session)
            back = await repo.get(job.id)
            await repo.delete([job.id])
        assert (back.status, back.lease_owner) == ("pending", None), f"stopped after {turns}"
        if hold.started.is_set():
            return
        turns += 1
