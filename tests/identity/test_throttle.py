"""Sign-in throttling: the guesser is stopped, the real user elsewhere is not locked out."""

from __future__ import annotations

import httpx
import pytest

from globeguard.app import create_app
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG

ATTACKER, VICTIM = "198.51.100.66", "192.0.2.10"


@pytest.fixture
async def gateway(database_url, tmp_path):
    settings = make_settings(
        database_url,
        tmp_path,
        http={"trusted_proxies": ["127.0.0.0/8"]},
        auth={"lockout_threshold": 3, "ip_failure_limit": 5},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 9))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            try:
                yield client
            finally:
                await wipe(app.state.container)


async def attempt(client, username, password, ip):
    return await client.post(
        "/api/v1/auth/signin",
        headers={"X-Forwarded-For": ip},
        json={"username": username, "password": password},
    )


async def test_a_locked_pair_refuses_even_the_right_password(gateway):
    assert (
        await gateway.post("/api/v1/auth/signup", json={"username": "target", "password": STRONG})
    ).status_code == 201
    for _ in range(3):
        assert (await attempt(gateway, "target", "guess-guess-1", ATTACKER)).status_code == 401
    locked = await attempt(gateway, "target", STRONG, ATTACKER)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # the real user, elsewhere, is not locked out
    assert (await attempt(gateway, "target", STRONG, VICTIM)).status_code == 200


async def test_a_success_clears_the_pair(gateway):
    await gateway.post("/api/v1/auth/signup", json={"username": "forgetful", "password": STRONG})
    for _ in range(2):
        await attempt(gateway, "forgetful", "nope-nope-nope", VICTIM)
    assert (await attempt(gateway, "forgetful", STRONG, VICTIM)).status_code == 200
    for _ in range(2):
        assert (await attempt(gateway, "forgetful", "nope-nope-nope", VICTIM)).status_code == 401


async def test_spraying_unknown_accounts_from_one_address_is_stopped(gateway):
    for i in range(5):
        assert (await attempt(gateway, f"ghost{i}", "whatever-pass", ATTACKER)).status_code == 401
    response = await attempt(gateway, "ghost99", "whatever-pass", ATTACKER)
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    # another address is unaffected
    assert (await attempt(gateway, "ghost99", "whatever-pass", VICTIM)).status_code == 401


async def test_a_redis_url_shares_the_counters_between_processes(database_url, tmp_path):
    import os

    from globeguard.adapters.kv.redis import RedisCounters
    from globeguard.wiring import build

    url = os.environ.get("GLOBEGUARD_TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis not configured")
    container = build(make_settings(database_url, tmp_path, kv={"url": url}))
    try:
        assert isinstance(container.counters, RedisCounters)
    finally:
        await container.counters.close()
        await container.db.dispose()
