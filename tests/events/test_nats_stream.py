"""A `nats` subscription brings its own JetStream stream: saving it finds or creates the
stream that stores `<prefix>.>`, and a server that cannot is a 422 that saves nothing. Against
a real server (GLOBEGUARD_TEST_NATS_URL; CI fails without it, elsewhere these tests skip)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from globeguard.events.sinks.nats import NatsSink
from globeguard.events.sinks.nats_streams import stream_name
from globeguard.events.sinks.port import Message
from tests.events.conftest import NATS_ENV
from tests.helpers import bearer, make_admin

NATS_URL = os.environ.get(NATS_ENV)
if not NATS_URL and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI=true but {NATS_ENV} is not set: the NATS tests cannot run")
needs_nats = pytest.mark.skipif(not NATS_URL, reason=f"{NATS_ENV} not set")
SUBSCRIPTIONS = "/api/v1/subscriptions"


def test_stream_names_are_valid_and_distinct():
    names = {stream_name(p) for p in ("a.b", "a_b", "a-b", "A.B")}
    assert len(names) == 4
    assert all("." not in n and " " not in n and n.startswith("GLOBEGUARD_") for n in names)


@pytest.fixture
async def js() -> AsyncIterator[Any]:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


@pytest.fixture
async def prefix(js) -> AsyncIterator[str]:
    """A fresh subject prefix; whatever stream ends up storing it is deleted afterwards."""
    from nats.js.errors import NotFoundError

    value = f"ggstream_{secrets.token_hex(4)}"
    yield value
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(await js.find_stream_name_by_subject(f"{value}.>"))


@pytest.fixture
async def admin(client, container) -> dict[str, str]:
    return bearer(await make_admin(client, container))


async def _stream_of(js, prefix: str) -> str | None:
    from nats.js.errors import NotFoundError

    try:
        return str(await js.find_stream_name_by_subject(f"{prefix}.>"))
    except NotFoundError:
        return None


async def _publish(prefix: str) -> Any:
    sink = NatsSink(NATS_URL or "", timeout_s=5)
    try:
        return await sink.send(Message(f"evt_{uuid.uuid4().hex}", "user.created", prefix, b"{}"))
    finally:
        await sink.close()


@needs_nats
async def test_creating_a_subscription_creates_its_stream(client, admin, js, prefix):
    assert await _stream_of(js, prefix) is None
    created = await client.post(
        SUBSCRIPTIONS, json={"name": "bus", "kind": "nats", "target": prefix}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert await _stream_of(js, prefix) == stream_name(prefix)
    sent = await _publish(prefix)
    assert sent.status == 200, sent.error


@needs_nats
async def test_an_existing_stream_is_used_not_duplicated(client, admin, js, prefix):
    await js.add_stream(name=f"MINE_{prefix.upper()}", subjects=[f"{prefix}.>"])
    created = await client.post(
        SUBSCRIPTIONS, json={"name": "bus", "kind": "nats", "target": prefix}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert await _stream_of(js, prefix) == f"MINE_{prefix.upper()}"


@needs_nats
async def test_resuming_makes_a_deleted_stream_again(client, admin, js, prefix):
    created = await client.post(
        SUBSCRIPTIONS, json={"name": "bus", "kind": "nats", "target": prefix}, headers=admin
    )
    assert created.status_code == 201, created.text
    await js.delete_stream(stream_name(prefix))
    failed = await _publish(prefix)
    assert failed.status is None and "resume the subscription" in (failed.error or "")

    url = f"{SUBSCRIPTIONS}/{created.json()['id']}"
    paused = await client.patch(url, json={"enabled": False}, headers=admin)
    assert paused.status_code == 200 and await _stream_of(js, prefix) is None
    resumed = await client.patch(url, json={"enabled": True}, headers=admin)
    assert resumed.status_code == 200, resumed.text
    assert await _stream_of(js, prefix) == stream_name(prefix)


@needs_nats
async def test_changing_the_target_creates_the_new_stream(client, admin, js, prefix):
    other = f"{prefix}_moved"
    created = await client.post(
        SUBSCRIPTIONS, json={"name": "bus", "kind": "nats", "target": prefix}, headers=admin
    )
    try:
        moved = await client.patch(
            f"{SUBSCRIPTIONS}/{created.json()['id']}", json={"target": other}, headers=admin
        )
        assert moved.status_code == 200, moved.text
        assert await _stream_of(js, other) == stream_name(other)
    finally:
        await js.delete_stream(stream_name(other))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_server_is_a_4xx_and_saves_nothing(client, container, admin):
    delivery = container.settings.delivery
    saved_url = delivery.nats_url
    delivery.nats_url = f"nats://127.0.0.1:{_closed_port()}"
    try:
        refused = await client.post(
            SUBSCRIPTIONS, json={"name": "bus", "kind": "nats", "target": "gg.x"}, headers=admin
        )
    finally:
        delivery.nats_url = saved_url
    assert refused.status_code == 422
    assert refused.json()["code"] == "nats_stream_unavailable"
    assert "cannot be reached" in refused.json()["detail"]
    listed = await client.get(SUBSCRIPTIONS, headers=admin)
    assert listed.json()["items"] == []
