"""A refresh from a place the account is not known at, on a journey the policy asks a second
factor of: 401 `mfa_required`, the refresh token left unused; the step-up rotates it."""

from __future__ import annotations

from tests.account.stepup.conftest import PARIS_IP, TOKYO_IP


async def refresh(gw, token: str, ip: str):
    return await gw.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": token}, headers={"X-Forwarded-For": ip}
    )


async def test_a_refresh_from_tokyo_an_hour_after_paris_needs_the_authenticator(
    open_gateway, clock
):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("xavier")
    app, _ = await gw.enrol_totp(user)
    paris = await gw.signin("xavier", PARIS_IP)
    clock.advance(hours=1)

    held = await refresh(gw, paris["refresh_token"], TOKYO_IP)
    assert held.status_code == 401, held.text
    body = held.json()
    assert body["code"] == "mfa_required" and body["mfa_token"].startswith("ggm_")

    rotated = await gw.verify(body["mfa_token"], gw.code(app), TOKYO_IP, 200)
    assert set(rotated) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert rotated["refresh_token"] != paris["refresh_token"]
    assert (await gw.me(rotated)).status_code == 200
    (challenge,) = await gw.audit("user.mfa.challenged", user["user_id"])
    assert challenge["payload"]["kind"] == "refresh"

    # Tokyo is known now: the next refresh from there goes through.
    clock.advance(minutes=5)
    again = await refresh(gw, rotated["refresh_token"], TOKYO_IP)
    assert again.status_code == 200, again.text


async def test_a_held_refresh_token_is_not_used_up(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("yvonne")
    await gw.enrol_totp(user)
    paris = await gw.signin("yvonne", PARIS_IP)
    clock.advance(hours=1)
    assert (await refresh(gw, paris["refresh_token"], TOKYO_IP)).status_code == 401
    # From the known place the same token still rotates.
    home = await refresh(gw, paris["refresh_token"], PARIS_IP)
    assert home.status_code == 200, home.text


async def test_the_refresh_grant_answers_the_oauth_way(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("zoe")
    app, _ = await gw.enrol_totp(user)
    paris = await gw.signin("zoe", PARIS_IP)
    clock.advance(hours=1)
    response = await gw.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": paris["refresh_token"]},
        headers={"X-Forwarded-For": TOKYO_IP},
    )
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "mfa_required" and body["mfa_token"].startswith("ggm_")
    assert (await gw.verify(body["mfa_token"], gw.code(app), TOKYO_IP, 200))["access_token"]


async def test_a_refresh_without_a_factor_goes_through(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa", "mfa_fallback": "deny"})
    await gw.signup("adele")
    paris = await gw.signin("adele", PARIS_IP)
    clock.advance(hours=1)
    assert (await refresh(gw, paris["refresh_token"], TOKYO_IP)).status_code == 200
