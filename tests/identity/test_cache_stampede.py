"""Many requests in flight on one credential: the caches in front of the database read a
token's state, an API key and a /users/me body once for all of them, whether the entry is
absent or due for a refresh (under wrk, 64 requests used to read it 64 times, every 2 s). Past
half its TTL an entry is refreshed in the background: no request waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from globeguard.identity.api_keys.repository import ApiKeyRepository
from globeguard.identity.revocation import RevocationCache
from globeguard.identity.users.repository import UserRepository
from globeguard.identity.users.view_cache import UserViewCache
from tests.conftest import make_settings
from tests.helpers import bearer, signup

ME = "/api/v1/users/me"
IN_FLIGHT = 20
TTL_S = 60.0


@pytest.fixture
def settings(database_url, tmp_path):
    # Long enough that nothing expires by itself during a test; expiry is the fake clock's.
    return make_settings(
        database_url, tmp_path, auth={"revocation_cache_ttl": timedelta(seconds=TTL_S)}
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """Counts calls of a database read and holds each until opened."""

    def __init__(self) -> None:
        self.calls = 0
        self.opened = asyncio.Event()

    def around(self, read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def gated(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            await self.opened.wait()
            return await read(*args, **kwargs)

        return gated


async def refreshed(gate: Gate) -> None:
    """Until the background refresh has reached the gated read (its database round trips
    first run on the reader pool), then a little longer for any second one to show."""
    for _ in range(500):
        if gate.calls:
            break
        await asyncio.sleep(0.01)
    await settle()


async def settle() -> None:
    """Let every request run up to where it waits for the gate or for another request."""
    for _ in range(200):
        await asyncio.sleep(0)


def burst(client, headers: dict[str, str], n: int = IN_FLIGHT) -> list[asyncio.Task[Any]]:
    return [asyncio.create_task(client.get(ME, headers=headers)) for _ in range(n)]


async def test_concurrent_first_uses_of_a_token_read_its_state_once(client, monkeypatch):
    tokens = await signup(client, "burst-token")
    gate = Gate()
    monkeypatch.setattr(UserRepository, "subject_state", gate.around(UserRepository.subject_state))
    requests = burst(client, bearer(tokens))
    await settle()
    gate.opened.set()
    assert [r.status_code for r in await asyncio.gather(*requests)] == [200] * IN_FLIGHT
    assert gate.calls == 1


async def test_an_ageing_token_state_is_read_once_in_the_background_while_all_go_on(
    client, container, monkeypatch
):
    tokens = await signup(client, "burst-expired")
    clock = Clock()
    container.authenticator.cache = RevocationCache(TTL_S, clock=clock)
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200
    clock.now += TTL_S * 0.75
    gate = Gate()
    monkeypatch.setattr(UserRepository, "subject_state", gate.around(UserRepository.subject_state))
    requests = burst(client, bearer(tokens))
    await settle()
    assert sum(r.done() for r in requests) == IN_FLIGHT  # one refresh runs, nobody waits
    gate.opened.set()
    assert [r.status_code for r in await asyncio.gather(*requests)] == [200] * IN_FLIGHT
    await refreshed(gate)
    assert gate.calls == 1


async def test_an_ageing_me_is_rendered_once_in_the_background_while_all_get_the_last_body(
    client, container, monkeypatch
):
    tokens = await signup(client, "burst-view")
    clock = Clock()
    container.user_views = UserViewCache(TTL_S, clock=clock)
    first = await client.get(ME, headers=bearer(tokens))
    clock.now += TTL_S * 0.75
    gate = Gate()
    monkeypatch.setattr(container.roles, "names_of", gate.around(container.roles.names_of))
    requests = burst(client, bearer(tokens))
    await settle()
    done = [r.result() for r in requests if r.done()]
    assert len(done) == IN_FLIGHT
    assert all(r.status_code == 200 and r.content == first.content for r in done)
    gate.opened.set()
    await asyncio.gather(*requests)
    await refreshed(gate)
    assert gate.calls == 1


async def test_concurrent_first_reads_of_me_render_it_once(client, container, monkeypatch):
    tokens = await signup(client, "burst-cold-view")
    await client.get(ME, headers=bearer(tokens))  # the token's state is cached; the body next
    container.user_views.clear()
    gate = Gate()
    monkeypatch.setattr(container.roles, "names_of", gate.around(container.roles.names_of))
    requests = burst(client, bearer(tokens))
    await settle()
    gate.opened.set()
    answers = await asyncio.gather(*requests)
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert gate.calls == 1


async def test_concurrent_uses_of_an_api_key_resolve_it_once_and_check_each_secret(
    client, monkeypatch
):
    tokens = await signup(client, "burst-key")
    created = await client.post(
        "/api/v1/api-keys", headers=bearer(tokens), json={"name": "k", "scopes": ["profile"]}
    )
    key = created.json()["api_key"]
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    gate = Gate()
    monkeypatch.setattr(ApiKeyRepository, "with_owner", gate.around(ApiKeyRepository.with_owner))
    requests = burst(client, {"X-API-KEY": key})
    guess = asyncio.create_task(client.get(ME, headers={"X-API-KEY": wrong}))
    await settle()
    gate.opened.set()
    assert [r.status_code for r in await asyncio.gather(*requests)] == [200] * IN_FLIGHT
    refused = await guess
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"
    assert gate.calls == 1


async def test_a_revoked_key_with_a_wrong_secret_tells_nothing_about_the_key(client):
    tokens = await signup(client, "burst-revoked")
    created = (
        await client.post(
            "/api/v1/api-keys", headers=bearer(tokens), json={"name": "k", "scopes": ["profile"]}
        )
    ).json()
    key = created["api_key"]
    revoked = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=bearer(tokens))
    assert revoked.status_code in (200, 204)
    right = await client.get(ME, headers={"X-API-KEY": key})
    wrong = await client.get(ME, headers={"X-API-KEY": key[:-4] + "AAAA"})
    assert right.status_code == wrong.status_code == 401
    assert "revoked" in right.text and "revoked" not in wrong.text
