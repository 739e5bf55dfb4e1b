"""Changing a password checks the current one: with a stolen access token that check must not
become a guessing oracle, so wrong answers count like sign-in guesses."""

from __future__ import annotations

from tests.helpers import STRONG, bearer, signup

CHANGE = "/api/v1/users/me/password"
NEW = "another-long-passphrase-91"


async def test_wrong_current_passwords_run_into_the_lockout(client, container):
    headers = bearer(await signup(client, "carol"))
    threshold = container.settings.auth.lockout_threshold
    statuses = []
    for i in range(threshold + 3):
        body = {"current_password": f"guess-{i}-wrong", "new_password": NEW}
        statuses.append((await client.post(CHANGE, headers=headers, json=body)).status_code)
    assert statuses == [403] * threshold + [429] * 3
    refused = await client.post(
        CHANGE, headers=headers, json={"current_password": STRONG, "new_password": NEW}
    )
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    # The locked pair is this account from this address: signing in here is refused too.
    signin = await client.post(
        "/api/v1/auth/signin", json={"username": "carol", "password": STRONG}
    )
    assert signin.status_code == 429


async def test_a_right_current_password_costs_no_slot_even_if_the_new_one_is_refused(
    client, container
):
    headers = bearer(await signup(client, "dave"))
    threshold = container.settings.auth.lockout_threshold
    for _ in range(threshold + 2):
        weak = await client.post(
            CHANGE, headers=headers, json={"current_password": STRONG, "new_password": "dave"}
        )
        assert weak.status_code == 422
    changed = await client.post(
        CHANGE, headers=headers, json={"current_password": STRONG, "new_password": NEW}
    )
    assert changed.status_code == 204, changed.text
