"""The mfa_token's limits: single use, expiry, bound to the address that signed in, a few
wrong codes, its purpose; the account checked again when it is used; malformed bodies."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from globeguard.account import one_time
from globeguard.kit.clock import utcnow
from tests.account.stepup.conftest import PARIS_IP, TOKYO_IP, TOKYO_OTHER_IP

VERIFY = "/api/v1/auth/mfa/verify"


async def challenged_user(gw, clock, name: str):
    user = await gw.signup(name)
    app, _ = await gw.enrol_totp(user)
    await gw.signin(name, PARIS_IP)
    clock.advance(hours=1)
    challenge = await gw.signin(name, TOKYO_IP, status=401)
    return user, app, challenge["mfa_token"]


async def test_an_expired_mfa_token_is_refused(open_gateway, clock, monkeypatch):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    _, app, token = await challenged_user(gw, clock, "olga")
    later = utcnow() + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr(one_time, "utcnow", lambda: later)
    assert (await gw.verify(token, gw.code(app), TOKYO_IP, 400))["code"] == "invalid_token"


async def test_the_mfa_token_works_only_from_the_address_that_signed_in(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    _, app, token = await challenged_user(gw, clock, "pablo")
    elsewhere = await gw.verify(token, gw.code(app), TOKYO_OTHER_IP, 400)
    assert elsewhere["code"] == "invalid_token"
    unknown = await gw.verify("ggm_" + "x" * 43, gw.code(app), TOKYO_IP, 400)
    assert elsewhere["detail"] == unknown["detail"]  # one answer, whatever is wrong
    # Not used up by being tried from elsewhere.
    assert (await gw.verify(token, gw.code(app), TOKYO_IP, 200))["access_token"]


async def test_wrong_codes_end_the_token_at_the_limit(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"}, account={"mfa_code_attempts": 2})
    user, app, token = await challenged_user(gw, clock, "quentin")
    assert (await gw.verify(token, "000000", TOKYO_IP, 401))["attempts_left"] == 1
    assert (await gw.verify(token, "999999", TOKYO_IP, 401))["attempts_left"] == 0
    assert (await gw.verify(token, gw.code(app), TOKYO_IP, 400))["code"] == "invalid_token"
    failed = await gw.audit("user.mfa.failed", user["user_id"])
    assert sorted(f["payload"]["attempts_left"] for f in failed) == [0, 1]
    # The held-back sign-in stays a failure: no anchor, no place, no count.
    _, tokyo = await gw.logins(user["user_id"])
    assert (tokyo.success, tokyo.failure_reason, tokyo.review) == (False, "mfa_required", None)


async def test_another_purposes_token_is_not_an_mfa_token(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user, app, token = await challenged_user(gw, clock, "rosa")
    refused = await gw.verify(user["refresh_token"], gw.code(app), TOKYO_IP, 400)
    assert refused["code"] == "invalid_token"
    assert (await gw.verify(token, gw.code(app), TOKYO_IP, 200))["access_token"]


async def test_anothers_token_checks_its_own_users_code(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    _, app_a, _ = await challenged_user(gw, clock, "simon")
    _, _, token_b = await challenged_user(gw, clock, "tania")
    clock.advance(seconds=30)
    assert (await gw.verify(token_b, gw.code(app_a), TOKYO_IP, 401))["code"] == "invalid_code"


async def test_a_blocked_account_cannot_complete_it(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user, app, token = await challenged_user(gw, clock, "ugo")
    await gw.set_status(user["user_id"], "blocked")
    assert (await gw.verify(token, gw.code(app), TOKYO_IP, 403))["code"] == "account_blocked"
    await gw.set_status(user["user_id"], "active")
    assert (await gw.verify(token, gw.code(app), TOKYO_IP, 400))["code"] == "invalid_token"


async def test_a_password_changed_since_ends_it(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user, app, token = await challenged_user(gw, clock, "valentin")
    changed = await gw.client.post(
        "/api/v1/users/me/password",
        json={
            "current_password": "correct-horse-battery-staple-7",
            "new_password": "an0ther-long-passphrase-here",
        },
        headers={"Authorization": f"Bearer {user['access_token']}"},
    )
    assert changed.status_code in (200, 204), changed.text
    assert (await gw.verify(token, gw.code(app), TOKYO_IP, 400))["code"] == "invalid_token"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mfa_token": "ggm_x"},
        {"code": "123456"},
        {"mfa_token": "", "code": "123456"},
        {"mfa_token": "ggm_x", "code": ""},
        {"mfa_token": "ggm_x", "code": "1" * 65},
        {"mfa_token": "g" * 257, "code": "123456"},
        {"mfa_token": 12, "code": 123456},
        {"mfa_token": "ggm_x", "code": "123456", "extra": 1},
        ["ggm_x", "123456"],
    ],
)
async def test_malformed_bodies_are_refused(open_gateway, body):
    gw = await open_gateway()
    response = await gw.client.post(VERIFY, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.status_code != 401


async def test_a_body_that_is_not_json_is_refused(open_gateway):
    gw = await open_gateway()
    response = await gw.client.post(
        VERIFY, content=b"\xff{", headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500


async def test_wrong_emailed_codes_count_towards_the_account_lockout(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"}, auth={"lockout_threshold": 3})
    user = await gw.signup("wanda", email="wanda@example.com")
    await gw.verify_email(user["user_id"])
    await gw.signin("wanda", PARIS_IP)
    clock.advance(hours=1)
    token = (await gw.signin("wanda", TOKYO_IP, status=401))["mfa_token"]
    for code in ("000001", "000002", "000003"):
        assert (await gw.verify(token, code, TOKYO_IP, 401))["code"] == "invalid_code"
    # A fresh token does not start a fresh count: the account is locked for a while.
    clock.advance(minutes=1)
    fresh = (await gw.signin("wanda", TOKYO_IP, status=401))["mfa_token"]
    locked = await gw.client.post(
        VERIFY, json={"mfa_token": fresh, "code": "000004"}, headers={"X-Forwarded-For": TOKYO_IP}
    )
    assert locked.status_code == 429 and locked.headers["retry-after"]


async def test_two_verifies_racing_with_the_right_code_complete_it_once(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("xena", email="xena@example.com")
    await gw.verify_email(user["user_id"])
    await gw.signin("xena", PARIS_IP)
    clock.advance(hours=1)
    token = (await gw.signin("xena", TOKYO_IP, status=401))["mfa_token"]
    (mail,) = await gw.mails("xena@example.com")
    text = gw.container.mail.open_body(mail.body_sealed)["text"]
    code = next(word for word in text.split() if len(word) == 6 and word.isdigit())

    async def verify():
        return await gw.client.post(
            VERIFY, json={"mfa_token": token, "code": code}, headers={"X-Forwarded-For": TOKYO_IP}
        )

    first, second = await asyncio.gather(verify(), verify())
    assert sorted([first.status_code, second.status_code]) == [200, 400]
    loser = first if first.status_code == 400 else second
    assert loser.json()["code"] == "invalid_token"
    assert len(await gw.audit("user.mfa.succeeded", user["user_id"])) == 1
