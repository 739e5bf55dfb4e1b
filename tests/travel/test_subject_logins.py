"""Reported logins in the histories they belong to: `GET /api/v1/users/{id}/logins` lists the
logins other IdPs reported under the user's id, username, email or Auth0 `user_id` (with
their source), and `GET /api/v1/subjects/{subject}/logins` serves any subject, linked or not.

Three tests post events through the API and expect them linked as they are stored
(`test_a_login_reported_under_the_users_id_name_or_email_is_theirs`,
`test_an_unrelated_subject_stays_out_of_every_history`,
`test_a_login_reported_under_an_auth0_id_after_a_sync_is_the_users`): they hold once the
ingest paths ask `SubjectLinker.owners` whose each new event is."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from globeguard.jobs.records import to_user, user_id_of
from globeguard.travel.linking import SubjectLinker
from tests.conftest import make_settings
from tests.helpers import bearer, make_admin, signin, signup
from tests.jobs.fake_auth0 import Behaviour, FakeAuth0
from tests.jobs.test_auth0_sync import FakeTime, handler, run, submit, tenant_users

T0 = 1_780_000_000
LONDON = "81.2.69.142"  # in the bundled GeoLite2-City
LOG_STREAM_TOKEN = "log-stream-token-0123456789"


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(
        database_url,
        tmp_path,
        jobs={"embedded": False},
        # The fake Auth0 tenant listens on loopback.
        auth0={
            "allow_http": True,
            "allow_private_targets": True,
            "poll_deadline": "PT60S",
            "log_stream_token": LOG_STREAM_TOKEN,
        },
    )


async def _sender(client, container) -> tuple[dict[str, str], dict[str, str]]:
    """(an IdP's API key headers, an admin's headers)."""
    admin = bearer(await make_admin(client, container, "idp-owner"))
    key = await client.post(
        "/api/v1/api-keys", headers=admin, json={"name": "idp", "scopes": ["login_events:write"]}
    )
    assert key.status_code == 201, key.text
    return {"X-API-KEY": key.json()["api_key"]}, admin


async def _report(client, headers, subject: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    body = {"subject": subject, "ip": LONDON, "occurred_at": T0 + n * 3600, **extra}
    response = await client.post("/api/v1/login-events", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _history(client, user_id, headers) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/users/{user_id}/logins", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def _subject_page(client, subject: str, headers, **params) -> Any:
    path = f"/api/v1/subjects/{quote(subject, safe='')}/logins"
    return await client.get(path, headers=headers, params=params)


def _uuids(items: list[dict[str, Any]]) -> list[str]:
    return [item["event_uuid"] for item in items]


# --- GET /users/{id}/logins ------------------------------------------------------------------


@pytest.mark.parametrize(
    "spell",
    [
        lambda user: user["user_id"].upper(),
        lambda user: uuid.UUID(user["user_id"]).hex,
        lambda user: "MiRa",
        lambda user: "Mira@Example.COM",
    ],
    ids=["id-upper", "id-hex", "username-any-case", "email-any-case"],
)
async def test_a_login_reported_under_the_users_id_name_or_email_is_theirs(
    client, container, spell
):
    mira = await signup(client, "mira", email="mira@example.com")
    headers, admin = await _sender(client, container)
    await _report(client, headers, spell(mira), event_uuid="reported-1")
    items = await _history(client, mira["user_id"], admin)
    assert _uuids(items) == ["reported-1"]
    assert items[0]["source"] == "api" and items[0]["ip"] == LONDON
    # The owner reads it too.
    assert _uuids(await _history(client, mira["user_id"], bearer(mira))) == ["reported-1"]


async def test_an_unrelated_subject_stays_out_of_every_history(client, container):
    nora = await signup(client, "nora", email="nora@example.com")
    headers, admin = await _sender(client, container)
    for stranger in ("nora2", "nora@example.org", str(uuid.uuid4()), "auth0|nora"):
        await _report(client, headers, stranger)
    await _report(client, headers, "NORA", event_uuid="hers")
    assert _uuids(await _history(client, nora["user_id"], admin)) == ["hers"]


async def test_a_login_reported_under_an_auth0_id_after_a_sync_is_the_users(client, container):
    with FakeAuth0(Behaviour(users=tenant_users())) as fake:
        job = await run(
            container, handler(container, FakeTime()), await submit(client, container, fake)
        )
    assert job.status == "completed", job.error
    headers, admin = await _sender(client, container)
    await _report(client, headers, "auth0|a2", event_uuid="via-other-idp")
    items = await _history(client, user_id_of("auth0|a2"), admin)
    assert "via-other-idp" in _uuids(items)
    assert {item["source"] for item in items} == {"api", "auth0"}


async def test_a_sync_links_the_logins_reported_before_it(client, container):
    headers, admin = await _sender(client, container)
    await _report(client, headers, "auth0|a1", 0, event_uuid="early-1")
    await _report(client, headers, "auth0|a1", 1, event_uuid="early-2")
    await _report(client, headers, "auth0|nobody", 2, event_uuid="not-theirs")
    with FakeAuth0(Behaviour(users=tenant_users())) as fake:
        job = await run(
            container, handler(container, FakeTime()), await submit(client, container, fake)
        )
    assert job.status == "completed", job.error
    items = await _history(client, user_id_of("auth0|a1"), admin)
    # Newest first: the reported ones (2026), then the sync's own last-login event.
    reported = [item for item in items if item["source"] == "api"]
    assert _uuids(reported) == ["early-2", "early-1"]
    assert [item["source"] for item in items].count("auth0") == 1
    assert "not-theirs" not in _uuids(items)


async def _sync(client, container, users: list[dict[str, Any]] | None = None) -> None:
    with FakeAuth0(Behaviour(users=users or tenant_users())) as fake:
        job_id = await submit(client, container, fake)
        job = await run(container, handler(container, FakeTime()), job_id)
    assert job.status == "completed", job.error


async def _stream(client, auth0_user_id: str, log_id: str, hour: int) -> None:
    item = {
        "log_id": log_id,
        "data": {
            "type": "s",
            "date": f"2026-05-01T{hour:02d}:00:00.000Z",
            "ip": LONDON,
            "user_id": auth0_user_id,
        },
    }
    response = await client.post(
        "/api/v1/ingest/auth0-logs", json=[item], headers={"Authorization": LOG_STREAM_TOKEN}
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text


async def test_log_stream_sign_ins_from_before_the_sync_are_the_synced_users(client, container):
    await _stream(client, "auth0|a1", "log-1", 8)
    await _sync(client, container)
    await _stream(client, "auth0|a1", "log-2", 9)
    admin = bearer(await make_admin(client, container, "reader"))
    items = await _history(client, user_id_of("auth0|a1"), admin)
    streamed = [item for item in items if item["source"] == "auth0-logs"]
    assert _uuids(streamed) == ["log-2", "log-1"]


async def test_a_synced_record_that_updated_a_user_by_email_takes_its_log_stream(client, container):
    # The account existed before the sync, under its own id; the sync matched it by email.
    pia = await signup(client, "pia", email="a2@example.com")
    await _sync(client, container)
    await _stream(client, "auth0|a2", "log-pia", 10)
    admin = bearer(await make_admin(client, container, "reader"))
    items = await _history(client, pia["user_id"], admin)
    assert "log-pia" in _uuids(items)
    assert user_id_of("auth0|a2") != uuid.UUID(pia["user_id"])


async def test_a_superman_post_under_a_username_is_the_users(client, container):
    quinn = await signup(client, "quinn")
    headers, admin = await _sender(client, container)
    body = {
        "username": "Quinn",
        "unix_timestamp": T0,
        "event_uuid": "85ad929a-db03-4bf4-9541-8f728fa12e42",
        "ip_address": LONDON,
    }
    response = await client.post("/v1/", json=body, headers=headers)
    assert response.status_code == 200, response.text
    items = await _history(client, quinn["user_id"], admin)
    assert [(i["event_uuid"], i["source"]) for i in items] == [(body["event_uuid"], "superman")]


async def test_a_sync_stores_each_users_auth0_id(client, container):
    with FakeAuth0(Behaviour(users=tenant_users())) as fake:
        job = await run(
            container, handler(container, FakeTime()), await submit(client, container, fake)
        )
    assert job.status == "completed", job.error
    auth0_ids = ["auth0|a1", "auth0|a2", "google-oauth2|a3", "auth0|a4"]
    async with container.db.read() as session:
        owners = await SubjectLinker().owners(session, auth0_ids)
    assert owners == {external: user_id_of(external) for external in auth0_ids}


def test_only_another_idps_user_id_is_an_external_id():
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    ours = str(uuid.uuid4())
    assert to_user({"user_id": "auth0|x1"}, metadata_max_bytes=1024, now=now).external_id == (
        "auth0|x1"
    )
    assert to_user({"user_id": ours}, metadata_max_bytes=1024, now=now).external_id is None
    assert to_user({"email": "e@example.com"}, metadata_max_bytes=1024, now=now).external_id is None


async def test_the_history_carries_the_review_of_each_login(client, container):
    await signup(client, "olga")
    olga = await signin(client, "olga")
    items = await _history(client, olga["user_id"], bearer(olga))
    assert items and all(item["review"] is None and item["reviewed_at"] is None for item in items)


# --- GET /subjects/{subject}/logins ------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    ["auth0|x9", "someone@example.com", "dept/alice", "ünïcödé 名前", "a b%2F?#c"],
)
async def test_an_unlinked_subject_is_served_as_it_was_reported(client, container, subject):
    headers, admin = await _sender(client, container)
    await _report(client, headers, subject, 0, event_uuid="s-1")
    await _report(client, headers, subject, 1, event_uuid="s-2")
    await _report(client, headers, subject + "-other", 2, event_uuid="other")
    response = await _subject_page(client, subject, admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert _uuids(body["items"]) == ["s-2", "s-1"] and body["next_before"] is None
    assert all(item["source"] == "api" for item in body["items"])


async def test_subject_pages_follow_next_before(client, container):
    headers, admin = await _sender(client, container)
    for n in range(5):
        await _report(client, headers, "pager", n, event_uuid=f"p{n}")
    seen, before = [], None
    while True:
        params = {"limit": 2} | ({"before": before} if before is not None else {})
        page = (await _subject_page(client, "pager", admin, **params)).json()
        seen += _uuids(page["items"])
        if page["next_before"] is None:
            break
        before = page["next_before"]
    assert seen == ["p4", "p3", "p2", "p1", "p0"]


async def test_a_subject_nobody_reported_is_an_empty_page(client, container):
    admin = bearer(await make_admin(client, container))
    # The same answer whether or not the subject is an account's name.
    for subject in ("nobody-at-all", "root"):
        response = await _subject_page(client, subject, admin)
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_before": None}


async def test_subject_logins_need_users_read(client, container):
    headers, _ = await _sender(client, container)
    await _report(client, headers, "guarded")
    plain = await signup(client, "plainuser")
    denied = await _subject_page(client, "guarded", bearer(plain))
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    # A key that may send events may not read them back.
    assert (await _subject_page(client, "guarded", headers)).status_code == 403
    assert (await _subject_page(client, "guarded", {})).status_code == 401


@pytest.mark.parametrize(
    ("subject", "status"),
    [("x" * 321, 422), ("x" * 5000, 422), ("a\x00b", 422)],
    ids=["321-chars", "5000-chars", "nul"],
)
async def test_hostile_subjects_are_refused_with_a_problem(client, container, subject, status):
    admin = bearer(await make_admin(client, container))
    response = await _subject_page(client, subject, admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_empty_subject_is_not_a_page(client, container):
    admin = bearer(await make_admin(client, container))
    response = await client.get("/api/v1/subjects//logins", headers=admin)
    assert response.status_code in (404, 422)


@pytest.mark.parametrize(("limit", "before"), [(0, None), (None, 0), ("x", None), (None, -1)])
async def test_bad_paging_is_422(client, container, limit, before):
    admin = bearer(await make_admin(client, container))
    params = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
    assert (await _subject_page(client, "anyone", admin, **params)).status_code == 422
