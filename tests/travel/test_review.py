"""`POST /api/v1/logins/{id}/review`: an admin's `safe` or `compromised` on one login.

`safe` makes the login's place trusted and announces `login.cleared`; `compromised` cuts the
user off (access and refresh tokens, API keys), requires a new password before the old one
signs in again, and announces `user.compromised`. A tiny GeoIP database places the addresses
in New York and London; the app trusts the test client as a proxy, so X-Forwarded-For picks a
sign-in's address.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import bcrypt
import httpx
import pytest
from sqlalchemy import select, update

from globeguard.app import create_app
from globeguard.events.models import OutboxEvent
from globeguard.identity.models import User
from globeguard.travel.models import LoginEvent
from globeguard.wiring import Container
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin, signin, signup
from tests.jobs.support import import_file, ndjson
from tests.support.mmdb import city_record, write_city_db

NY, LONDON = "11.1.1.1", "11.3.3.3"
T0 = 1_700_000_000
ME, REFRESH, TOKEN = "/api/v1/users/me", "/api/v1/auth/refresh", "/api/v1/auth/token"
NEW_PASSWORD = "a-brand-new-passphrase-93"


def review_url(login_id: Any) -> str:
    return f"/api/v1/logins/{login_id}/review"


@dataclass
class Site:
    client: httpx.AsyncClient
    container: Container
    admin: dict[str, Any]
    ingest: dict[str, str]

    async def review(self, login_id: Any, verdict: str, headers=None) -> httpx.Response:
        return await self.client.post(
            review_url(login_id),
            json={"verdict": verdict},
            headers=bearer(self.admin) if headers is None else headers,
        )

    async def report(self, subject: str, ip: str, at: int, event_uuid: str) -> dict[str, Any]:
        """A login another IdP reports; its verdict."""
        body = {"subject": subject, "ip": ip, "occurred_at": at, "event_uuid": event_uuid}
        response = await self.client.post("/api/v1/login-events", headers=self.ingest, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def stored(self, event_uuid: str) -> LoginEvent:
        async with self.container.db.read() as session:
            query = select(LoginEvent).where(LoginEvent.event_uuid == event_uuid)
            return (await session.scalars(query)).one()

    async def stored_by_id(self, login_id: int) -> LoginEvent:
        async with self.container.db.read() as session:
            found = await session.get(LoginEvent, login_id)
            assert found is not None
            return found

    async def signin_from(self, username: str, ip: str, password: str = STRONG) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/signin",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": ip},
        )

    async def logins_of(self, user_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/api/v1/users/{user_id}/logins", headers=bearer(self.admin)
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def outbox(self, type_: str) -> list[OutboxEvent]:
        async with self.container.db.read() as session:
            query = select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq)
            return list((await session.scalars(query)).all())

    async def key(self, scopes: list[str], headers: dict[str, str] | None = None) -> dict:
        response = await self.client.post(
            "/api/v1/api-keys",
            headers=headers or bearer(self.admin),
            json={"name": "-".join(scopes)[:60] or "none", "scopes": scopes},
        )
        assert response.status_code == 201, response.text
        return {"X-API-KEY": response.json()["api_key"]}


@pytest.fixture
async def site(database_url, tmp_path) -> AsyncIterator[Site]:
    db_file = write_city_db(
        tmp_path / "city.mmdb",
        {
            "11.1.1.0/24": city_record(
                40.7128, -74.0060, radius=5, country="US", city=("New York", 5128581)
            ),
            "11.3.3.0/24": city_record(
                51.5074, -0.1278, radius=5, country="GB", city=("London", 2643743)
            ),
        },
    )
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": db_file},
        http={"trusted_proxies": ["127.0.0.0/8"]},
        travel={"learning_logins": 0},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        container = app.state.container
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            try:
                admin = await make_admin(client, container)
                site = Site(client, container, admin, {})
                site.ingest = await site.key(["login_events:write"])
                yield site
            finally:
                await wipe(container)


async def _impossible(site: Site, subject: str) -> LoginEvent:
    """A login from London ten minutes after one from New York."""
    await site.report(subject, NY, T0, f"{subject}-ny")
    assert (await site.report(subject, LONDON, T0 + 600, f"{subject}-london"))[
        "verdict"
    ] == "impossible"
    return await site.stored(f"{subject}-london")


async def _user_with_login(site: Site, username: str, ip: str = NY) -> tuple[dict, int]:
    """A user signed in from `ip`: their tokens and that sign-in's login id."""
    await signup(site.client, username)
    response = await site.signin_from(username, ip)
    assert response.status_code == 200, response.text
    tokens = response.json()
    newest = (await site.logins_of(tokens["user_id"]))[0]
    return tokens, newest["id"]


# --- safe -----------------------------------------------------------------------------------


async def test_safe_clears_a_flagged_login_and_is_in_the_audit_trail(site):
    login = await _impossible(site, "dana")
    response = await site.review(login.id, "safe")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == login.id and body["review"] == "safe" and body["changed"] is True
    assert body["verdict"] == "impossible"  # the grade it earned stays; the review says more
    assert (await site.stored("dana-london")).review == "safe"

    cleared = await site.outbox("login.cleared")
    assert len(cleared) == 1
    event = cleared[0]
    assert event.actor == f"user:{site.admin['user_id']}"
    assert event.payload["login_id"] == login.id
    assert event.payload["review"] == "safe" and event.payload["cause"] == "review"
    audit = await site.client.get(
        "/api/v1/audit", params={"type": "login.cleared"}, headers=bearer(site.admin)
    )
    assert [item["payload"]["login_id"] for item in audit.json()["items"]] == [login.id]


async def test_after_safe_the_place_vouches_for_the_next_login_from_it(site):
    """Without a review, a flagged login is no anchor: the next login from London is judged
    from New York and is impossible again. After `safe`, London is where the user was."""
    for subject in ("unreviewed", "reviewed"):
        await _impossible(site, subject)
    london = await site.stored("reviewed-london")
    assert (await site.review(london.id, "safe")).status_code == 200

    control = await site.report("unreviewed", LONDON, T0 + 1200, "unreviewed-again")
    after_safe = await site.report("reviewed", LONDON, T0 + 1200, "reviewed-again")
    assert control["verdict"] == "impossible"
    assert after_safe["verdict"] not in ("suspicious", "impossible"), after_safe


async def test_safe_on_a_login_that_was_not_flagged_announces_nothing(site):
    await site.report("erin", NY, T0, "erin-ny")
    login = await site.stored("erin-ny")
    response = await site.review(login.id, "safe")
    assert response.status_code == 200 and response.json()["review"] == "safe"
    assert await site.outbox("login.cleared") == []
    # It changed what the login proves, so it is in the audit trail all the same.
    (reviewed,) = await site.outbox("login.reviewed")
    assert reviewed.payload["review"] == "safe"
    assert reviewed.payload["login_id"] == login.id
    assert reviewed.payload["previous_review"] is None
    assert reviewed.actor.startswith("user:")


# --- compromised ----------------------------------------------------------------------------


async def test_compromised_cuts_the_user_off_until_a_new_password(site):
    tokens, login_id = await _user_with_login(site, "victim", LONDON)
    laptop = await signin(site.client, "victim")
    key = await site.key(["profile"], headers=bearer(tokens))
    assert (await site.client.get(ME, headers=bearer(laptop))).status_code == 200

    response = await site.review(login_id, "compromised")
    assert response.status_code == 200, response.text
    assert response.json()["review"] == "compromised"
    assert response.json()["sessions_revoked"] == 3  # sign-up's, and both sign-ins'

    for session in (tokens, laptop):
        assert (await site.client.get(ME, headers=bearer(session))).status_code == 401
        refreshed = await site.client.post(
            REFRESH, json={"refresh_token": session["refresh_token"]}
        )
        assert refreshed.status_code in (400, 401) and "access_token" not in refreshed.json()
    assert (await site.client.get(ME, headers=key)).status_code == 401

    right = await site.signin_from("victim", NY)
    assert right.status_code == 403 and right.json()["code"] == "password_reset_required"
    # Admins see why on the account.
    account = await site.client.get(
        f"/api/v1/users/{tokens['user_id']}", headers=bearer(site.admin)
    )
    assert account.json()["password_reset_required"] is True
    wrong = await site.signin_from("victim", NY, password="not-the-password-1")
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    grant = await site.client.post(
        TOKEN, data={"grant_type": "password", "username": "victim", "password": STRONG}
    )
    assert grant.status_code == 400 and grant.json()["error"] == "invalid_grant"

    [compromised] = await site.outbox("user.compromised")
    assert compromised.user_id == uuid.UUID(tokens["user_id"])
    assert compromised.actor == f"user:{site.admin['user_id']}"
    assert compromised.payload["login_id"] == login_id
    assert compromised.payload["subject"] == tokens["user_id"]
    assert compromised.payload["user_id"] == tokens["user_id"]
    assert compromised.payload["event_uuid"]

    new_hash = bcrypt.hashpw(NEW_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    job = await import_file(
        site.client,
        site.container,
        bearer(site.admin),
        ndjson([{"user_id": tokens["user_id"], "password_hash": new_hash}]),
        upsert=True,
        filename="users.ndjson",
    )
    assert job.status == "completed" and job.result["updated"] == 1, job.result
    assert (await site.signin_from("victim", NY)).status_code == 401  # the old one is gone
    again = await site.signin_from("victim", NY, password=NEW_PASSWORD)
    assert again.status_code == 200, again.text


async def test_the_users_own_password_change_lifts_the_reset_too(site):
    """Set through the self-service path (the service, as `POST /users/me/password` calls
    it): the flag follows the password, whichever path sets it."""
    tokens, login_id = await _user_with_login(site, "selfie")
    assert (await site.review(login_id, "compromised")).status_code == 200
    users, user_id = site.container.users, uuid.UUID(tokens["user_id"])
    async with site.container.db.read() as session:
        user = await users.get(session, user_id, include_deleted=False)
    assert user.password_reset_required is True
    change = await users.new_password(user, STRONG, NEW_PASSWORD)
    async with site.container.db.transaction() as session:
        await users.change_password(session, change, keep_session=None)
    async with site.container.db.read() as session:
        user = await users.get(session, user_id, include_deleted=False)
    assert user.password_reset_required is False
    assert (await site.signin_from("selfie", NY, password=NEW_PASSWORD)).status_code == 200


async def test_compromised_disowns_the_place(site):
    """An attacker's login reviewed `compromised` vouches for nothing: the next login from
    there is judged from the user's real place."""
    await _impossible(site, "frank")
    london = await site.stored("frank-london")
    assert (await site.review(london.id, "compromised")).status_code == 200
    after = await site.report("frank", LONDON, T0 + 1200, "frank-again")
    assert after["verdict"] == "impossible"


async def test_a_reported_login_with_no_user_is_reviewed_and_audited(site):
    login = await _impossible(site, "outsider@example.com")
    response = await site.review(login.id, "compromised")
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] is None and response.json()["sessions_revoked"] is None
    [event] = await site.outbox("user.compromised")
    assert event.user_id is None and event.aggregate_type == "login"
    assert event.payload["subject"] == "outsider@example.com"
    assert event.payload["login_id"] == login.id and event.payload["user_id"] is None


async def test_reviews_repeat_idempotently_and_compromised_is_final(site):
    _, login_id = await _user_with_login(site, "gina")
    first = await site.review(login_id, "safe")
    again = await site.review(login_id, "safe")
    assert first.status_code == again.status_code == 200
    assert again.json()["changed"] is False
    assert again.json()["reviewed_at"] == first.json()["reviewed_at"]

    stronger = await site.review(login_id, "compromised")
    assert stronger.status_code == 200 and stronger.json()["review"] == "compromised"
    repeated = await site.review(login_id, "compromised")
    assert repeated.status_code == 200 and repeated.json()["changed"] is False
    assert len(await site.outbox("user.compromised")) == 1

    back = await site.review(login_id, "safe")
    assert back.status_code == 409 and back.json()["code"] == "login_compromised"
    login = (await site.review(login_id, "compromised")).json()
    assert login["review"] == "compromised"


async def test_two_reviews_at_once_act_once(site):
    _, login_id = await _user_with_login(site, "twice")
    answers = await asyncio.gather(
        site.review(login_id, "compromised"), site.review(login_id, "compromised")
    )
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["changed"] for a in answers) == [False, True]
    assert len(await site.outbox("user.compromised")) == 1


async def test_a_session_left_when_a_reset_is_required_does_not_refresh(site):
    """Belt and braces: a session opened by a sign-in racing the review (so not among those
    it ended) is refused at its next refresh."""
    tokens = await signup(site.client, "racer")
    async with site.container.db.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == uuid.UUID(tokens["user_id"]))
            .values(password_reset_required=True)
        )
    refreshed = await site.client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


# --- who may review -------------------------------------------------------------------------


async def test_reading_users_is_not_enough(site):
    login = await _impossible(site, "hank")
    reader = await site.key(["users:read"])
    response = await site.review(login.id, "safe", headers=reader)
    assert response.status_code == 403
    assert (await site.stored("hank-london")).review is None


async def test_a_user_cannot_review_their_own_login_without_users_write(site):
    tokens, login_id = await _user_with_login(site, "ivy")
    response = await site.review(login_id, "safe", headers=bearer(tokens))
    assert response.status_code == 403
    assert (await site.stored_by_id(login_id)).review is None


async def test_a_narrow_credential_cannot_review_another_admins_login(site):
    other = await make_admin(site.client, site.container, "second-admin")
    other_logins = await site.logins_of(other["user_id"])
    narrow = await site.key(["users:read", "users:write"])
    refused = await site.review(other_logins[0]["id"], "compromised", headers=narrow)
    assert refused.status_code == 403 and refused.json()["code"] == "admin_target"
    assert await site.outbox("user.compromised") == []
    assert (await site.client.get(ME, headers=bearer(other))).status_code == 200
    # The same credential may review an ordinary user's login; a full admin, the admin's.
    _, login_id = await _user_with_login(site, "jules")
    assert (await site.review(login_id, "safe", headers=narrow)).status_code == 200
    assert (await site.review(other_logins[0]["id"], "safe")).status_code == 200


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login_id", ["0", "-1", "9223372036854775808", "99999999999999999999999", "abc", "1.5"]
)
async def test_hostile_ids_are_refused_with_a_4xx(site, login_id):
    response = await site.review(login_id, "safe")
    assert 400 <= response.status_code < 500, response.text


async def test_an_unknown_login_is_404_and_a_bad_verdict_422(site):
    missing = await site.review(9223372036854775807, "safe")
    assert missing.status_code == 404 and missing.json()["code"] == "login_not_found"
    login = await _impossible(site, "kim")
    for body in ({"verdict": "maybe"}, {}, {"verdict": "safe", "extra": 1}, {"verdict": None}):
        response = await site.client.post(
            review_url(login.id), json=body, headers=bearer(site.admin)
        )
        assert response.status_code == 422, (body, response.text)
    assert (await site.stored("kim-london")).review is None
