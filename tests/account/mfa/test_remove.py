"""Removing the authenticator and replacing recovery codes: both need a fresh proof (a current
code or the password), wrong proofs count towards the lockout, only the caller's own factor
changes."""

from __future__ import annotations

import pytest

from tests.account.mfa.support import (
    CODES,
    MFA,
    TOTP,
    code_at,
    enrolled_user,
    start,
    stored,
    user_id_of,
    wrong_code,
)
from tests.account.mfa.test_check import check
from tests.account.mfa.test_enrolment import event_types
from tests.helpers import STRONG, bearer, signup


async def remove(client, headers, body):
    return await client.request("DELETE", TOTP, headers=headers, json=body)


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"code": None, "password": None},
        {"code": "123456", "password": STRONG},
        {"code": ""},
        {"password": ""},
        {"password": "x" * 5000},
        {"code": "1" * 65},
        {"code": ["123456"]},
        {"token": "123456"},
    ],
)
async def test_a_missing_or_malformed_proof_is_422_and_removes_nothing(
    client, container, clock, body
):
    headers, _, _ = await enrolled_user(client, clock, "ned")
    for path, method in ((TOTP, "DELETE"), (CODES, "POST")):
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == 422, (path, response.text)
    status = (await client.get(MFA, headers=headers)).json()
    assert status["totp"]["enrolled"] is True and status["recovery_codes_left"] == 10


@pytest.mark.parametrize("proof", ["password", "totp", "recovery"])
async def test_remove_with_a_proof(client, container, clock, proof):
    headers, secret, codes = await enrolled_user(client, clock, "oli")
    clock.advance(30)
    body = {
        "password": {"password": STRONG},
        "totp": {"code": code_at(secret, clock.now)},
        "recovery": {"code": codes[0]},
    }[proof]
    response = await remove(client, headers, body)
    assert response.status_code == 204, response.text
    user_id = await user_id_of(client, headers)
    assert await stored(container, user_id) == (None, [])
    status = (await client.get(MFA, headers=headers)).json()
    assert status == {
        "totp": {"enrolled": False, "pending": False, "confirmed_at": None},
        "recovery_codes_left": 0,
    }
    removed = (await event_types(container, user_id))[-1]
    assert removed == (
        "user.mfa.removed",
        {"user_id": str(user_id), "factor": "totp", "was_confirmed": True, "proof": proof},
    )
    # Gone means gone: the old code and the other recovery codes open nothing, and a new
    # enrolment can start.
    clock.advance(30)
    assert await check(container, user_id, code_at(secret, clock.now)) is None
    assert await check(container, user_id, codes[1]) is None
    assert (await client.post(TOTP, headers=headers)).status_code == 201


async def test_wrong_passwords_are_throttled_like_sign_in_guesses(client, container, clock):
    headers, _, _ = await enrolled_user(client, clock, "pia")
    threshold = container.settings.auth.lockout_threshold
    statuses = []
    for i in range(threshold + 1):
        response = await remove(client, headers, {"password": f"wrong-guess-{i}"})
        statuses.append((response.status_code, response.json()["code"]))
    assert statuses == [(403, "invalid_current_password")] * threshold + [(429, "rate_limited")]
    locked = await remove(client, headers, {"password": STRONG})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    # The same lock as a wrong sign-in's: this account from this address.
    signin = await client.post("/api/v1/auth/signin", json={"username": "pia", "password": STRONG})
    assert signin.status_code == 429
    assert (await client.get(MFA, headers=headers)).json()["totp"]["enrolled"] is True


async def test_a_wrong_code_removes_nothing_and_counts(client, container, clock):
    headers, secret, _ = await enrolled_user(client, clock, "quy")
    clock.advance(30)
    threshold = container.settings.auth.lockout_threshold
    wrong = wrong_code(secret, clock.now)
    statuses = [
        (await remove(client, headers, {"code": wrong})).status_code for _ in range(threshold)
    ]
    assert statuses == [400] * threshold
    locked = await remove(client, headers, {"code": code_at(secret, clock.now)})
    assert locked.status_code == 429
    assert (await client.get(MFA, headers=headers)).json()["recovery_codes_left"] == 10


async def test_the_code_proving_a_removal_is_used_up(client, container, clock):
    headers, secret, _ = await enrolled_user(client, clock, "ray")
    clock.advance(30)
    code = code_at(secret, clock.now)
    user_id = await user_id_of(client, headers)
    assert await check(container, user_id, code) == "totp"
    replayed = await remove(client, headers, {"code": code})
    assert replayed.status_code == 400 and replayed.json()["code"] == "invalid_mfa_code"


async def test_a_pending_enrolment_can_be_removed_with_the_password(client, container, clock):
    headers = bearer(await signup(client, "sam"))
    await start(client, headers)
    response = await remove(client, headers, {"password": STRONG})
    assert response.status_code == 204
    assert await stored(container, await user_id_of(client, headers)) == (None, [])


async def test_removing_nothing_is_404(client, clock):
    headers = bearer(await signup(client, "tia"))
    response = await remove(client, headers, {"password": STRONG})
    assert response.status_code == 404 and response.json()["code"] == "mfa_not_enrolled"


async def test_removing_mine_leaves_theirs(client, container, clock):
    mine, _, _ = await enrolled_user(client, clock, "uma")
    theirs, their_secret, their_codes = await enrolled_user(client, clock, "vic")
    their_id = await user_id_of(client, theirs)
    before = await stored(container, their_id)
    assert (await remove(client, mine, {"password": STRONG})).status_code == 204
    assert await stored(container, their_id) == before
    assert (await client.get(MFA, headers=theirs)).json()["recovery_codes_left"] == 10
    clock.advance(30)
    assert await check(container, their_id, code_at(their_secret, clock.now)) == "totp"
    assert await check(container, their_id, their_codes[0]) == "recovery"


# --- replacing recovery codes ----------------------------------------------------------------


@pytest.mark.parametrize("proof", ["password", "totp", "recovery"])
async def test_replace_recovery_codes(client, container, clock, proof):
    headers, secret, old = await enrolled_user(client, clock, "wes")
    clock.advance(30)
    body = {
        "password": {"password": STRONG},
        "totp": {"code": code_at(secret, clock.now)},
        "recovery": {"code": old[0]},
    }[proof]
    response = await client.post(CODES, headers=headers, json=body)
    assert response.status_code == 200, response.text
    new = response.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    user_id = await user_id_of(client, headers)
    assert await check(container, user_id, old[1]) is None
    assert await check(container, user_id, new[0]) == "recovery"
    assert (await client.get(MFA, headers=headers)).json()["recovery_codes_left"] == 9
    replaced = (await event_types(container, user_id))[-1]
    assert replaced == (
        "user.mfa.recovery_codes_replaced",
        {"user_id": str(user_id), "proof": proof},
    )
    assert not any(code in str(replaced) for code in new)


async def test_replacing_codes_needs_the_right_proof_and_an_authenticator(client, clock):
    headers, secret, _ = await enrolled_user(client, clock, "xia")
    wrong = await client.post(CODES, headers=headers, json={"password": "not-my-password"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "invalid_current_password"
    clock.advance(30)
    bad_code = await client.post(
        CODES, headers=headers, json={"code": wrong_code(secret, clock.now)}
    )
    assert bad_code.status_code == 400 and bad_code.json()["code"] == "invalid_mfa_code"
    assert (await client.get(MFA, headers=headers)).json()["recovery_codes_left"] == 10

    bare = bearer(await signup(client, "yan"))
    none = await client.post(CODES, headers=bare, json={"password": STRONG})
    assert none.status_code == 404 and none.json()["code"] == "mfa_not_enrolled"
