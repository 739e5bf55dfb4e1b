"""The Auth0 connector against a fake Management API on loopback: token reuse, polling with
growing, jittered, capped waits (on a fake clock: nothing waits in real time), 429s, failed
jobs, expired links, and the imported users' last addresses on the map."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from globeguard.identity.models import User
from globeguard.jobs.auth0.client import TokenCache
from globeguard.jobs.auth0.connector import Auth0SyncHandler
from globeguard.jobs.imports import UserImporter
from globeguard.jobs.models import Auth0Tenant
from globeguard.jobs.records import user_id_of
from globeguard.jobs.runner import JobRunner
from globeguard.jobs.schemas import AUTH0_SYNC
from globeguard.travel.models import LoginEvent
from tests.conftest import make_settings
from tests.helpers import bearer, make_admin
from tests.jobs.fake_auth0 import CLIENT_ID, CLIENT_SECRET, Behaviour, FakeAuth0

RECENT = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(
        database_url,
        tmp_path,
        jobs={"embedded": False},
        # The fake tenant listens on loopback: a mock, as the setting describes.
        auth0={"allow_http": True, "allow_private_targets": True, "poll_deadline": "PT60S"},
    )


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def tenant_users() -> list[dict]:
    when = RECENT.isoformat().replace("+00:00", "Z")
    return [
        {   # Auth0's own last_ip and last_login: the trustworthy pair
            "user_id": "auth0|a1", "email": "a1@example.com", "last_ip": "81.2.69.142",
            "last_login": when, "logins_count": 7, "user_metadata": {"subscription_tier": "pro"},
            "app_metadata": {"plan": "premium"}, "created_at": "2023-01-02T03:04:05.000Z",
        },
        {   # AuthGlobeTrek's flat dotted key
            "user_id": "auth0|a2", "email": "a2@example.com", "last_login": when,
            "user_metadata.last_login_ip": "89.160.20.112",
            "user_metadata": {"last_login_ip": "89.160.20.112"},
        },
        {   # nested only
            "user_id": "google-oauth2|a3", "email": "a3@example.com", "last_login": when,
            "user_metadata": {"last_login_ip": "216.160.83.56"},
        },
        {"user_id": "auth0|a4", "email": "a4@example.com"},  # never signed in
    ]  # fmt: skip


def handler(container, time: FakeTime, rand=lambda: 0.75) -> Auth0SyncHandler:
    return Auth0SyncHandler(
        container.db,
        container.jobs,
        UserImporter(container.settings.limits.metadata_max_bytes),
        container.ingestor,
        container.jobs.files,
        container.settings.auth0,
        TokenCache(time.monotonic),
        sleep=time.sleep,
        rand=rand,
        monotonic=time.monotonic,
    )


async def submit(client, container, fake: FakeAuth0, **extra) -> str:
    admin = bearer(await make_admin(client, container))
    body = {"domain": fake.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **extra}
    response = await client.post("/api/v1/jobs/auth0-sync", json=body, headers=admin)
    assert response.status_code == 202, response.text
    assert CLIENT_SECRET not in response.text
    return response.json()["id"]


async def run(container, sync: Auth0SyncHandler, job_id: str):
    runner = JobRunner(container.db, container.settings.jobs, {AUTH0_SYNC: sync})
    assert await runner.run_one(uuid.UUID(job_id))
    async with container.db.read() as session:
        return await container.jobs.get(session, uuid.UUID(job_id))


async def test_pending_four_times_then_completed_with_growing_jittered_capped_waits(
    client, container
):
    time = FakeTime()
    with FakeAuth0(Behaviour(users=tenant_users(), pending_polls=4)) as fake:
        job_id = await submit(client, container, fake)
        job = await run(container, handler(container, time), job_id)
    assert job.status == "completed", job.error
    # Full jitter: rand() x min(cap, base x 2^n); with rand() = 0.75 the ceilings show through.
    assert time.sleeps == [0.375, 0.75, 1.5, 3.0]
    assert fake.seen.polls == 5
    # One token for the whole sync, not one per poll; the secret went only to /oauth/token.
    assert fake.seen.token_requests == 1
    assert fake.seen.authorizations == {"Bearer tok-1"}
    fields = [f["name"] for f in fake.seen.export_requests[0]["fields"]]
    for name in ("user_metadata", "app_metadata", "last_ip", "last_login", "logins_count",
                 "user_metadata.last_login_ip"):  # fmt: skip
        assert name in fields
    assert "limit" not in fake.seen.export_requests[0]
    assert job.result["inserted"] == 4 and job.result["failed"] == 0
    assert job.result["login_events"] == {"accepted": 3, "duplicates": 0}


async def test_waits_are_random_within_the_ceiling_and_stop_growing_at_the_cap(client, container):
    time = FakeTime()
    rng = random.Random(7)
    with FakeAuth0(Behaviour(users=tenant_users(), pending_polls=8)) as fake:
        job_id = await submit(client, container, fake)
        job = await run(container, handler(container, time, rng.random), job_id)
    assert job.status == "completed", job.error
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert len(time.sleeps) == len(ceilings)
    assert all(0 <= wait <= cap for wait, cap in zip(time.sleeps, ceilings, strict=True))
    assert len(set(time.sleeps)) == len(time.sleeps)  # jittered, not a fixed ladder
    assert time.sleeps != ceilings


async def test_a_429_waits_for_retry_after(client, container):
    time = FakeTime()
    behaviour = Behaviour(
        users=tenant_users(), pending_polls=2, throttled_polls={2}, retry_after="5"
    )
    with FakeAuth0(behaviour) as fake:
        job_id = await submit(client, container, fake)
        job = await run(container, handler(container, time), job_id)
    assert job.status == "completed", job.error
    assert time.sleeps == [0.375, 5.0, 0.75]
    assert fake.seen.token_requests == 1


async def test_a_failed_auth0_job_ends_the_sync_at_once_with_its_reason(client, container):
    time = FakeTime()
    behaviour = Behaviour(users=tenant_users(), pending_polls=1, fail_summary="connection gone")
    with FakeAuth0(behaviour) as fake:
        job_id = await submit(client, container, fake)
        job = await run(container, handler(container, time), job_id)
    assert job.status == "failed"
    assert job.error == "Auth0's export job job_fake0001 failed: connection gone"
    assert fake.seen.polls == 2 and fake.seen.downloads == 0


async def test_the_deadline_ends_a_job_that_never_finishes_without_oversleeping(client, container):
    time = FakeTime()
    with FakeAuth0(Behaviour(users=tenant_users(), pending_polls=10_000)) as fake:
        job_id = await submit(client, container, fake)
        job = await run(container, handler(container, time, lambda: 0.999), job_id)
    assert job.status == "failed"
    assert "did not finish within 60 s" in job.error
    assert sum(time.sleeps) <= 60


async def test_an_expired_download_link_is_fetched_again(client, container):
    time = FakeTime()
    with FakeAuth0(Behaviour(users=tenant_users(), expired_downloads=1)) as fake:
        job_id = await submit(client, container, fake)
        job = await run(container, handler(container, time), job_id)
    assert job.status == "completed", job.error
    assert fake.seen.downloads == 2 and fake.seen.polls == 2


async def test_wrong_credentials_fail_the_job_with_auth0s_reason(client, container):
    time = FakeTime()
    with FakeAuth0(Behaviour(users=tenant_users())) as fake:
        admin = bearer(await make_admin(client, container))
        body = {"domain": fake.url, "client_id": CLIENT_ID, "client_secret": "wrong"}
        response = await client.post("/api/v1/jobs/auth0-sync", json=body, headers=admin)
        job = await run(container, handler(container, time), response.json()["id"])
    assert job.status == "failed"
    assert job.error == "Auth0 refused the client credentials (HTTP 401: access_denied)"


async def test_imported_users_last_addresses_become_login_events_on_the_map(client, container):
    time = FakeTime()
    tokens_seen = []
    with FakeAuth0(Behaviour(users=tenant_users())) as fake:
        job_id = await submit(client, container, fake)
        sync = handler(container, time)
        await run(container, sync, job_id)
        # A second sync updates the same users, with the same token, and adds no logins.
        admin = bearer(await make_admin(client, container, "root2"))
        again = await client.post(
            "/api/v1/jobs/auth0-sync", json={"domain": fake.url}, headers=admin
        )
        assert again.status_code == 202, again.text
        second = await run(container, sync, again.json()["id"])
        tokens_seen.append(fake.seen.token_requests)
    assert second.result["updated"] == 4 and second.result["inserted"] == 0
    assert second.result["login_events"] == {"accepted": 0, "duplicates": 3}
    assert tokens_seen == [1]
    async with container.db.read() as session:
        events = (
            await session.scalars(select(LoginEvent).where(LoginEvent.source == "auth0"))
        ).all()
        a1 = await session.get(User, user_id_of("auth0|a1"))
        tenant = await session.scalar(select(Auth0Tenant))
    assert {e.ip for e in events} == {"81.2.69.142", "89.160.20.112", "216.160.83.56"}
    assert {e.subject for e in events} == {
        str(user_id_of(u)) for u in ("auth0|a1", "auth0|a2", "google-oauth2|a3")
    }
    assert a1.logins_count == 7 and a1.last_login_ip == "81.2.69.142"
    assert a1.user_metadata == {"subscription_tier": "pro"} and a1.app_metadata == {
        "plan": "premium"
    }
    assert a1.created_at == datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    # The secret is sealed at rest.
    assert CLIENT_SECRET not in tenant.client_secret_sealed
    admin = bearer(await make_admin(client, container, "root3"))
    heat = await client.get("/api/v1/analytics/heatmap", headers=admin)
    assert heat.status_code == 200, heat.text
    assert heat.json()["total_weight"] == 3
    pro = await client.get(
        "/api/v1/analytics/heatmap",
        params={"q": "user_metadata.subscription_tier:pro"},
        headers=admin,
    )
    assert pro.json()["total_weight"] == 1
