"""What the dashboard counts follows a login's final outcome: a sign-in held back for a second
factor is stored as a failure, and becomes a success when the step-up passes; one refused
after its hash (the account changed meanwhile) was stored as a success and becomes a failure.
Counts by outcome and the last-login map move with it."""

from __future__ import annotations

from typing import Any

from tests.account.stepup.conftest import LYON_IP, PARIS_IP, TOKYO_IP, Gateway
from tests.helpers import bearer, make_admin
from tests.identity.test_signin_path import change_during_hash


async def cities(gw: Gateway, **params: Any) -> dict[str, int]:
    """Top cities as the dashboard asks for them: city name → count."""
    if gw.admin is None:
        gw.admin = await make_admin(gw.client, gw.container)
    response = await gw.client.get(
        "/api/v1/analytics/top-locations",
        params={"level": "city", **params},
        headers=bearer(gw.admin),
    )
    assert response.status_code == 200, response.text
    return {item["label"].split(",")[0]: item["count"] for item in response.json()["items"]}


async def test_a_passed_step_up_counts_as_a_success(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("emile")
    app, _ = await gw.enrol_totp(user)
    await gw.signin("emile", PARIS_IP)
    clock.advance(hours=1)
    challenged = await gw.signin("emile", TOKYO_IP, status=401)
    assert await cities(gw, outcome="failure") == {"Tokyo": 1}
    assert await cities(gw, basis="last_login") == {"Paris": 1}

    await gw.verify(challenged["mfa_token"], gw.code(app), TOKYO_IP, 200)

    assert await cities(gw, outcome="failure") == {}
    assert await cities(gw, outcome="success") == {"Paris": 1, "Tokyo": 1}
    assert await cities(gw, basis="last_login") == {"Tokyo": 1}
    assert await cities(gw, outcome="success", verdict="impossible") == {"Tokyo": 1}


async def test_a_signin_refused_after_its_hash_counts_as_a_failure(
    open_gateway, clock, monkeypatch
):
    gw = await open_gateway()
    user = await gw.signup("fanny")
    await gw.signin("fanny", PARIS_IP)
    clock.advance(hours=3)
    change_during_hash(gw.container, monkeypatch, user["user_id"], password_hash="$argon2id$x")

    await gw.signin("fanny", LYON_IP, status=401)

    assert await cities(gw, outcome="success") == {"Paris": 1}
    assert await cities(gw, outcome="failure") == {"Lyon": 1}
    # The refused sign-in was the latest success for a moment; Paris is again.
    assert await cities(gw, basis="last_login") == {"Paris": 1}
