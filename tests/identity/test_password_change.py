from __future__ import annotations

from tests.helpers import STRONG, bearer, signin, signup

NEW = "a-completely-new-passphrase-9"


async def test_changing_the_password_ends_other_sessions_only(client):
    here = await signup(client, "changer")
    elsewhere = await signin(client, "changer")
    wrong = await client.post(
        "/api/v1/users/me/password",
        headers=bearer(here),
        json={"current_password": "nope-nope-nope", "new_password": NEW},
    )
    assert wrong.status_code == 403 and wrong.json()["code"] == "invalid_current_password"
    weak = await client.post(
        "/api/v1/users/me/password",
        headers=bearer(here),
        json={"current_password": STRONG, "new_password": "changer1"},
    )
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"

    done = await client.post(
        "/api/v1/users/me/password",
        headers=bearer(here),
        json={"current_password": STRONG, "new_password": NEW},
    )
    assert done.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=bearer(here))).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=bearer(elsewhere))).status_code == 401
    old = await client.post("/api/v1/auth/signin", json={"username": "changer", "password": STRONG})
    assert old.status_code == 401
    assert (await signin(client, "changer", NEW))["username"] == "changer"
