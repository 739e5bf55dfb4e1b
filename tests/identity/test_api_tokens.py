"""The User Authentication Service journey over HTTP: access tokens (ES256 JWTs), their
rejection when forged or stale, key rotation, refresh-token rotation with reuse detection, the
OAuth2 token endpoint, logout and RFC 7662 introspection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from globeguard.boot import reload_keys
from tests.helpers import STRONG, bearer, make_admin, signin, signup

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
TOKEN = "/api/v1/auth/token"
INTROSPECT = "/api/v1/auth/introspect"


# --- helpers -------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def user_claims(token: str) -> dict[str, Any]:
    """The claims a real token carries that the key ring does not add itself."""
    raw = claims_of(token)
    return {k: raw[k] for k in ("sub", "sid", "scope", "roles", "ver", "gty", "preferred_username")}


def sign_with_current_key(container, payload: dict[str, Any], **headers: Any) -> str:
    signing = container.ring.signing
    return jwt.encode(
        payload,
        signing.private_key,
        algorithm="ES256",
        headers={"kid": signing.kid, "typ": "at+jwt", **headers},
    )


def hs256_token(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(digest)}"


async def assert_rejected(client: httpx.AsyncClient, token: str, code: str = "invalid_token"):
    response = await client.get(ME, headers=auth(token))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    return response


async def jwks_kids(client: httpx.AsyncClient) -> set[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


async def audit_types(client: httpx.AsyncClient, admin: dict[str, Any], **params: Any) -> list:
    response = await client.get("/api/v1/audit", headers=bearer(admin), params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def create_client(
    client: httpx.AsyncClient, admin: dict[str, Any], scopes: list[str]
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/clients", headers=bearer(admin), json={"name": "reporting", "scopes": scopes}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def client_token(client: httpx.AsyncClient, machine: dict[str, Any], **form: str) -> str:
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", **form},
        headers=basic(machine["client_id"], machine["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# --- signup → JWT → protected route ----------------------------------------------------------


async def test_signup_returns_a_session_whose_jwt_opens_protected_routes(client):
    created = await client.post(
        "/api/v1/auth/signup", json={"username": "leto", "password": STRONG}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    for member in ("access_token", "refresh_token", "user_id", "username", "user"):
        assert body[member], member
    assert body["token_type"] == "Bearer"
    assert body["username"] == "leto" and body["user"]["username"] == "leto"
    assert body["user_id"] == body["user"]["id"]

    me = await client.get(ME, headers=bearer(body))
    assert me.status_code == 200
    assert me.json()["id"] == body["user_id"]


async def test_missing_credentials_are_not_authenticated(client):
    response = await client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_access_token_claims_and_header(client):
    tokens = await signup(client, "jessica")
    claims = claims_of(tokens["access_token"])
    config = (await client.get("/.well-known/openid-configuration")).json()

    assert claims["iss"] == config["issuer"]
    assert claims["aud"] == "globeguard"
    assert claims["sub"] == tokens["user_id"]
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]
    uuid.UUID(claims["sid"])
    assert "profile" in claims["scope"].split()
    assert claims["roles"] == ["user"]
    assert isinstance(claims["ver"], int)
    assert tokens["expires_in"] == 900

    header = header_of(tokens["access_token"])
    assert header["alg"] == "ES256"
    assert header["kid"] in await jwks_kids(client)

    # every token gets its own id
    again = await signin(client, "jessica")
    assert claims_of(again["access_token"])["jti"] != claims["jti"]
    assert claims_of(again["access_token"])["sid"] != claims["sid"]


async def test_discovery_documents(client):
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["issuer"]
    assert config["jwks_uri"].endswith("/.well-known/jwks.json")
    assert config["token_endpoint"].endswith("/api/v1/auth/token")
    assert config["jwks_uri"].startswith(config["issuer"].rstrip("/"))

    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys, "the JWKS publishes at least the current key"
    for key in keys:
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
        assert "d" not in key, "a private key component was published"


# --- forged and stale tokens -----------------------------------------------------------------


async def test_tampered_signature_is_rejected(client):
    tokens = await signup(client, "alia")
    head, payload, signature = tokens["access_token"].split(".")
    # A character in the middle: the last one may only carry padding bits.
    i = len(signature) // 2
    flipped = signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1 :]
    await assert_rejected(client, f"{head}.{payload}.{flipped}")
    # the genuine token still works
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200


async def test_tampered_payload_is_rejected(client):
    tokens = await signup(client, "ghanima")
    head, _, signature = tokens["access_token"].split(".")
    claims = claims_of(tokens["access_token"])
    forged = b64url_json({**claims, "scope": claims["scope"] + " users:read", "roles": ["admin"]})
    await assert_rejected(client, f"{head}.{forged}.{signature}")


async def test_alg_none_token_is_rejected(client):
    tokens = await signup(client, "leto2")
    kid = header_of(tokens["access_token"])["kid"]
    payload = tokens["access_token"].split(".")[1]
    for alg in ("none", "None", "NONE"):
        header = b64url_json({"alg": alg, "kid": kid, "typ": "JWT"})
        await assert_rejected(client, f"{header}.{payload}.")


async def test_hs256_tokens_are_rejected(client, container):
    tokens = await signup(client, "duncan")
    claims = claims_of(tokens["access_token"])
    kid = header_of(tokens["access_token"])["kid"]
    public = container.ring.verifying[kid].public_key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_bytes = json.dumps(container.ring.verifying[kid].public_jwk).encode()
    for secret in (pem, jwk_bytes, secrets.token_bytes(32)):
        forged = hs256_token({"alg": "HS256", "kid": kid, "typ": "JWT"}, claims, secret)
        await assert_rejected(client, forged)


async def test_expired_token_is_rejected(client, container):
    tokens = await signup(client, "gurney")
    expired, _ = container.ring.sign(user_claims(tokens["access_token"]), timedelta(seconds=-60))
    await assert_rejected(client, expired)
    # the same claims with a live expiry pass: it is the expiry that fails the token
    live, _ = container.ring.sign(user_claims(tokens["access_token"]), timedelta(minutes=5))
    assert (await client.get(ME, headers=auth(live))).status_code == 200


async def test_wrong_audience_and_issuer_are_rejected(client, container):
    tokens = await signup(client, "thufir")
    claims = claims_of(tokens["access_token"])
    # sanity: re-signing the genuine claims with the real key is accepted
    resigned = sign_with_current_key(container, {**claims, "jti": uuid.uuid4().hex})
    assert (await client.get(ME, headers=auth(resigned))).status_code == 200

    await assert_rejected(client, sign_with_current_key(container, {**claims, "aud": "other-api"}))
    await assert_rejected(
        client, sign_with_current_key(container, {**claims, "iss": "https://evil.example"})
    )
    missing_aud = {k: v for k, v in claims.items() if k != "aud"}
    await assert_rejected(client, sign_with_current_key(container, missing_aud))
    missing_ver = {k: v for k, v in claims.items() if k != "ver"}
    await assert_rejected(client, sign_with_current_key(container, missing_ver))


async def test_unknown_kid_is_rejected(client):
    tokens = await signup(client, "stilgar")
    claims = claims_of(tokens["access_token"])
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(
        claims,
        stranger,
        algorithm="ES256",
        headers={"kid": f"gg-{secrets.token_hex(8)}", "typ": "at+jwt"},
    )
    response = await assert_rejected(client, forged)
    assert "unknown" in response.json()["detail"]
    # a stranger's key under a real kid fails the signature instead
    real_kid = header_of(tokens["access_token"])["kid"]
    forged = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": real_kid})
    await assert_rejected(client, forged)


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "", "e30.e30.", "x" * 5000])
async def test_garbage_bearer_is_rejected_not_crashed(client, garbage):
    response = await client.get(ME, headers={"Authorization": f"Bearer {garbage}"})
    assert response.status_code == 401
    assert response.json()["code"] in {"invalid_token", "not_authenticated"}


async def test_token_of_soft_deleted_user_is_rejected(client, container):
    admin = await make_admin(client, container)
    tokens = await signup(client, "chani")
    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200
    deleted = await client.delete(f"/api/v1/users/{tokens['user_id']}", headers=bearer(admin))
    assert deleted.status_code == 204
    await assert_rejected(client, tokens["access_token"])

    # A token freshly signed with the user's *current* version and no session still fails:
    # the account's status alone stops it.
    user = (await client.get(f"/api/v1/users/{tokens['user_id']}", headers=bearer(admin))).json()
    assert user["status"] == "deleted"
    from globeguard.identity.models import User

    async with container.db.read() as session:
        version = (await session.get(User, uuid.UUID(tokens["user_id"]))).token_version
    claims = {**user_claims(tokens["access_token"]), "ver": version}
    claims.pop("sid")
    minted, _ = container.ring.sign(claims, timedelta(minutes=5))
    await assert_rejected(client, minted)


# --- key rotation ----------------------------------------------------------------------------


async def test_key_rotation_keeps_old_tokens_and_publishes_successor(client, container):
    tokens = await signup(client, "liet")
    old_kid = header_of(tokens["access_token"])["kid"]
    before = await jwks_kids(client)
    assert old_kid in before and len(before) == 2  # current and next

    async with container.db.transaction() as session:
        retired, promoted = await container.signing_keys.rotate(session)
    await reload_keys(container)
    assert retired == old_kid
    assert promoted in before, "the key promoted to current was published before it signed"

    after = await jwks_kids(client)
    new_next = after - before
    assert len(new_next) == 1, after
    assert after == {old_kid, promoted, *new_next}

    assert (await client.get(ME, headers=bearer(tokens))).status_code == 200
    fresh = await signin(client, "liet")
    assert header_of(fresh["access_token"])["kid"] == promoted
    assert (await client.get(ME, headers=bearer(fresh))).status_code == 200
    refreshed = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert header_of(refreshed.json()["access_token"])["kid"] == promoted


# --- refresh tokens --------------------------------------------------------------------------


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


async def test_refresh_rotates_and_reuse_of_a_grandparent_ends_the_family(client, container):
    admin = await make_admin(client, container)
    first = await signup(client, "irulan")
    other_session = await signin(client, "irulan")

    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert claims_of(second["access_token"])["sid"] == claims_of(first["access_token"])["sid"]
    assert (await client.get(ME, headers=bearer(second))).status_code == 200

    # Two tabs refreshed with the same token: the second one within the grace window is fine.
    racing_tab = await refresh(client, first["refresh_token"])
    assert racing_tab.status_code == 200, racing_tab.text

    # The child is used; the parent shows up again → someone holds a stolen copy.
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200
    third = third.json()
    replayed = await refresh(client, first["refresh_token"])
    assert replayed.status_code == 400
    assert replayed.json()["code"] == "invalid_grant"
    assert replayed.json()["error"] == "invalid_grant"

    # the whole family is gone: newest refresh token and every access token of the session
    newest = await refresh(client, third["refresh_token"])
    assert newest.status_code == 400 and newest.json()["code"] == "invalid_grant"
    for access in (first, second, third, racing_tab.json()):
        await assert_rejected(client, access["access_token"])
    # ... but only that family: the user's other session is untouched
    assert (await client.get(ME, headers=bearer(other_session))).status_code == 200

    events = await audit_types(
        client, admin, user_id=first["user_id"], type="user.refresh_token.reused"
    )
    assert len(events) == 1
    assert events[0]["payload"]["session_id"] == claims_of(first["access_token"])["sid"]


async def test_reuse_after_the_grace_window_ends_the_family(client, container):
    # TokenIssuer reads this from the settings object at call time.
    assert container.auth.issuer.settings is container.settings.auth
    container.settings.auth.refresh_reuse_grace = timedelta(0)
    admin = await make_admin(client, container)
    first = await signup(client, "wensicia")

    second = await refresh(client, first["refresh_token"])
    assert second.status_code == 200
    second = second.json()
    replayed = await refresh(client, first["refresh_token"])
    assert replayed.status_code == 400
    assert replayed.json()["code"] == "invalid_grant"

    assert (await refresh(client, second["refresh_token"])).status_code == 400
    await assert_rejected(client, second["access_token"])
    await assert_rejected(client, first["access_token"])

    types = [e["type"] for e in await audit_types(client, admin, user_id=first["user_id"])]
    assert "user.refresh_token.reused" in types


@pytest.mark.parametrize("presented", ["ggr_unknown", "garbage", " "])
async def test_unknown_refresh_token_is_invalid_grant(client, presented):
    response = await refresh(client, presented)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_grant"


async def test_refresh_after_logout_all_fails(client):
    tokens = await signup(client, "farad")
    out = await client.post("/api/v1/auth/logout-all", headers=bearer(tokens))
    assert out.status_code == 200
    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 400 and response.json()["code"] == "invalid_grant"


# --- OAuth2 token endpoint -------------------------------------------------------------------


async def test_password_and_refresh_token_grants(client):
    await signup(client, "hwi")
    granted = await client.post(
        TOKEN, data={"grant_type": "password", "username": "hwi", "password": STRONG}
    )
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["refresh_token"].startswith("ggr_")
    assert (await client.get(ME, headers=bearer(body))).status_code == 200

    refreshed = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != body["refresh_token"]
    assert (await client.get(ME, headers=bearer(refreshed.json()))).status_code == 200


async def test_password_grant_with_narrower_scope(client, container):
    await make_admin(client, container, "root")
    granted = await client.post(
        TOKEN,
        data={"grant_type": "password", "username": "root", "password": STRONG, "scope": "profile"},
    )
    assert granted.status_code == 200
    assert granted.json()["scope"] == "profile"
    narrow = granted.json()
    assert (await client.get(ME, headers=bearer(narrow))).status_code == 200
    assert (await client.get("/api/v1/users", headers=bearer(narrow))).status_code == 403


async def test_token_endpoint_errors_follow_rfc6749(client):
    await signup(client, "tleilax")
    wrong = await client.post(
        TOKEN, data={"grant_type": "password", "username": "tleilax", "password": "wrong-" + STRONG}
    )
    assert wrong.status_code == 400
    assert wrong.headers["content-type"] == "application/json"
    assert wrong.json()["error"] == "invalid_grant"
    assert wrong.json()["error_description"]

    unknown = await client.post(
        TOKEN, data={"grant_type": "password", "username": "nobody", "password": STRONG}
    )
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"

    unsupported = await client.post(TOKEN, data={"grant_type": "implicit"})
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"

    incomplete = await client.post(TOKEN, data={"grant_type": "password", "username": "tleilax"})
    assert incomplete.status_code == 400 and incomplete.json()["error"] == "invalid_request"

    bad_refresh = await client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": "ggr_nope"}
    )
    assert bad_refresh.status_code == 400 and bad_refresh.json()["error"] == "invalid_grant"


async def test_client_credentials_grant(client, container):
    admin = await make_admin(client, container)
    machine = await create_client(client, admin, ["users:read"])
    assert machine["client_secret"]
    assert machine["scopes"] == ["users:read"]

    listed = await client.get("/api/v1/clients", headers=bearer(admin))
    assert listed.status_code == 200
    assert [c["client_id"] for c in listed.json()] == [machine["client_id"]]
    assert "client_secret" not in listed.json()[0]
    assert machine["client_secret"] not in listed.text

    # Basic auth
    token = await client_token(client, machine)
    claims = claims_of(token)
    assert claims["sub"] == machine["client_id"] and claims["scope"] == "users:read"
    # form fields (client_secret_post)
    posted = await client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": machine["client_id"],
            "client_secret": machine["client_secret"],
            "scope": "users:read",
        },
    )
    assert posted.status_code == 200, posted.text
    assert "refresh_token" not in posted.json()

    wrong = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(machine["client_id"], "not-the-secret"),
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    nobody = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic("ggc_nobody", machine["client_secret"]),
    )
    assert nobody.status_code == 401 and nobody.json()["error"] == "invalid_client"
    anonymous = await client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"

    too_much = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": "users:read users:write"},
        headers=basic(machine["client_id"], machine["client_secret"]),
    )
    assert too_much.status_code == 400
    assert too_much.json()["error"] == "invalid_scope"

    users = await client.get("/api/v1/users", headers=auth(token))
    assert users.status_code == 200
    me = await client.get(ME, headers=auth(token))
    assert me.status_code == 401 and me.json()["code"] == "user_required"
    blocked = await client.post(f"/api/v1/users/{admin['user_id']}/block", headers=auth(token))
    assert blocked.status_code == 403

    revoked = await client.delete(f"/api/v1/clients/{machine['id']}", headers=bearer(admin))
    assert revoked.status_code == 204
    await assert_users_rejected(client, token)
    again = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(machine["client_id"], machine["client_secret"]),
    )
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"


async def assert_users_rejected(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/api/v1/users", headers=auth(token))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "invalid_token"


# --- logout ----------------------------------------------------------------------------------


async def test_logout_ends_only_this_session(client):
    first = await signup(client, "rabban")
    second = await signin(client, "rabban")

    out = await client.post("/api/v1/auth/logout", headers=bearer(first))
    assert out.status_code == 200
    assert out.json()["sessions_revoked"] == 1

    await assert_rejected(client, first["access_token"])
    assert (await refresh(client, first["refresh_token"])).status_code == 400
    assert (await client.get(ME, headers=bearer(second))).status_code == 200
    assert (await refresh(client, second["refresh_token"])).status_code == 200


# --- introspection ---------------------------------------------------------------------------


async def test_introspection(client, container):
    admin = await make_admin(client, container)
    machine = await create_client(client, admin, ["users:read"])
    creds = basic(machine["client_id"], machine["client_secret"])
    tokens = await signup(client, "mohiam")

    live = await client.post(INTROSPECT, data={"token": tokens["access_token"]}, headers=creds)
    assert live.status_code == 200, live.text
    body = live.json()
    assert body["active"] is True
    assert body["sub"] == tokens["user_id"]
    assert "profile" in body["scope"].split()
    assert body["exp"] == claims_of(tokens["access_token"])["exp"]

    # client_secret_post works too
    posted = await client.post(
        INTROSPECT,
        data={
            "token": tokens["access_token"],
            "client_id": machine["client_id"],
            "client_secret": machine["client_secret"],
        },
    )
    assert posted.status_code == 200 and posted.json()["active"] is True

    for garbage in ("garbage", "a.b.c", "ggr_" + "x" * 40):
        response = await client.post(INTROSPECT, data={"token": garbage}, headers=creds)
        assert response.status_code == 200
        assert response.json() == {"active": False}

    expired, _ = container.ring.sign(user_claims(tokens["access_token"]), timedelta(seconds=-60))
    response = await client.post(INTROSPECT, data={"token": expired}, headers=creds)
    assert response.json() == {"active": False}

    assert (await client.post("/api/v1/auth/logout", headers=bearer(tokens))).status_code == 200
    response = await client.post(INTROSPECT, data={"token": tokens["access_token"]}, headers=creds)
    assert response.status_code == 200
    assert response.json() == {"active": False}

    anonymous = await client.post(INTROSPECT, data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401
    wrong = await client.post(
        INTROSPECT,
        data={"token": tokens["access_token"]},
        headers=basic(machine["client_id"], "wrong"),
    )
    assert wrong.status_code == 401
    # an ordinary user's token is not enough to introspect
    user = await signin(client, "mohiam")
    forbidden = await client.post(
        INTROSPECT, data={"token": user["access_token"]}, headers=bearer(user)
    )
    assert forbidden.status_code == 403
