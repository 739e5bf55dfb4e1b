"""Accounts over HTTP: sign-up validation, sign-in (by username or email), indistinguishable
failures, blocked accounts, bcrypt imports upgraded to argon2id, the audit trail, metadata."""

from __future__ import annotations

import uuid
from typing import Any

import bcrypt
import httpx
import pytest

from globeguard.identity.models import User
from globeguard.identity.users.repository import RoleRepository
from tests.helpers import STRONG, bearer, make_admin, signin, signup

SIGNUP = "/api/v1/auth/signup"
SIGNIN = "/api/v1/auth/signin"
SECRETISH = "Unmistakable-Secret-Passphrase-42"


async def post_signup(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(SIGNUP, json=body)


# --- sign-up validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(
            {"username": "ab", "password": SECRETISH}, "validation_failed", id="username-too-short"
        ),
        pytest.param(
            {"username": "a" * 65, "password": SECRETISH},
            "validation_failed",
            id="username-too-long",
        ),
        pytest.param(
            {"username": "bad name", "password": SECRETISH},
            "validation_failed",
            id="username-space",
        ),
        pytest.param(
            {"username": "bad!name", "password": SECRETISH}, "validation_failed", id="username-bang"
        ),
        pytest.param(
            {"username": "me@example.com", "password": SECRETISH},
            "validation_failed",
            id="username-at-sign",
        ),
        pytest.param(
            {"username": "-leading", "password": SECRETISH},
            "validation_failed",
            id="username-leading-dash",
        ),
        pytest.param(
            {"username": "j\u00f6rg-user", "password": SECRETISH},
            "validation_failed",
            id="username-non-ascii",
        ),
        pytest.param(
            {"username": "shorty", "password": "Ab3$x9!"},
            "validation_failed",
            id="password-7-chars",
        ),
        pytest.param(
            {"username": "longpw", "password": SECRETISH + "x" * 129},
            "validation_failed",
            id="password-over-128",
        ),
        pytest.param(
            {"username": "Cassandra-Vale-1984", "password": "cassandra-vale-1984"},
            "weak_password",
            id="password-equals-username-any-case",
        ),
        pytest.param(
            {"username": "weakling", "password": "password123"},
            "password_too_common",
            id="password-common",
        ),
        pytest.param(
            {"username": "weakling", "password": "12345678"},
            "password_too_common",
            id="password-digits",
        ),
        pytest.param(
            {"username": "bademail", "password": SECRETISH, "email": "not-an-email"},
            "validation_failed",
            id="email-invalid",
        ),
        pytest.param(
            {"username": "extra", "password": SECRETISH, "is_admin": True},
            "validation_failed",
            id="unknown-field",
        ),
        pytest.param(
            {"username": "meta", "password": SECRETISH, "user_metadata": "x"},
            "validation_failed",
            id="metadata-not-object",
        ),
    ],
)
async def test_signup_rejects(client, body, code):
    response = await post_signup(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["password"] not in response.text, "the password was echoed back"
    # nothing was created
    probe = await client.post(
        SIGNIN, json={"username": body["username"], "password": body["password"]}
    )
    assert probe.status_code in (401, 422)


async def test_length_boundaries_are_accepted(client):
    eight = "Zq8#vLp2"
    for username, password in (("eightchars", eight), ("abc", SECRETISH), ("a" * 64, SECRETISH)):
        response = await post_signup(client, {"username": username, "password": password})
        assert response.status_code == 201, (username, response.text)
    await signin(client, "eightchars", eight)


@pytest.mark.parametrize("length", [72, 73, 100, 128])
async def test_long_passwords_up_to_128_are_accepted(client, length):
    """The schema allows 8 to 128 characters, so every length up to 128 must sign up and in."""
    password = ("Zq8#vLp2-correct-horse-battery-" * 5)[:length]
    assert len(password) == length
    response = await post_signup(client, {"username": f"long{length}", "password": password})
    assert response.status_code == 201, response.text
    await signin(client, f"long{length}", password)


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        pytest.param({}, {"username", "password"}, id="empty"),
        pytest.param({"username": "onlyname"}, {"password"}, id="no-password"),
        pytest.param({"password": SECRETISH}, {"username"}, id="no-username"),
    ],
)
async def test_missing_fields_are_named(client, body, missing):
    response = await post_signup(client, body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_failed"
    for field in missing:
        assert field in problem["detail"]
    named = {str(err["loc"][-1]) for err in problem["errors"]}
    assert missing <= named
    assert SECRETISH not in response.text


async def test_non_json_body_is_a_validation_failure(client):
    response = await client.post(
        SIGNUP,
        content=b"username=x&password=" + SECRETISH.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert SECRETISH not in response.text


async def test_duplicate_username_in_any_case(client):
    await signup(client, "Muaddib")
    for variant in ("Muaddib", "muaddib", "MUADDIB", "mUaDdIb"):
        response = await post_signup(client, {"username": variant, "password": STRONG})
        assert response.status_code == 409, variant
        assert response.json()["code"] == "username_taken"


async def test_duplicate_email_in_any_case(client):
    await signup(client, "firstuser", email="Shared.Mail@Example.com")
    for variant in ("shared.mail@example.com", "SHARED.MAIL@EXAMPLE.COM"):
        response = await post_signup(
            client, {"username": f"u{uuid.uuid4().hex[:8]}", "password": STRONG, "email": variant}
        )
        assert response.status_code == 409, variant
        assert response.json()["code"] == "email_taken"


async def test_aliases_are_accepted(client):
    created = await post_signup(
        client,
        {
            "user_name": "aliasuser",
            "password": STRONG,
            "first_name": "Lady",
            "last_name": "Jessica",
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()["user"]
    assert user["username"] == "aliasuser"
    assert (user["given_name"], user["family_name"]) == ("Lady", "Jessica")
    tokens = await signin(client, "aliasuser")
    me = (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    assert (me["given_name"], me["family_name"]) == ("Lady", "Jessica")


async def test_signup_response_never_carries_the_password(client):
    created = await post_signup(client, {"username": "carefuluser", "password": SECRETISH})
    assert created.status_code == 201
    assert SECRETISH not in created.text
    assert "password" not in created.json()["user"]
    assert "password_hash" not in created.json()["user"]


# --- sign-in ---------------------------------------------------------------------------------


async def test_signin_by_username_and_email_case_insensitively(client):
    created = await signup(client, "Stilgar", email="Stilgar@Sietch.Tabr")
    for identifier in (
        "Stilgar",
        "stilgar",
        "STILGAR",
        "stilgar@sietch.tabr",
        "STILGAR@SIETCH.TABR",
        "Stilgar@Sietch.Tabr",
    ):
        tokens = await signin(client, identifier)
        assert tokens["user_id"] == created["user_id"], identifier
    email_alias = await client.post(
        SIGNIN, json={"email": "stilgar@sietch.tabr", "password": STRONG}
    )
    assert email_alias.status_code == 200
    user_alias = await client.post(SIGNIN, json={"user_name": "stilgar", "password": STRONG})
    assert user_alias.status_code == 200


async def test_unknown_user_and_wrong_password_are_indistinguishable(client):
    await signup(client, "realuser")
    unknown = await client.post(SIGNIN, json={"username": "ghostuser", "password": STRONG})
    wrong = await client.post(SIGNIN, json={"username": "realuser", "password": "nope-" + STRONG})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["code"] == "invalid_credentials"
    assert unknown.content == wrong.content
    assert unknown.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")
    # same for email identifiers
    unknown_mail = await client.post(SIGNIN, json={"username": "ghost@x.io", "password": STRONG})
    assert unknown_mail.content == wrong.content


async def test_blocked_user_cannot_sign_in(client, container):
    admin = await make_admin(client, container)
    victim = await signup(client, "blockme")
    blocked = await client.post(f"/api/v1/users/{victim['user_id']}/block", headers=bearer(admin))
    assert blocked.status_code == 200

    response = await client.post(SIGNIN, json={"username": "blockme", "password": STRONG})
    assert response.status_code == 403
    assert response.json()["code"] == "account_blocked"
    # a wrong password does not reveal that the account exists and is blocked
    wrong = await client.post(SIGNIN, json={"username": "blockme", "password": "x-" + STRONG})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"


# --- bcrypt imports --------------------------------------------------------------------------


async def insert_user(container, username: str, password_hash: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with container.db.transaction() as session:
        session.add(
            User(
                id=user_id,
                username=username,
                username_key=username.lower(),
                email=None,
                email_key=None,
                password_hash=password_hash,
                user_metadata={},
                app_metadata={},
            )
        )
        await session.flush()
        roles = RoleRepository(session)
        role = await roles.by_name("user")
        assert role is not None
        roles.assign(user_id, role.id)
    return user_id


async def stored_hash(container, user_id: uuid.UUID) -> str:
    async with container.db.read() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.password_hash


@pytest.mark.parametrize("prefix", [b"2b", b"2a"])
async def test_bcrypt_hash_signs_in_and_is_upgraded(client, container, prefix):
    legacy = bcrypt.hashpw(SECRETISH.encode(), bcrypt.gensalt(rounds=4, prefix=prefix)).decode()
    assert legacy.startswith(f"${prefix.decode()}$")
    user_id = await insert_user(container, "imported", legacy)

    wrong = await client.post(SIGNIN, json={"username": "imported", "password": "x" + SECRETISH})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    assert await stored_hash(container, user_id) == legacy

    tokens = await signin(client, "imported", SECRETISH)
    assert tokens["user_id"] == str(user_id)
    assert tokens["user"]["roles"] == ["user"]
    upgraded = await stored_hash(container, user_id)
    assert upgraded.startswith("$argon2id$")
    # the upgraded hash keeps working, and still only for the right password
    await signin(client, "imported", SECRETISH)
    again = await client.post(SIGNIN, json={"username": "imported", "password": "x" + SECRETISH})
    assert again.status_code == 401


# --- audit trail -----------------------------------------------------------------------------


async def test_signin_outcomes_are_audited(client, container):
    admin = await make_admin(client, container)
    user = await signup(client, "audited")
    failed = await client.post(
        SIGNIN,
        json={"username": "audited", "password": "no-" + STRONG},
        headers={"user-agent": "audit-test/1"},
    )
    assert failed.status_code == 401
    await signin(client, "audited")

    response = await client.get(
        "/api/v1/audit", headers=bearer(admin), params={"user_id": user["user_id"]}
    )
    assert response.status_code == 200
    items = response.json()["items"]
    types = [e["type"] for e in items]
    assert "user.signin.failed" in types
    assert "user.signin.succeeded" in types
    assert types.index("user.signin.failed") < types.index("user.signin.succeeded")
    assert all(e["user_id"] == user["user_id"] for e in items)
    failure = next(e for e in items if e["type"] == "user.signin.failed")
    assert failure["payload"]["reason"] == "invalid_credentials"
    assert failure["payload"]["user_agent"] == "audit-test/1"
    assert failure["payload"]["ip"] == "203.0.113.7"
    assert STRONG not in response.text, "a password reached the audit trail"

    only_failed = await client.get(
        "/api/v1/audit", headers=bearer(admin), params={"type": "user.signin.failed"}
    )
    assert {e["type"] for e in only_failed.json()["items"]} == {"user.signin.failed"}

    denied = await client.get(
        "/api/v1/audit", headers=bearer(user), params={"user_id": user["user_id"]}
    )
    assert denied.status_code == 403


async def test_unknown_user_signin_is_audited_as_anonymous(client, container):
    admin = await make_admin(client, container)
    response = await client.post(SIGNIN, json={"username": "phantom", "password": STRONG})
    assert response.status_code == 401
    events = (
        await client.get(
            "/api/v1/audit", headers=bearer(admin), params={"type": "user.signin.failed"}
        )
    ).json()["items"]
    assert any(
        e["payload"]["identifier"] == "phantom" and e["actor"] == "anonymous" for e in events
    )


# --- metadata --------------------------------------------------------------------------------


def big_metadata() -> dict[str, str]:
    return {"blob": "x" * (16 * 1024)}


async def test_metadata_size_limit(client):
    response = await post_signup(
        client, {"username": "hoarder", "password": STRONG, "user_metadata": big_metadata()}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "metadata_too_large"

    tokens = await signup(client, "hoarder", user_metadata={"a": 1})
    patched = await client.patch(
        "/api/v1/users/me", headers=bearer(tokens), json={"user_metadata": big_metadata()}
    )
    assert patched.status_code == 422
    assert patched.json()["code"] == "metadata_too_large"
    me = (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    assert me["user_metadata"] == {"a": 1}


async def test_user_metadata_patch_merges_top_level_keys(client):
    tokens = await signup(
        client, "merger", user_metadata={"theme": "dark", "lang": "en", "prefs": {"a": 1, "b": 2}}
    )
    patched = await client.patch(
        "/api/v1/users/me",
        headers=bearer(tokens),
        json={"user_metadata": {"lang": None, "tier": "free", "prefs": {"c": 3}}},
    )
    assert patched.status_code == 200, patched.text
    # top-level merge: `prefs` is replaced as a whole, `lang` removed, `theme` kept
    assert patched.json()["user_metadata"] == {"theme": "dark", "tier": "free", "prefs": {"c": 3}}
    me = (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    assert me["user_metadata"] == patched.json()["user_metadata"]


async def test_app_metadata_is_admin_only(client, container):
    admin = await make_admin(client, container)
    tokens = await signup(client, "plainuser")
    url = f"/api/v1/users/{tokens['user_id']}"

    own = await client.patch(url, headers=bearer(tokens), json={"app_metadata": {"plan": "pro"}})
    assert own.status_code == 403
    via_me = await client.patch(
        "/api/v1/users/me", headers=bearer(tokens), json={"app_metadata": {"plan": "pro"}}
    )
    assert via_me.status_code in (403, 422)
    me = (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    assert me["app_metadata"] == {}

    by_admin = await client.patch(
        url, headers=bearer(admin), json={"app_metadata": {"plan": "pro"}}
    )
    assert by_admin.status_code == 200, by_admin.text
    assert by_admin.json()["app_metadata"] == {"plan": "pro"}
    me = (await client.get("/api/v1/users/me", headers=bearer(tokens))).json()
    assert me["app_metadata"] == {"plan": "pro"}
