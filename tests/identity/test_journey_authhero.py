"""The AuthHero journey over HTTP, with the seed's holes closed."""

from __future__ import annotations

from tests.helpers import STRONG, bearer, make_admin, signin, signup


async def test_authhero_journey(client, container):
    admin = await make_admin(client, container)

    # register → sign in → use the credential
    created = await signup(client, "paulatreides", given_name="Paul", family_name="Atreides")
    assert "password" not in created["user"] and "password_hash" not in created["user"]
    tokens = await signin(client, "paulatreides")
    me = await client.get("/api/v1/users/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert (me.json()["given_name"], me.json()["family_name"]) == ("Paul", "Atreides")

    # list active users (an admin's view)
    other = await signup(client, "feydrautha")
    listed = await client.get("/api/v1/users", headers=bearer(admin))
    assert {u["username"] for u in listed.json()["items"]} >= {"paulatreides", "feydrautha"}
    assert (await client.get("/api/v1/users", headers=bearer(tokens))).status_code == 403

    # update own names; someone else's is 403
    own = await client.patch(
        f"/api/v1/users/{me.json()['id']}", headers=bearer(tokens), json={"given_name": "Muad'Dib"}
    )
    assert own.status_code == 200
    assert (own.json()["given_name"], own.json()["family_name"]) == ("Muad'Dib", "Atreides")
    theirs = await client.patch(
        f"/api/v1/users/{other['user']['id']}", headers=bearer(tokens), json={"given_name": "x"}
    )
    assert theirs.status_code == 403
    assert theirs.json()["code"] == "forbidden"

    # logout-all → old credentials 401 → sign in again
    second = await signin(client, "paulatreides")
    out = await client.post("/api/v1/auth/logout-all", headers=bearer(tokens))
    assert out.status_code == 200 and out.json()["sessions_revoked"] == 3  # signup, two signins
    for old in (tokens, second):
        assert (await client.get("/api/v1/users/me", headers=bearer(old))).status_code == 401
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": old["refresh_token"]}
        )
        assert refreshed.status_code == 400
    tokens = await signin(client, "paulatreides")
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 200

    # soft delete self → credentials and sign-in fail
    assert (await client.delete("/api/v1/users/me", headers=bearer(tokens))).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 401
    failed = await client.post(
        "/api/v1/auth/signin", json={"username": "paulatreides", "password": STRONG}
    )
    assert failed.status_code == 401 and failed.json()["code"] == "invalid_credentials"

    # the same username can't be taken silently, in any letter case
    again = await client.post(
        "/api/v1/auth/signup", json={"username": "PaulAtreides", "password": STRONG}
    )
    assert again.status_code == 409 and again.json()["code"] == "username_taken"
