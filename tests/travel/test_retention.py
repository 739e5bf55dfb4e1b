"""Retention of login events: old ones are deleted in small transactions, newer ones stay, and
the background loop keeps going through errors. On both databases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from globeguard.settings import TravelSettings
from globeguard.travel import retention
from globeguard.travel.models import LoginEvent
from globeguard.travel.repository import LoginEventRepository
from globeguard.travel.retention import purge_once, retention_loop
from globeguard.travel.service import LoginReport

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _event(occurred_at: datetime, subject: str = "someone") -> LoginEvent:
    return LoginEvent(
        event_uuid=uuid.uuid4().hex,
        subject=subject,
        source="test",
        occurred_at=occurred_at,
        success=True,
        located=False,
        geo_reason="no_ip",
    )


async def _store(container, times: list[datetime]) -> None:
    async with container.db.transaction() as session:
        session.add_all([_event(t, subject=f"s{i % 3}") for i, t in enumerate(times)])


async def _remaining(container) -> list[datetime]:
    async with container.db.read() as session:
        rows = await session.scalars(select(LoginEvent.occurred_at).order_by(LoginEvent.id))
        return list(rows)


def _spy_on_batches(monkeypatch, container) -> list[tuple[int, int]]:
    """(committed events when the batch began, rows it deleted) for every purge_batch call."""
    calls: list[tuple[int, int]] = []
    real = LoginEventRepository.purge_batch

    async def spy(self, cutoff, batch):
        committed = len(await _remaining(container))  # another connection: committed rows only
        deleted = await real(self, cutoff, batch)
        calls.append((committed, deleted))
        return deleted

    monkeypatch.setattr(LoginEventRepository, "purge_batch", spy)
    return calls


async def test_old_events_go_and_newer_ones_stay(app, container):
    settings = TravelSettings(retention=timedelta(days=90))
    cutoff = NOW - timedelta(days=90)
    old = [cutoff - timedelta(days=d) for d in (1, 30, 400)] + [cutoff - timedelta(seconds=1)]
    kept = [cutoff, cutoff + timedelta(seconds=1), NOW - timedelta(days=1), NOW]
    await _store(container, old + kept)
    assert await purge_once(container.db, settings, now=NOW) == 4
    assert await _remaining(container) == kept
    assert await purge_once(container.db, settings, now=NOW) == 0  # nothing left to do


async def test_each_batch_is_its_own_small_transaction(app, container, monkeypatch):
    calls = _spy_on_batches(monkeypatch, container)
    settings = TravelSettings(retention=timedelta(days=1), retention_batch=3)
    recent = NOW - timedelta(hours=1)
    await _store(container, [NOW - timedelta(days=2, minutes=i) for i in range(10)] + [recent])
    assert await purge_once(container.db, settings, now=NOW) == 10
    # Each batch committed before the next began: 11 rows, then 8, 5, 2.
    assert calls == [(11, 3), (8, 3), (5, 3), (2, 1)]
    assert await _remaining(container) == [recent]


async def test_an_exact_multiple_of_the_batch_ends_with_an_empty_batch(app, container, monkeypatch):
    calls = _spy_on_batches(monkeypatch, container)
    settings = TravelSettings(retention=timedelta(days=1), retention_batch=3)
    await _store(container, [NOW - timedelta(days=5, minutes=i) for i in range(6)])
    assert await purge_once(container.db, settings, now=NOW) == 6
    assert [deleted for _, deleted in calls] == [3, 3, 0]


async def test_events_of_users_are_purged_too(client, container):
    signup = await client.post(
        "/api/v1/auth/signup", json={"username": "olduser", "password": "a-long-passphrase-9"}
    )
    assert signup.status_code == 201
    signin = await client.post(
        "/api/v1/auth/signin", json={"username": "olduser", "password": "a-long-passphrase-9"}
    )
    assert signin.status_code == 200
    settings = TravelSettings(retention=timedelta(days=1))
    assert await purge_once(container.db, settings, now=datetime.now(UTC)) == 0
    assert await purge_once(container.db, settings, now=datetime.now(UTC) + timedelta(days=2)) == 1
    history = await client.get(
        f"/api/v1/users/{signup.json()['user_id']}/logins",
        headers={"Authorization": f"Bearer {signin.json()['access_token']}"},
    )
    assert history.json() == {"items": [], "next_before": None}


async def test_the_app_runs_the_retention_loop(app):
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "retention" in names


async def test_the_loop_purges_every_interval_and_survives_errors(monkeypatch, caplog):
    rounds: list[int] = []
    enough = asyncio.Event()

    async def flaky(db, settings, now=None):
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("database went away")
        if len(rounds) >= 3:
            enough.set()
        return 5

    monkeypatch.setattr(retention, "purge_once", flaky)
    settings = TravelSettings(retention_interval=timedelta(milliseconds=5))
    caplog.set_level(logging.INFO, logger="globeguard.kit.periodic")
    task = asyncio.create_task(retention_loop(object(), settings))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(enough.wait(), timeout=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(rounds) >= 3
    messages = [r.getMessage() for r in caplog.records]
    assert "purging login events older than 90 days, 0:00:00 failed" in messages
    assert "purging login events older than 90 days, 0:00:00: 5 rows" in messages


async def test_a_profile_goes_when_all_it_describes_is_purged(app, container):
    settings = TravelSettings(retention=timedelta(days=90))
    old, recent = NOW - timedelta(days=200), NOW - timedelta(days=2)
    for subject, at in (("gone", old), ("kept", old), ("kept", recent)):
        report = LoginReport(subject=subject, occurred_at=at, success=True, source="test")
        async with container.db.transaction() as session:
            await container.logins.record(session, report)
    async with container.db.read() as session:
        assert set(await LoginEventRepository(session).profiles_of(["gone", "kept"])) == {
            "gone",
            "kept",
        }
    await purge_once(container.db, settings, now=NOW)
    async with container.db.read() as session:
        profiles = await LoginEventRepository(session).profiles_of(["gone", "kept"])
    assert set(profiles) == {"kept"}
