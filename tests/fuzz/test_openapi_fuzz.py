"""Every operation of the OpenAPI document, fuzzed by schemathesis as an admin, as a plain
user and anonymously, on each database backend: no answer may be a 5xx, and no success may
break its declared response schema.

Bounded for `make test` (GLOBEGUARD_FUZZ_EXAMPLES cases per operation, 3 by default: about
two hundred requests per caller); `make fuzz` runs more and prints the counts.

The service makes no outbound connection here: the dispatcher and the job runner are off,
and the SSRF guard resolves no name (every webhook or Auth0 target is refused before any DNS
query).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest

from globeguard.app import create_app
from globeguard.events.sinks.guard import TargetGuard
from globeguard.identity.bootstrap import create_admin
from tests.conftest import make_settings, wipe
from tests.fuzz.runner import fuzz, next_name, summary
from tests.helpers import STRONG, bearer

EXAMPLES = int(os.environ.get("GLOBEGUARD_FUZZ_EXAMPLES", "3"))

# 5xx answers found by this test in code it does not fix: each entry names the operation and
# the issue that owns it. The lead deletes an entry once its fix lands; the test then holds
# the operation to zero 5xx like every other. Nothing else is excluded.
KNOWN_5XX: dict[str, str] = {}


async def _no_dns(self: TargetGuard, host: str, port: int) -> tuple[str, ...]:
    raise OSError("the fuzz run resolves no names")


@pytest.fixture
async def fuzz_client(database_url, tmp_path, monkeypatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(TargetGuard, "_lookup", _no_dns)
    settings = make_settings(
        database_url,
        tmp_path,
        delivery={"embedded": False},
        jobs={"embedded": False},
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        # A 5xx comes back as an answer, as a client would see it, not as a raised error.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as client:
            try:
                yield client
            finally:
                await wipe(app.state.container)


async def _signin(client: httpx.AsyncClient, username: str) -> dict[str, str] | None:
    response = await client.post(
        "/api/v1/auth/signin", json={"username": username, "password": STRONG}
    )
    return bearer(response.json()) if response.status_code == 200 else None


def _caller(client: httpx.AsyncClient, kind: str):
    """Credentials for the next operation: the same account while it can sign in, a new one
    when a case changed its password, blocked it or deleted it."""
    container = client._transport.app.state.container  # type: ignore[attr-defined]
    current: dict[str, str] = {}

    async def fresh() -> str:
        name = next_name(f"fuzz-{kind}-")
        if kind == "admin":
            async with container.db.transaction() as session:
                await create_admin(container.users, session, name, STRONG, None)
        else:
            response = await client.post(
                "/api/v1/auth/signup", json={"username": name, "password": STRONG}
            )
            assert response.status_code == 201, response.text
        return name

    async def credentials() -> dict[str, str]:
        if kind == "anonymous":
            return {}
        if "name" in current and (headers := await _signin(client, current["name"])):
            return headers
        current["name"] = await fresh()
        headers = await _signin(client, current["name"])
        assert headers is not None
        return headers

    return credentials


@pytest.mark.parametrize("kind", ["admin", "user", "anonymous"])
async def test_no_operation_answers_5xx(fuzz_client, backend, kind):
    openapi = fuzz_client._transport.app.openapi()  # type: ignore[attr-defined]
    tally = await fuzz(fuzz_client, openapi, _caller(fuzz_client, kind), EXAMPLES, KNOWN_5XX)
    print(summary(f"{backend} {kind}", tally))
    assert tally.requests >= 3 * len(openapi["paths"])
    assert not tally.findings, "\n".join(str(f) for f in tally.findings)
