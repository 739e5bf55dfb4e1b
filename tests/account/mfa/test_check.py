"""MfaService.check, the verification the step-up flow relies on: a code's step once, the
±1-step window, recovery codes once, concurrent uses, the account's lockout."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from globeguard.account.mfa.repository import MfaRepository
from globeguard.kit.errors import TooManyRequests
from tests.account.mfa.support import (
    code_at,
    enrolled_user,
    start,
    stored,
    user_id_of,
    wrong_code,
)
from tests.helpers import bearer, signup


async def check(container, user_id: uuid.UUID, code: str) -> str | None:
    async with container.db.transaction() as session:
        return await container.mfa.check(session, user_id, code)


async def has_totp(container, user_id: uuid.UUID) -> bool:
    async with container.db.read() as session:
        return await container.mfa.has_totp(session, user_id)


@pytest.fixture
async def enrolled(client, container, clock):
    """(user id, secret, recovery codes), the clock one step after the confirmation's."""
    headers, secret, codes = await enrolled_user(client, clock, "ida")
    clock.advance(30)
    return await user_id_of(client, headers), secret, codes


async def test_a_code_works_once(container, clock, enrolled):
    user_id, secret, _ = enrolled
    code = code_at(secret, clock.now)
    assert await check(container, user_id, code) == "totp"
    assert await check(container, user_id, code) is None
    # Still refused later while its step is inside the window.
    clock.advance(25)
    assert await check(container, user_id, code) is None


@pytest.mark.parametrize(("steps", "accepted"), [(-1, True), (1, True), (-2, False), (2, False)])
async def test_the_window_is_one_step_either_side(container, clock, enrolled, steps, accepted):
    user_id, secret, _ = enrolled
    clock.advance(90)  # well past the confirmation's step, so -2 is not a replay
    result = await check(container, user_id, code_at(secret, clock.now, steps))
    assert result == ("totp" if accepted else None)


async def test_an_older_code_after_a_newer_one_is_refused(container, clock, enrolled):
    user_id, secret, _ = enrolled
    clock.advance(60)
    newer, older = code_at(secret, clock.now, 1), code_at(secret, clock.now)
    assert await check(container, user_id, newer) == "totp"
    assert await check(container, user_id, older) is None
    clock.advance(60)  # the next fresh step works again
    assert await check(container, user_id, code_at(secret, clock.now)) == "totp"


async def test_the_confirmation_code_cannot_be_replayed(client, container, clock):
    headers = bearer(await signup(client, "joe"))
    secret = (await start(client, headers))["secret"]
    code = code_at(secret, clock.now)
    confirmed = await client.post("/api/v1/mfa/totp/confirm", headers=headers, json={"code": code})
    assert confirmed.status_code == 200
    assert await check(container, await user_id_of(client, headers), code) is None


async def test_a_pending_enrolment_is_no_factor(client, container, clock):
    headers = bearer(await signup(client, "kim"))
    user_id = await user_id_of(client, headers)
    assert await has_totp(container, user_id) is False
    secret = (await start(client, headers))["secret"]
    assert await has_totp(container, user_id) is False
    assert await check(container, user_id, code_at(secret, clock.now)) is None


async def test_has_totp_once_confirmed(client, container, enrolled):
    assert await has_totp(container, enrolled[0]) is True
    assert await has_totp(container, uuid.uuid4()) is False
    headers = bearer(await signup(client, "liz"))
    pending = await user_id_of(client, headers)
    await start(client, headers)
    async with container.db.read() as session:
        found = await container.mfa.enabled_among(session, [enrolled[0], pending, uuid.uuid4()])
        assert found == {enrolled[0]}
        assert await container.mfa.enabled_among(session, []) == set()


async def test_recovery_codes_work_once_in_any_reasonable_spelling(container, enrolled):
    user_id, _, codes = enrolled
    first, second, third = codes[:3]
    assert await check(container, user_id, first) == "recovery"
    assert await check(container, user_id, first) is None
    assert await check(container, user_id, f"  {second.upper().replace('-', ' ')} ") == "recovery"
    assert await check(container, user_id, third.replace("-", "")) == "recovery"
    async with container.db.read() as session:
        assert await MfaRepository(session).recovery_codes_left(user_id) == 7


@pytest.mark.parametrize(
    "text",
    ["", "12345", "1234567", "abcdef", "123\x00456", "9" * 1_000_000, "١٢٣٤٥٦", "abcd-efgh-ijk1"],
)
async def test_text_that_cannot_be_a_code_is_refused(container, enrolled, text):
    assert await check(container, enrolled[0], text) is None


async def test_concurrent_uses_of_one_code_let_exactly_one_through(
    container, clock, enrolled, backend, monkeypatch
):
    user_id, secret, codes = enrolled
    if backend == "postgresql":
        # Both read the factor before either writes: only the conditional UPDATE can tell
        # them apart. (SQLite has one writer connection: the second waits for the first.)
        barrier = asyncio.Barrier(2)
        read = MfaRepository.factor

        async def factor_then_wait(self, user):
            found = await read(self, user)
            await barrier.wait()
            return found

        monkeypatch.setattr(MfaRepository, "factor", factor_then_wait)
    code = code_at(secret, clock.now)
    results = await asyncio.gather(check(container, user_id, code), check(container, user_id, code))
    assert sorted(results, key=str) == [None, "totp"]
    recovered = await asyncio.gather(
        check(container, user_id, codes[0]), check(container, user_id, codes[0])
    )
    assert sorted(recovered, key=str) == [None, "recovery"]


async def test_wrong_codes_lock_the_account_and_a_right_one_frees_it(container, clock, enrolled):
    user_id, secret, codes = enrolled
    threshold = container.settings.auth.lockout_threshold
    wrong = wrong_code(secret, clock.now)
    for _ in range(threshold - 1):
        assert await check(container, user_id, wrong) is None
    # A right code gives the slots back: a full threshold of misses is allowed again.
    assert await check(container, user_id, code_at(secret, clock.now)) == "totp"
    for _ in range(threshold):
        assert await check(container, user_id, wrong) is None
    with pytest.raises(TooManyRequests) as locked:
        await check(container, user_id, code_at(secret, clock.now, 1))
    assert int(locked.value.headers["Retry-After"]) > 0
    with pytest.raises(TooManyRequests):
        await check(container, user_id, codes[0])
    # The refused attempts used nothing up: every recovery code is still there.
    async with container.db.read() as session:
        assert await MfaRepository(session).recovery_codes_left(user_id) == 10


async def test_another_users_factor_is_never_touched(client, container, clock):
    headers_a, secret_a, codes_a = await enrolled_user(client, clock, "lou")
    headers_b, secret_b, codes_b = await enrolled_user(client, clock, "mae")
    clock.advance(30)
    a, b = await user_id_of(client, headers_a), await user_id_of(client, headers_b)
    before_b = await stored(container, b)
    # A's code and recovery code are nothing to B, and B's are nothing to A.
    assert await check(container, b, code_at(secret_a, clock.now)) is None
    assert await check(container, b, codes_a[0]) is None
    assert await check(container, a, codes_b[0]) is None
    assert await stored(container, b) == before_b
    # A's own still work: the misses above were not A's to spend.
    assert await check(container, a, code_at(secret_a, clock.now)) == "totp"
    assert await check(container, a, codes_a[0]) == "recovery"
    assert await check(container, b, code_at(secret_b, clock.now)) == "totp"
