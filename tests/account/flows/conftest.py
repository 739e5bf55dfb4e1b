"""A site for the email flows: the app with a real SMTP server on loopback, a tiny GeoIP
database (New York, London), the test client trusted as a proxy (X-Forwarded-For picks a
sign-in's address), and helpers that deliver the queued mail and follow its links."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from globeguard.account.models import OneTimeToken
from globeguard.app import create_app
from globeguard.events.models import OutboxEvent
from globeguard.identity.models import User
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import sha256_hex
from globeguard.wiring import Container
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin, signup
from tests.support.mmdb import city_record, write_city_db
from tests.support.smtp import SmtpServer, links_in

PUBLIC = "https://id.example.test"
NY, LONDON = "11.1.1.1", "11.3.3.3"
ME = "/api/v1/users/me"
SEND_VERIFICATION = "/api/v1/auth/verify-email/send"
VERIFY = "/api/v1/auth/verify-email"
FORGOT = "/api/v1/auth/password/forgot"
RESET = "/api/v1/auth/password/reset"
FEEDBACK = "/api/v1/auth/login-feedback"
SIGNIN = "/api/v1/auth/signin"
REFRESH = "/api/v1/auth/refresh"
NEW_PASSWORD = "a-brand-new-passphrase-93"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


@dataclass(frozen=True)
class Link:
    """A link of ours as the mail carries it: the page (after `#`) and its query."""

    url: str
    page: str
    query: dict[str, str]

    @property
    def token(self) -> str:
        return self.query["token"]


def parse_link(url: str) -> Link:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC, url
    assert parts.path == "/dashboard/", url
    page, _, query = parts.fragment.partition("?")
    return Link(url, page, {k: v[0] for k, v in parse_qs(query, strict_parsing=True).items()})


@dataclass
class Site:
    client: httpx.AsyncClient
    container: Container
    smtp: SmtpServer
    admin: dict[str, Any]
    seen: int = 0
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def deliver(self) -> list[EmailMessage]:
        """Send what is due through the SMTP server; the messages it received since the
        last call."""
        await self.container.mail_sender.send_due()
        new = self.smtp.messages[self.seen :]
        self.seen = len(self.smtp.messages)
        return new

    async def one_message(self, to: str) -> EmailMessage:
        messages = await self.deliver()
        assert len(messages) == 1, [m["Subject"] for m in messages]
        assert messages[0]["To"] == to
        return messages[0]

    @staticmethod
    def links(message: EmailMessage) -> list[Link]:
        return [parse_link(url) for url in links_in(message) if url.startswith(PUBLIC)]

    async def user(self, username: str, email: str | None, *, verified: bool = False) -> dict:
        """Sign up (from New York); with `verified`, an admin marks the address verified."""
        extra = {"email": email} if email else {}
        tokens = await signup(self.client, username, **extra)
        if verified:
            response = await self.client.patch(
                f"/api/v1/users/{tokens['user_id']}",
                json={"email_verified": True},
                headers=bearer(self.admin),
            )
            assert response.status_code == 200, response.text
        self.users[username] = tokens
        return tokens

    async def signin_from(self, username: str, ip: str, password: str = STRONG) -> httpx.Response:
        return await self.client.post(
            SIGNIN,
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": ip, "User-Agent": BROWSER},
        )

    async def me(self, tokens: dict[str, Any]) -> httpx.Response:
        return await self.client.get(ME, headers=bearer(tokens))

    async def stored_user(self, user_id: str) -> User:
        async with self.container.db.read() as session:
            found = await session.get(User, uuid.UUID(user_id))
            assert found is not None
            return found

    async def events(self, type_: str) -> list[OutboxEvent]:
        async with self.container.db.read() as session:
            query = select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.seq)
            return list((await session.scalars(query)).all())

    async def expire(self, token: str) -> None:
        """Time-travel: the token's expiry a second in the past."""
        async with self.container.db.transaction() as session:
            result = await session.execute(
                update(OneTimeToken)
                .where(OneTimeToken.token_hash == sha256_hex(token))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            assert result.rowcount == 1  # type: ignore[attr-defined]


@pytest.fixture
def site_settings() -> dict[str, Any]:
    """Overrides a test module may replace (e.g. the hourly email limit)."""
    return {}


@pytest.fixture
async def site(
    database_url, tmp_path, smtp_server: SmtpServer, site_settings
) -> AsyncIterator[Site]:
    db_file = write_city_db(
        tmp_path / "city.mmdb",
        {
            "11.1.1.0/24": city_record(
                40.7128,
                -74.0060,
                radius=5,
                country="US",
                subdivision=("NY", "New York State", 5128638),
                city=("New York", 5128581),
            ),
            "11.3.3.0/24": city_record(
                51.5074,
                -0.1278,
                radius=5,
                country="GB",
                subdivision=("ENG", "England", 6269131),
                city=("London", 2643743),
            ),
        },
    )
    overrides = {
        "geoip": {"city_db": db_file},
        "http": {"trusted_proxies": ["127.0.0.0/8"]},
        "travel": {"learning_logins": 0},
        "mail": {"url": smtp_server.url, "public_url": PUBLIC},
        # Risky sign-ins go through here: the notices are sent by the tests themselves.
        "risk": {"on_suspicious": "allow", "on_impossible": "allow"},
        **site_settings,
    }
    settings = make_settings(database_url, tmp_path, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        container = app.state.container
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            try:
                admin = await make_admin(client, container)
                yield Site(client, container, smtp_server, admin)
            finally:
                await wipe(container)
