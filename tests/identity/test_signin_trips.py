"""What a sign-in costs the SQLite writer thread: each trip there and back is two thread
wake-ups (~0.1 ms of the event loop's CPU, bench/statements.py), so the writes whose results
nothing in the transaction reads — the login profile's update, the session and its refresh
token, the audit event in the outbox — ride along with the statement after them instead of
travelling alone. What is stored is the same."""

from __future__ import annotations

from contextvars import ContextVar

import pytest
from sqlalchemy import select

from globeguard.events.models import OutboxEvent
from globeguard.travel.models import LoginEvent, LoginProfile
from tests.helpers import bearer, signin, signup
from tests.writer_trips import writer_trips

# Set around the request under test: the app's background loops (delivery, jobs) write too.
_request: ContextVar[bool] = ContextVar("request", default=False)


async def test_a_sign_in_writes_in_four_trips_and_stores_everything(client, container, backend):
    if backend != "sqlite":
        pytest.skip("the writer thread is SQLite's")
    await signup(client, "trips")
    await signin(client, "trips")  # the first one creates the login profile
    await container.db.engine.dispose()
    with writer_trips(container.db, _request.get) as trips:
        token = _request.set(True)
        try:
            tokens = await signin(client, "trips")
        finally:
            _request.reset(token)
    # Reader threads' trips are counted too, untraced: only the writer's are kept.
    written = [trip for trip in trips if trip]
    # The statement that needed each trip is its last; what rode along came before it.
    assert [trip[-1] for trip in written] == [
        "SELECT login_profile.subject, login_profile.last_at,",
        "INSERT INTO login_event",
        "UPDATE user SET",
        "COMMIT",
    ], written
    assert "UPDATE login_profile SET" in written[2]
    assert "INSERT INTO event_outbox" in written[3], written
    assert "INSERT INTO refresh_token" in written[3], written

    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.status_code == 200  # the session rode along and is there
    async with container.db.read() as session:
        events = list(await session.scalars(select(LoginEvent).order_by(LoginEvent.id)))
        profile = await session.scalar(select(LoginProfile))
        audit = list(await session.scalars(select(OutboxEvent.type)))
    assert len(events) == 2
    assert profile is not None and profile.last_at == events[-1].occurred_at
    assert audit.count("user.signin.succeeded") == 2
