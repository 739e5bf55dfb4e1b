"""Body limits: every operation that takes a body refuses one past its limit with a 413
problem and stores nothing, whether the size is declared (Content-Length) or not (chunked);
streams keep their own, larger limits."""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from globeguard.app import create_app
from globeguard.travel.models import LoginEvent
from tests.conftest import make_settings, wipe
from tests.helpers import bearer, make_admin

DEFAULT_LIMIT = 4096
# Past every limit but the streams': the default, a single login event's 64 KiB (one NDJSON
# line) and the 16 KiB of an ingested user message.
OVERSIZED = 128 * 1024
# Operations whose body is a stream of any size, spooled or stored as it arrives; a body
# twice the default is an ordinary one for them.
STREAMS = {
    ("post", "/api/v1/jobs/users-imports"): "uploads of any size, spooled to disk",
    ("post", "/api/v1/ingest/auth0-logs"): "Auth0 log batches, limited to 10 MiB",
}


@pytest.fixture
async def admin_client(database_url, tmp_path) -> AsyncIterator[tuple[httpx.AsyncClient, dict]]:
    settings = make_settings(database_url, tmp_path, http={"max_body_bytes": DEFAULT_LIMIT})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = await make_admin(client, app.state.container)
            try:
                yield client, bearer(admin)
            finally:
                await wipe(app.state.container)


def _operations_with_bodies() -> list[tuple[str, str, str]]:
    """(method, path, the first media type its body may have) from the OpenAPI document."""
    data_dir = Path(tempfile.mkdtemp(prefix="gg-openapi-"))
    app = create_app(make_settings(f"sqlite+aiosqlite:///{data_dir}/gg.db", data_dir))
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation and (method, path) not in STREAMS:
                media_type = next(iter(operation["requestBody"]["content"]))
                found.append((method, path, media_type))
    return sorted(found)


OPERATIONS = _operations_with_bodies()


def _oversized(media_type: str) -> tuple[bytes, str]:
    padding = "x" * OVERSIZED
    if media_type == "application/x-www-form-urlencoded":
        return f"token={padding}".encode(), media_type
    if media_type == "multipart/form-data":
        part = f'--b\r\nContent-Disposition: form-data; name="padding"\r\n\r\n{padding}\r\n'
        return f"{part}--b--\r\n".encode(), f"{media_type}; boundary=b"
    return orjson.dumps({"padding": padding}), media_type


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1024):
        yield body[start : start + 1024]


def test_the_table_covers_the_operations_that_take_bodies():
    operations = {(method, path) for method, path, _ in OPERATIONS}
    assert ("post", "/api/v1/login-events") in operations
    assert ("post", "/api/v1/auth/token") in operations
    assert len(OPERATIONS) >= 15


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_every_body_past_its_limit_is_413(admin_client, declared):
    client, headers = admin_client
    answers = {}
    for method, path, media_type in OPERATIONS:
        url = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
        body, content_type = _oversized(media_type)
        response = await client.request(
            method.upper(),
            url,
            content=body if declared else _chunks(body),
            headers={**headers, "Content-Type": content_type},
        )
        problem = response.headers["content-type"] == "application/problem+json"
        code = response.json().get("code") if problem else None
        answers[f"{method.upper()} {path}"] = (response.status_code, code)
    wrong = {op: answer for op, answer in answers.items() if answer != (413, "payload_too_large")}
    assert not wrong


async def _stored_events(client: httpx.AsyncClient) -> int:
    container = client._transport.app.state.container  # type: ignore[attr-defined]
    async with container.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(LoginEvent))).scalar())


async def test_a_single_login_event_has_a_limit_and_is_not_stored(admin_client):
    client, headers = admin_client
    # A well-formed event padded with an ignored field: it was stored whatever its size.
    event = {"subject": "ann", "ip": "203.0.113.9", "occurred_at": 1_700_000_000}
    body = orjson.dumps({**event, "note": "x" * (70 * 1024)})
    before = await _stored_events(client)
    response = await client.post(
        "/api/v1/login-events",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert await _stored_events(client) == before


async def test_an_ndjson_stream_is_not_held_to_the_default(admin_client):
    client, headers = admin_client
    lines = [
        orjson.dumps({"subject": f"u{i}", "ip": "203.0.113.9", "occurred_at": 1_700_000_000 + i})
        for i in range(200)
    ]
    body = b"\n".join(lines) + b"\n"
    assert len(body) > 2 * DEFAULT_LIMIT
    response = await client.post(
        "/api/v1/login-events",
        content=_chunks(body),
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 200


async def test_a_body_within_the_limit_is_served(admin_client):
    client, _ = admin_client
    response = await client.post(
        "/api/v1/auth/signin",
        content=_chunks(orjson.dumps({"username": "root", "password": "wrong" * 10})),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401, response.text
