"""The admin API of the pipeline and the pull stream, through HTTP, on both databases."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from globeguard.events.catalog import EventType
from globeguard.events.models import SubscriptionSecret
from globeguard.events.sinks.guard import TargetGuard, UnsafeTarget
from globeguard.webhooks.verify import verify
from tests.events.support import FakeClock, Receiver, dispatcher, emit
from tests.helpers import bearer, make_admin, signup

HOOK = {"name": "crm", "target": "http://127.0.0.1:9/hook"}


@pytest.fixture
async def admin(client, container):
    headers = bearer(await make_admin(client, container))
    # Fan out the admin's own sign-up events now, before any test subscription exists.
    await dispatcher(container, Receiver(), FakeClock()).drain()
    return headers


async def test_crud_and_the_secret_is_shown_once_and_sealed_at_rest(client, container, admin):
    created = await client.post(
        "/api/v1/subscriptions",
        json={**HOOK, "event_types": ["user.*"], "ordered": True, "ed25519": True},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret, public = body["signing_secret"], body["public_key"]
    assert secret.startswith("whsec_") and public.startswith("whpk_")
    assert body["max_in_flight"] == container.settings.delivery.default_max_in_flight
    sub_id = body["id"]

    shown = (await client.get(f"/api/v1/subscriptions/{sub_id}", headers=admin)).json()
    assert secret not in str(shown) and "signing_secret" not in shown
    assert [s["scheme"] for s in shown["secrets"]] == ["v1", "v1a"]
    assert shown["secrets"][1]["public_key"] == public
    async with container.db.read() as session:
        sealed = list(await session.scalars(select(SubscriptionSecret.sealed)))
    assert all(secret.removeprefix("whsec_") not in s for s in sealed)

    patched = await client.patch(
        f"/api/v1/subscriptions/{sub_id}",
        json={"enabled": False, "event_types": ["user.**"], "rate_limit_per_s": 5},
        headers=admin,
    )
    assert patched.status_code == 200
    assert (patched.json()["enabled"], patched.json()["disabled_reason"]) == (False, "paused")
    assert patched.json()["event_types"] == ["user.**"]
    listed = (await client.get("/api/v1/subscriptions", headers=admin)).json()["items"]
    assert [s["id"] for s in listed] == [sub_id]
    assert (
        await client.delete(f"/api/v1/subscriptions/{sub_id}", headers=admin)
    ).status_code == 204
    gone = await client.get(f"/api/v1/subscriptions/{sub_id}", headers=admin)
    assert (gone.status_code, gone.json()["code"]) == (404, "subscription_not_found")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**HOOK, "event_types": ["user.**.x"]}, "validation_failed"),
        ({**HOOK, "kind": "carrier-pigeon"}, "validation_failed"),
        ({**HOOK, "target": "ftp://example.com/x"}, "unsafe_target"),
        ({**HOOK, "target": "http://user:pw@example.com/x"}, "unsafe_target"),
        ({**HOOK, "max_in_flight": 0}, "validation_failed"),
        ({**HOOK, "kind": "nats", "target": "idp.>"}, "invalid_subject"),
        ({"name": "x"}, "validation_failed"),
    ],
)
async def test_bad_subscriptions_are_4xx_problems(client, admin, body, code):
    response = await client.post("/api/v1/subscriptions", json=body, headers=admin)
    assert (response.status_code, response.json()["code"]) == (422, code)


async def test_private_targets_are_refused_unless_allowed(client, container, admin):
    container.subscriptions.guard.allow_private = False
    response = await client.post("/api/v1/subscriptions", json=HOOK, headers=admin)
    assert (response.status_code, response.json()["code"]) == (422, "unsafe_target")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
    ],
)
async def test_the_guard_refuses_private_and_reserved_addresses(url):
    with pytest.raises(UnsafeTarget):
        await TargetGuard(allow_private=False).check(url)
    await TargetGuard(allow_private=True).check(url)


async def test_subscriptions_need_events_manage(client, admin):
    tokens = await signup(client, "plainuser")
    response = await client.get("/api/v1/subscriptions", headers=bearer(tokens))
    assert response.status_code == 403


async def test_rotation_signs_with_old_and_new_secrets(client, container, admin):
    created = (await client.post("/api/v1/subscriptions", json=HOOK, headers=admin)).json()
    rotated = await client.post(
        f"/api/v1/subscriptions/{created['id']}/secrets",
        json={"overlap_seconds": 3600},
        headers=admin,
    )
    assert rotated.status_code == 201
    new = rotated.json()["secret"]
    receiver = Receiver()
    clock = FakeClock()
    await emit(container, uuid.uuid4())
    await dispatcher(container, receiver, clock).drain()
    (got,) = receiver.requests
    assert len(got.headers["webhook-signature"].split()) == 2
    for secret in (created["signing_secret"], new):
        verify(got.body, got.headers, [secret], now=clock.now.timestamp())


async def test_deliveries_attempts_and_redrive_endpoints(client, container, admin):
    import httpx

    created = (await client.post("/api/v1/subscriptions", json=HOOK, headers=admin)).json()
    receiver = Receiver(lambda r: httpx.Response(410, text="unsubscribed"))
    await emit(container, uuid.uuid4())
    await dispatcher(container, receiver, FakeClock()).drain()
    page = await client.get(
        f"/api/v1/subscriptions/{created['id']}/deliveries",
        params={"status": "dead"},
        headers=admin,
    )
    (item,) = page.json()["items"]
    assert item["dead_reason"] == "gone_410"
    detail = (await client.get(f"/api/v1/deliveries/{item['id']}", headers=admin)).json()
    (attempt,) = detail["attempts_log"]
    assert (attempt["status_code"], attempt["outcome"], attempt["response"]) == (
        410,
        "gone",
        "unsubscribed",
    )
    redriven = await client.post(
        "/api/v1/deliveries/redrive", json={"delivery_ids": [item["id"]]}, headers=admin
    )
    assert redriven.json()["redriven"] == 1
    again = await client.post(
        "/api/v1/deliveries/redrive", json={"delivery_ids": [item["id"]]}, headers=admin
    )
    assert again.json()["redriven"] == 0  # pending now, not dead
    window = await client.post(
        f"/api/v1/subscriptions/{created['id']}/redrive",
        json={"since": "2026-01-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"},
        headers=admin,
    )
    assert (window.status_code, window.json()["code"]) == (422, "invalid_window")
    unknown = await client.post(
        f"/api/v1/subscriptions/{uuid.uuid4()}/redrive", json={}, headers=admin
    )
    assert unknown.status_code == 404
    missing = await client.get("/api/v1/deliveries/999999", headers=admin)
    assert missing.status_code == 404


async def test_redrive_releases_oldest_first_at_the_capped_rate(container, app):
    from tests.events.support import subscribe

    sub, _ = await subscribe(container, "hook")
    receiver = Receiver(lambda r: __import__("httpx").Response(410))
    clock = FakeClock()
    for _ in range(5):
        await emit(container, uuid.uuid4())
    await dispatcher(container, receiver, clock).drain()
    async with container.db.transaction() as session:
        from globeguard.events.subscriptions.schemas import SubscriptionUpdate

        await container.subscriptions.update(session, sub, SubscriptionUpdate(enabled=True))
    container.deliveries.clock = clock
    async with container.db.transaction() as session:
        done = await container.deliveries.redrive(session, subscription_id=sub)
    assert done.count == 5
    rate = container.settings.delivery.redrive_rate_per_s
    assert (done.last_at - done.first_at).total_seconds() == pytest.approx(4 / rate)
    receiver.answer = lambda r: __import__("httpx").Response(200)
    pump = dispatcher(container, receiver, clock)
    await pump.drain()
    assert len(receiver.requests) == 6  # one released now, the rest at their times
    clock.advance(__import__("datetime").timedelta(seconds=1))
    await pump.drain()
    redelivered = receiver.ids()[5:]
    assert redelivered == receiver.ids()[:5]  # in the original order


async def test_the_pull_stream_pages_filters_and_guards_personal_data(client, container, admin):
    user = uuid.uuid4()
    await emit(container, user, EventType.USER_CREATED, username="paul")
    await emit(container, user, EventType.SIGNIN_FAILED, ip="203.0.113.5")
    await emit(container, user, EventType.USER_DELETED)
    first = await client.get("/api/v1/events", params={"limit": 2}, headers=admin)
    assert first.status_code == 200
    page = first.json()
    ours = [i for i in page["items"] if i["subject"] == f"user/{user}"]
    assert page["next_after"] is not None
    rest = (
        await client.get("/api/v1/events", params={"after": page["next_after"]}, headers=admin)
    ).json()
    everything = page["items"] + rest["items"]
    ours = [i for i in everything if i["subject"] == f"user/{user}"]
    assert [i["type"] for i in ours] == ["user.created", "user.signin.failed", "user.deleted"]
    assert ours[0]["data"]["username"] == "paul"  # admins may read users
    filtered = await client.get("/api/v1/events", params={"type": "user.signin.*"}, headers=admin)
    assert {i["type"] for i in filtered.json()["items"] if i["subject"] == f"user/{user}"} == {
        "user.signin.failed"
    }
    assert {i["type"].rsplit(".", 1)[0] for i in filtered.json()["items"]} == {"user.signin"}
    bad = await client.get("/api/v1/events", params={"type": "a..b"}, headers=admin)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_pattern")

    # An API key with only events:read sees the stream without personal data.
    key = await client.post(
        "/api/v1/api-keys", json={"name": "stream", "scopes": ["events:read"]}, headers=admin
    )
    assert key.status_code == 201, key.text
    reader = {"X-API-KEY": key.json()["api_key"]}
    items = (await client.get("/api/v1/events", headers=reader)).json()["items"]
    mine = [i for i in items if i["subject"] == f"user/{user}"]
    assert "username" not in mine[0]["data"] and "ip" not in mine[1]["data"]
    tokens = await signup(client, "nosy")
    assert (await client.get("/api/v1/events", headers=bearer(tokens))).status_code == 403


async def test_the_stream_holds_back_events_younger_than_the_settle_window(app, container):
    """PostgreSQL makes a seq visible at commit, not at insert: a reader paging by `after`
    must not step past an event still committing, so the newest second is held back."""
    from datetime import timedelta

    from globeguard.events.service import EventStreamService

    await emit(container, uuid.uuid4())
    clock = FakeClock()
    stream = EventStreamService(timedelta(seconds=1), "postgresql", clock)
    clock.now = clock.now - timedelta(seconds=5)
    async with container.db.read() as session:
        held, _ = await stream.page(session, after=0, limit=10, patterns=[], include_pii=False)
        clock.now = clock.now + timedelta(seconds=10)
        shown, _ = await stream.page(session, after=0, limit=10, patterns=[], include_pii=False)
        sqlite_like = EventStreamService(timedelta(seconds=1), "sqlite", clock)
        assert sqlite_like.settle is None  # one writer: seq order is commit order
    assert held == [] and len(shown) == 1


async def test_personal_data_in_a_subscription_needs_users_read(client, admin):
    created = await client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "ops", "scopes": ["events:manage"]}
    )
    key = {"X-API-KEY": created.json()["api_key"]}
    refused = await client.post(
        "/api/v1/subscriptions", json={**HOOK, "include_pii": True}, headers=key
    )
    assert refused.status_code == 403, refused.text
    assert "users:read" in refused.json()["detail"]
    plain = await client.post("/api/v1/subscriptions", json=HOOK, headers=key)
    assert plain.status_code == 201, plain.text
    widened = await client.patch(
        f"/api/v1/subscriptions/{plain.json()['id']}", json={"include_pii": True}, headers=key
    )
    assert widened.status_code == 403
    shown = await client.get(f"/api/v1/subscriptions/{plain.json()['id']}", headers=key)
    assert shown.json()["include_pii"] is False


@pytest.mark.parametrize("delivery_id", ["495258693217491053377239778127249408", "0", "-1"])
async def test_a_delivery_id_outside_the_table_s_range_is_a_422(client, admin, delivery_id):
    response = await client.get(f"/api/v1/deliveries/{delivery_id}", headers=admin)
    assert response.status_code == 422, response.text
