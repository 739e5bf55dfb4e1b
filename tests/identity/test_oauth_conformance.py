"""Real OAuth client libraries against a live server on loopback: Authlib (Python) here, and
oauth4webapi (the engine of openid-client, Node) through tests/identity/oauth_js/. Each one
discovers the server (RFC 8414), runs the grants, reads OAuth errors (RFC 6749 §5.2) and
validates the JWT access tokens (RFC 9068) the way a relying party would."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from joserfc.jwk import KeySet

JS_PROJECT = Path(__file__).with_name("oauth_js")
ADMIN_PASSWORD = "oauth-admin-Passw0rd!"
USER_PASSWORD = "correct-horse-battery-staple-7"
FIRST_PARTY = "globeguard"
TOKEN_PATH = "/api/v1/auth/token"
INTROSPECT_PATH = "/api/v1/auth/introspect"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("oauth")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GLOBEGUARD_DATA_DIR": str(data),
        "GLOBEGUARD_DB__URL": f"sqlite+aiosqlite:///{data}/gg.db",
        "GLOBEGUARD_SECRET_KEY": "oauth-conformance-secret-not-for-production",
        "GLOBEGUARD_AUTH__ISSUER": base,
    }
    cli = [sys.executable, "-c", "from globeguard.cli import main; main()"]
    subprocess.run(
        [*cli, "admin", "create", "--username", "admin", "--password", ADMIN_PASSWORD],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    process = subprocess.Popen(
        [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def metadata(server) -> dict[str, Any]:
    response = httpx.get(f"{server}/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def machine(server) -> dict[str, Any]:
    """A machine client (its id is `ggc_…`) allowed to read users."""
    admin = httpx.post(
        f"{server}/api/v1/auth/signin", json={"username": "admin", "password": ADMIN_PASSWORD}
    ).json()
    created = httpx.post(
        f"{server}/api/v1/clients",
        json={"name": "conformance", "scopes": ["users:read"]},
        headers={"Authorization": f"Bearer {admin['access_token']}"},
    )
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def person(server) -> str:
    """A user with no roles beyond the default, signing in with the password grant."""
    made = httpx.post(
        f"{server}/api/v1/auth/signup", json={"username": "oauthuser", "password": USER_PASSWORD}
    )
    assert made.status_code == 201, made.text
    return "oauthuser"


def strict_basic(client, method, uri, headers, body):
    """client_secret_basic as RFC 6749 §2.3.1 spells it: each part form-urlencoded, so `_`
    goes out as `%5F` (what oauth4webapi sends; Authlib's own encoder leaves it raw)."""

    def encode(value: str) -> str:
        return quote(value, safe="").replace("_", "%5F").replace("-", "%2D").replace(".", "%2E")

    raw = f"{encode(client.client_id)}:{encode(client.client_secret)}"
    headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode()
    return uri, headers, body


class ServerJwtValidator(JWTBearerTokenValidator):  # type: ignore[misc]
    """Authlib's RFC 9068 validator with the server's published keys."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        super().__init__(issuer=metadata["issuer"], resource_server="globeguard")
        self.jwks = KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())

    def get_jwks(self) -> KeySet:
        return self.jwks


def validated_claims(metadata: dict[str, Any], access_token: str) -> dict[str, Any]:
    validator = ServerJwtValidator(metadata)
    claims = validator.authenticate_token(access_token)
    validator.validate_token(claims, scopes=None, request=None)
    return dict(claims)


def assert_rfc9068(claims: dict[str, Any], client_id: str) -> None:
    for required in ("iss", "exp", "aud", "sub", "client_id", "iat", "jti"):
        assert required in claims, required
    assert claims["client_id"] == client_id
    assert claims.get("roles") != []


# --- Authlib ---------------------------------------------------------------------------------


def test_metadata_matches_the_openid_document(server, metadata):
    openid = httpx.get(f"{server}/.well-known/openid-configuration").json()
    assert metadata["issuer"] == server
    for field in (
        "issuer",
        "token_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
    ):
        assert metadata[field] == openid[field], field
    assert metadata["token_endpoint"] == server + TOKEN_PATH
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert "code_challenge_methods_supported" not in metadata  # no authorization code flow


def test_authlib_password_and_refresh_grants(metadata, person):
    session = OAuth2Session(client_id=FIRST_PARTY, token_endpoint_auth_method="none")
    token = session.fetch_token(metadata["token_endpoint"], username=person, password=USER_PASSWORD)
    claims = validated_claims(metadata, token["access_token"])
    assert_rfc9068(claims, FIRST_PARTY)
    assert claims["preferred_username"] == person

    refreshed = session.refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"]
    )
    assert refreshed["refresh_token"] != token["refresh_token"]
    again = validated_claims(metadata, refreshed["access_token"])
    assert_rfc9068(again, FIRST_PARTY)
    assert again["sid"] == claims["sid"]


def test_authlib_reads_invalid_grant(metadata, person):
    session = OAuth2Session(client_id=FIRST_PARTY, token_endpoint_auth_method="none")
    with pytest.raises(OAuthError) as wrong_password:
        session.fetch_token(metadata["token_endpoint"], username=person, password="nope-" * 3)
    assert wrong_password.value.error == "invalid_grant"

    with pytest.raises(OAuthError) as unknown_refresh:
        session.refresh_token(metadata["token_endpoint"], refresh_token="ggr_unknown")
    assert unknown_refresh.value.error == "invalid_grant"


def test_authlib_client_credentials_with_basic_encoded(metadata, machine):
    assert "_" in machine["client_id"]
    session = OAuth2Session(
        machine["client_id"], machine["client_secret"], token_endpoint_auth_method="strict_basic"
    )
    session.register_client_auth_method(("strict_basic", strict_basic))
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    claims = validated_claims(metadata, token["access_token"])
    assert_rfc9068(claims, machine["client_id"])
    assert "roles" not in claims  # none, so absent rather than []
    assert claims["scope"] == "users:read"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials(metadata, machine, method):
    session = OAuth2Session(
        machine["client_id"], machine["client_secret"], token_endpoint_auth_method=method
    )
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert_rfc9068(validated_claims(metadata, token["access_token"]), machine["client_id"])


def test_authlib_reads_invalid_client(metadata, machine):
    session = OAuth2Session(machine["client_id"], "not-the-secret")
    with pytest.raises(OAuthError) as failed:
        session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert failed.value.error == "invalid_client"


# --- every error of the two endpoints is OAuth JSON ------------------------------------------


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _error_cases(machine: dict[str, Any]) -> list[tuple[str, dict[str, Any], int, str]]:
    cid, secret = machine["client_id"], machine["client_secret"]
    return [
        (TOKEN_PATH, {"data": {}}, 400, "invalid_request"),
        (TOKEN_PATH, {"data": {"grant_type": "password"}}, 400, "invalid_request"),
        (TOKEN_PATH, {"data": {"grant_type": "implicit"}}, 400, "unsupported_grant_type"),
        (
            TOKEN_PATH,
            {"data": {"grant_type": "password", "username": "nobody", "password": "x"}},
            400,
            "invalid_grant",
        ),
        (
            TOKEN_PATH,
            {"data": {"grant_type": "refresh_token", "refresh_token": "ggr_x"}},
            400,
            "invalid_grant",
        ),
        (TOKEN_PATH, {"data": {"grant_type": "client_credentials"}}, 401, "invalid_client"),
        (
            TOKEN_PATH,
            {"data": {"grant_type": "client_credentials"}, "headers": _basic(cid, "wrong")},
            401,
            "invalid_client",
        ),
        (
            TOKEN_PATH,
            {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": "Basic !"}},
            401,
            "invalid_client",
        ),
        (
            TOKEN_PATH,
            {
                "data": {"grant_type": "client_credentials", "scope": "users:write"},
                "headers": _basic(cid, secret),
            },
            400,
            "invalid_scope",
        ),
        (INTROSPECT_PATH, {"data": {}}, 400, "invalid_request"),
        (INTROSPECT_PATH, {"data": {"token": "x"}}, 401, "invalid_client"),
        (
            INTROSPECT_PATH,
            {"data": {"token": "x"}, "headers": _basic(cid, "wrong")},
            401,
            "invalid_client",
        ),
        (
            INTROSPECT_PATH,
            {"data": {"token": "x"}, "headers": {"Authorization": "Bearer not-a-token"}},
            401,
            "invalid_client",
        ),
    ]


def test_every_error_at_the_oauth_endpoints_is_oauth_json(server, machine):
    for path, request, status, error in _error_cases(machine):
        response = httpx.post(server + path, **request)
        label = f"{path} {request}"
        assert response.status_code == status, (label, response.text)
        assert response.headers["content-type"] == "application/json", label
        body = response.json()
        assert body["error"] == error, (label, body)
        assert body["error_description"], label
        if status == 401 and "Basic" in request.get("headers", {}).get("Authorization", "Basic"):
            assert response.headers["www-authenticate"].startswith("Basic"), label


def test_other_routes_keep_problem_details(server):
    response = httpx.post(f"{server}/api/v1/auth/refresh", json={"refresh_token": "ggr_x"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def test_basic_credentials_raw_and_form_encoded(server, machine):
    cid, secret = machine["client_id"], machine["client_secret"]
    encoded = cid.replace("_", "%5F"), secret.replace("_", "%5F").replace("-", "%2D")
    for form in ((cid, secret), encoded):
        response = httpx.post(server + INTROSPECT_PATH, data={"token": "x"}, headers=_basic(*form))
        assert response.status_code == 200, (form, response.text)
        assert response.json() == {"active": False}


# --- oauth4webapi (Node) ---------------------------------------------------------------------


def test_oauth4webapi(server, machine):
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Node is missing")
        pytest.skip("Node.js is not installed: the oauth4webapi check needs it")
    if not (JS_PROJECT / "node_modules" / "oauth4webapi").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_PROJECT, check=True, timeout=300
        )
    env = {
        **os.environ,
        "ISSUER": server,
        "CLIENT_ID": machine["client_id"],
        "CLIENT_SECRET": machine["client_secret"],
    }
    run = subprocess.run(
        [node, "check.mjs"], cwd=JS_PROJECT, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["client_id"] == machine["client_id"]
    assert report["invalid_client_error"] == "invalid_client"
