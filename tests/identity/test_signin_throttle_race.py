"""Sign-in throttling under concurrency and distributed guessing, over the HTTP API, on the
in-memory counters and on Redis (when GLOBEGUARD_TEST_REDIS_URL is set).

Each test counts the password verifications that actually ran (the hasher is wrapped), since
that is what a guesser buys: a 401 only tells them which guesses were wrong."""

from __future__ import annotations

import asyncio
import os
import secrets

import httpx
import pytest

from globeguard.app import create_app
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG

REDIS_ENV = "GLOBEGUARD_TEST_REDIS_URL"
THRESHOLD, ADDRESS_LIMIT, CEILING = 10, 40, 30
WRONG = "wrong-horse-battery-staple-1"


def _stores() -> list[str]:
    if os.environ.get(REDIS_ENV):
        return ["memory", "redis"]
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true but {REDIS_ENV} is not set")
    return ["memory"]


class Gateway:
    """An app behind a trusted proxy, so each request can name its client address."""

    def __init__(self, client: httpx.AsyncClient, container) -> None:
        self.client = client
        self.container = container
        self.verified = 0

    async def signin(self, username: str, password: str, ip: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/signin",
            headers={"X-Forwarded-For": ip},
            json={"username": username, "password": password},
        )

    async def password_grant(self, username: str, password: str, ip: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/token",
            headers={"X-Forwarded-For": ip},
            data={"grant_type": "password", "username": username, "password": password},
        )

    async def signup(self, username: str) -> None:
        response = await self.client.post(
            "/api/v1/auth/signup", json={"username": username, "password": STRONG}
        )
        assert response.status_code == 201, response.text


def _count_verifications(gateway: Gateway) -> None:
    hasher = gateway.container.hasher
    real_verify = hasher.verify

    async def counted(stored_hash, password):
        gateway.verified += 1
        return await real_verify(stored_hash, password)

    hasher.verify = counted


async def _forget_redis_keys(counters) -> None:
    redis = counters._redis
    async for name in redis.scan_iter(match=counters.prefix + "*"):
        await redis.delete(name)


@pytest.fixture(params=_stores())
async def gateway(request, database_url, tmp_path):
    kv = {"url": os.environ[REDIS_ENV]} if request.param == "redis" else {}
    settings = make_settings(
        database_url,
        tmp_path,
        http={"trusted_proxies": ["127.0.0.0/8"]},
        auth={
            "lockout_threshold": THRESHOLD,
            "ip_failure_limit": ADDRESS_LIMIT,
            "account_failure_ceiling": CEILING,
        },
        kv=kv,
    )
    app = create_app(settings)
    container = app.state.container
    if request.param == "redis":
        # A prefix per test: concurrent runs on the same Redis never see each other's keys.
        container.counters.prefix = f"gg-test-{secrets.token_hex(4)}:"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 9))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            gateway = Gateway(client, container)
            _count_verifications(gateway)
            try:
                yield gateway
            finally:
                if request.param == "redis":
                    await _forget_redis_keys(container.counters)
                await wipe(container)


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    if response.headers["content-type"] == "application/json":  # the OAuth token endpoint
        assert body["error"] == "temporarily_unavailable"
    else:
        assert body["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0


async def test_sixty_concurrent_guesses_reach_the_hash_at_most_threshold_times(gateway, caplog):
    await gateway.signup("racer")
    gateway.verified = 0
    responses = await asyncio.gather(
        *(gateway.signin("racer", WRONG, "198.51.100.7") for _ in range(60))
    )
    statuses = sorted(r.status_code for r in responses)
    unexpected = [r.text for r in responses if r.status_code not in (401, 429)]
    assert not unexpected, (unexpected, caplog.text)
    assert gateway.verified == THRESHOLD
    assert statuses == [401] * THRESHOLD + [429] * (60 - THRESHOLD)
    for response in responses:
        if response.status_code == 429:
            _assert_throttled(response)


async def test_concurrent_password_grants_share_the_same_limit(gateway):
    await gateway.signup("granted")
    gateway.verified = 0
    responses = await asyncio.gather(
        *(gateway.signin("granted", WRONG, "198.51.100.8") for _ in range(30)),
        *(gateway.password_grant("granted", WRONG, "198.51.100.8") for _ in range(30)),
    )
    assert gateway.verified == THRESHOLD
    assert sum(r.status_code == 429 for r in responses) == 60 - THRESHOLD
    locked = await gateway.password_grant("granted", STRONG, "198.51.100.8")
    _assert_throttled(locked)


async def test_unknown_usernames_count_and_cost_a_verification(gateway):
    responses = await asyncio.gather(
        *(gateway.signin("nobody-here", WRONG, "198.51.100.9") for _ in range(20))
    )
    assert gateway.verified == THRESHOLD  # each admitted guess pays for one hash
    assert sorted(r.status_code for r in responses) == [401] * THRESHOLD + [429] * 10


async def test_distributed_guessing_stops_at_the_account_ceiling(gateway):
    await gateway.signup("popular")
    home = "192.0.2.10"
    assert (await gateway.signin("popular", STRONG, home)).status_code == 200
    gateway.verified = 0
    # 50 addresses, 3 guesses each: each address stays far under its own limits.
    addresses = [f"203.0.113.{n}" for n in range(1, 51)]
    responses = await asyncio.gather(
        *(gateway.signin("popular", WRONG, ip) for ip in addresses for _ in range(3))
    )
    assert gateway.verified == CEILING
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == 150 - CEILING
    _assert_throttled(refused[0])
    # A new address, even with the right password, is refused while the ceiling holds...
    _assert_throttled(await gateway.signin("popular", STRONG, "203.0.113.200"))
    _assert_throttled(await gateway.password_grant("popular", STRONG, "203.0.113.201"))
    # ...but the real user at home signs in, by either path.
    assert (await gateway.signin("popular", STRONG, home)).status_code == 200
    assert (await gateway.password_grant("popular", STRONG, home)).status_code == 200


async def test_the_ceiling_of_one_account_leaves_other_accounts_alone(gateway):
    await gateway.signup("besieged")
    await gateway.signup("bystander")
    addresses = [f"203.0.113.{n}" for n in range(1, 51)]
    await asyncio.gather(*(gateway.signin("besieged", WRONG, ip) for ip in addresses))
    assert (await gateway.signin("bystander", STRONG, "203.0.113.7")).status_code == 200


async def test_a_success_refunds_its_slot(gateway):
    await gateway.signup("steady")
    ip = "198.51.100.20"
    # Far more sign-ins than the limits, all right: none of them counts.
    for _ in range(THRESHOLD + 2):
        assert (await gateway.signin("steady", STRONG, ip)).status_code == 200
    for _ in range(THRESHOLD - 1):
        assert (await gateway.signin("steady", WRONG, ip)).status_code == 401
    assert (await gateway.signin("steady", STRONG, ip)).status_code == 200


async def test_a_success_from_a_new_address_refunds_the_ceiling(gateway):
    await gateway.signup("traveller")
    for n in range(CEILING - 1):
        assert (await gateway.signin("traveller", WRONG, f"203.0.113.{n + 1}")).status_code == 401
    # The real user, from a new address, with the right password: the one slot left.
    assert (await gateway.signin("traveller", STRONG, "198.51.100.30")).status_code == 200
    # That slot came back, and the address is now known: the next stranger still gets one try.
    assert (await gateway.signin("traveller", WRONG, "203.0.113.99")).status_code == 401
    _assert_throttled(await gateway.signin("traveller", WRONG, "203.0.113.100"))
    assert (await gateway.signin("traveller", STRONG, "198.51.100.30")).status_code == 200


async def test_the_address_limit_still_holds_across_accounts(gateway):
    ip = "198.51.100.40"
    usernames = [f"ghost{n}" for n in range(ADDRESS_LIMIT + 20)]
    responses = await asyncio.gather(*(gateway.signin(name, WRONG, ip) for name in usernames))
    assert gateway.verified == ADDRESS_LIMIT
    assert sum(r.status_code == 429 for r in responses) == 20
    # another address is unaffected
    assert (await gateway.signin("ghost0", WRONG, "198.51.100.41")).status_code == 401
