"""README's permission table, tested as a table: every operation of the OpenAPI document is
in it or public, and each answers 403 to a credential lacking the permission it names."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from globeguard.identity.permissions import ALL_SCOPES
from tests.helpers import bearer, make_admin, signup
from tests.jobs.support import wait_job

README = Path(__file__).resolve().parents[2] / "README.md"
OPERATION = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`]*)`")
# Operations anyone may call: they authenticate in their own way (a password, a refresh
# token, a signed link, the log stream's bearer token) or expose nothing private.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/signup"),
    ("POST", "/api/v1/auth/signin"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    # The mfa_token from a held-back sign-in is the credential.
    ("POST", "/api/v1/auth/mfa/verify"),
    # A mailed single-use token is the credential (asking for one reveals nothing).
    ("POST", "/api/v1/auth/verify-email"),
    ("POST", "/api/v1/auth/password/forgot"),
    ("POST", "/api/v1/auth/password/reset"),
    ("POST", "/api/v1/auth/login-feedback"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/api/v1/jobs/{job_id}/download"),
    ("POST", "/api/v1/ingest/auth0-logs"),
}
# Second-factor changes need a session token too: an API key is refused whatever its scopes
# (403 `session_required`), so a leaked key cannot bind or remove an authenticator.
SESSION_ONLY = {
    ("POST", "/api/v1/mfa/totp"),
    ("POST", "/api/v1/mfa/totp/confirm"),
    ("DELETE", "/api/v1/mfa/totp"),
    ("POST", "/api/v1/mfa/recovery-codes"),
}
# The deleting request itself is checked, but after it the owner's keys are gone.
LAST = ("DELETE", "/api/v1/users/me")


def readme_table() -> dict[tuple[str, str], set[str]]:
    """(method, path) → the permissions README says it requires."""
    section = README.read_text().split("## Permissions", 1)[1].split("\n## ", 1)[0]
    table: dict[tuple[str, str], set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        permission = cells[0].strip("`")
        for method, path in OPERATION.findall(cells[2]):
            table.setdefault((method, path), set()).add(permission)
    return table


def test_readme_names_every_permission_and_only_known_ones():
    section = README.read_text().split("## Permissions", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([a-z_:]+)` \|", section, re.MULTILINE))
    assert named == set(ALL_SCOPES)


async def test_every_operation_is_in_the_table_or_public(app):
    table = readme_table()
    operations = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    assert operations - PUBLIC - table.keys() == set(), "add these to README's Permissions"
    assert table.keys() - operations == set(), "README names operations that do not exist"
    assert operations >= PUBLIC


def _request_for(method: str, path: str, other_user: str) -> dict:
    """A request valid in every way but the credential, so only authorization can refuse it."""
    values = {"user_id": other_user, "role_name": "user", "ip": "8.8.8.8"}
    url = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)
    request: dict = {"method": method, "url": url}
    bodies = {
        ("PATCH", "/api/v1/users/{user_id}"): {"given_name": "Bob"},
        ("POST", "/api/v1/users/{user_id}/roles"): {"role": "user"},
        ("POST", "/api/v1/mfa/totp/confirm"): {"code": "123456"},
        ("DELETE", "/api/v1/mfa/totp"): {"password": "not-the-password"},
        ("POST", "/api/v1/mfa/recovery-codes"): {"password": "not-the-password"},
        ("POST", "/v1/"): {
            "username": "bob",
            "unix_timestamp": 1514764800,
            "event_uuid": str(uuid.uuid4()),
            "ip_address": "8.8.8.8",
        },
        ("POST", "/api/v1/ingest/users"): {
            "user_id": "idp|1",
            "email": "one@example.com",
            "username": "one",
        },
    }
    if (method, path) == ("POST", "/api/v1/auth/introspect"):
        request["data"] = {"token": "x"}
    elif (method, path) == ("GET", "/api/v1/ingest/users"):
        request["params"] = {"message": '{"user_id": "idp|1", "email": "one@example.com"}'}
    elif method in ("POST", "PATCH", "PUT") or (method, path) in bodies:
        request["json"] = bodies.get((method, path), {})
    return request


async def _key(client, admin, scopes) -> dict[str, str]:
    created = await client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "table", "scopes": sorted(scopes)}
    )
    assert created.status_code == 201, created.text
    return {"X-API-KEY": created.json()["api_key"]}


@pytest.mark.parametrize("permission", sorted(ALL_SCOPES))
async def test_each_operation_refuses_a_credential_lacking_its_permission(
    client, container, permission
):
    table = readme_table()
    admin = bearer(await make_admin(client, container))
    bob = (await signup(client, "bob"))["user"]["id"]
    lacking = await _key(client, admin, ALL_SCOPES - {permission})
    needing = sorted(
        (op for op, required in table.items() if permission in required), key=lambda o: o == LAST
    )
    for method, path in needing:
        response = await client.request(
            **_request_for(method, path, bob), headers=lacking, follow_redirects=False
        )
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        # RFC 6749 §5.2 / RFC 7662: introspection answers OAuth JSON errors, not problems.
        oauth = (method, path) == ("POST", "/api/v1/auth/introspect")
        expected = "application/json" if oauth else "application/problem+json"
        assert response.headers["content-type"].startswith(expected), (method, path)
    # The same requests with the permission are not refused for want of it.
    holding = await _key(client, admin, ALL_SCOPES)
    for method, path in needing:
        response = await client.request(
            **_request_for(method, path, bob), headers=holding, follow_redirects=False
        )
        if (method, path) in SESSION_ONLY:
            assert response.json()["code"] == "session_required", (method, path, response.text)
            continue
        assert response.status_code != 403, (method, path, response.text)
        assert response.status_code < 500, (method, path, response.text)
        if response.status_code == 202:  # a job: ended before this test's clean-up
            await wait_job(container, response.json()["id"])
