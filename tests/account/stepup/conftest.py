"""An app behind a trusted proxy (each request picks its address with X-Forwarded-For) with a
tiny GeoIP database placing those addresses in Paris, Lyon, Berlin and Tokyo, and a clock the
tests move for the sign-in service and the authenticator codes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from globeguard.account.stepup import signins
from globeguard.app import create_app
from globeguard.identity.auth import service as auth_service
from globeguard.identity.models import User
from globeguard.mail.models import MailMessage
from globeguard.travel.models import LoginEvent
from globeguard.wiring import Container
from tests.conftest import make_settings, wipe
from tests.helpers import STRONG, bearer, make_admin
from tests.support.mmdb import city_record, write_city_db

PARIS_IP, TOKYO_IP, TOKYO_OTHER_IP = "12.1.1.1", "12.2.2.2", "12.2.2.9"
LYON_IP, BERLIN_IP = "12.3.3.3", "12.4.4.4"


def _tokyo() -> dict[str, Any]:
    record = city_record(
        35.6762, 139.6503, radius=5, time_zone="Asia/Tokyo", city=("Tokyo", 1850147)
    )
    # Not among the test databases' usual countries.
    record["country"] = {"iso_code": "JP", "geoname_id": 1861060, "names": {"en": "Japan"}}
    return record


RECORDS = {
    "12.1.1.0/24": city_record(
        48.8566, 2.3522, radius=5, time_zone="Europe/Paris", country="FR", city=("Paris", 2988507)
    ),
    "12.2.2.0/24": _tokyo(),
    "12.3.3.0/24": city_record(
        45.764, 4.8357, radius=5, time_zone="Europe/Paris", country="FR", city=("Lyon", 2996944)
    ),
    "12.4.4.0/24": city_record(
        52.52, 13.405, radius=5, time_zone="Europe/Berlin", country="DE", city=("Berlin", 2950159)
    ),
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    container: Container
    clock: Clock
    admin: dict[str, Any] | None = None

    async def signup(self, username: str, **extra: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/signup", json={"username": username, "password": STRONG, **extra}
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def signin(
        self, username: str, ip: str, status: int = 200, password: str = STRONG
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/signin",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": ip, "User-Agent": "stepup-test"},
        )
        assert response.status_code == status, response.text
        return response.json()

    async def password_grant(self, username: str, ip: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": username, "password": STRONG},
            headers={"X-Forwarded-For": ip},
        )

    async def verify(self, mfa_token: str, code: str, ip: str, status: int) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/mfa/verify",
            json={"mfa_token": mfa_token, "code": code},
            headers={"X-Forwarded-For": ip},
        )
        assert response.status_code == status, response.text
        return response.json()

    async def enrol_totp(self, tokens: dict[str, Any]) -> tuple[pyotp.TOTP, list[str]]:
        """An authenticator confirmed now; its recovery codes."""
        started = await self.client.post("/api/v1/mfa/totp", headers=bearer(tokens))
        assert started.status_code == 201, started.text
        app = pyotp.TOTP(started.json()["secret"])
        confirmed = await self.client.post(
            "/api/v1/mfa/totp/confirm", json={"code": self.code(app)}, headers=bearer(tokens)
        )
        assert confirmed.status_code == 200, confirmed.text
        return app, confirmed.json()["recovery_codes"]

    def code(self, app: pyotp.TOTP) -> str:
        """What the authenticator shows at the test's time."""
        return app.at(self.clock.now)

    async def verify_email(self, user_id: str) -> None:
        async with self.container.db.transaction() as session:
            await session.execute(
                update(User).where(User.id == _uuid(user_id)).values(email_verified=True)
            )

    async def set_status(self, user_id: str, status: str) -> None:
        async with self.container.db.transaction() as session:
            await session.execute(
                update(User).where(User.id == _uuid(user_id)).values(status=status)
            )

    async def me(self, tokens: dict[str, Any]) -> httpx.Response:
        return await self.client.get("/api/v1/users/me", headers=bearer(tokens))

    async def logins(self, user_id: str) -> list[LoginEvent]:
        async with self.container.db.read() as session:
            query = select(LoginEvent).where(LoginEvent.subject == user_id).order_by(LoginEvent.id)
            return list((await session.scalars(query)).all())

    async def mails(self, to: str) -> list[MailMessage]:
        async with self.container.db.read() as session:
            query = select(MailMessage).where(MailMessage.to_address == to)
            return list((await session.scalars(query.order_by(MailMessage.created_at))).all())

    async def audit(self, event_type: str, user_id: str) -> list[dict[str, Any]]:
        if self.admin is None:
            self.admin = await make_admin(self.client, self.container)
        response = await self.client.get(
            "/api/v1/audit",
            params={"type": event_type, "user_id": user_id},
            headers=bearer(self.admin),
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]


def _uuid(value: str) -> Any:
    import uuid

    return uuid.UUID(value)


@contextlib.asynccontextmanager
async def _gateway(
    database_url, tmp_path, clock: Clock, **overrides: Any
) -> AsyncIterator[Gateway]:
    db_file = write_city_db(tmp_path / "stepup-city.mmdb", RECORDS)
    travel = {"learning_logins": 0, **overrides.pop("travel", {})}
    # No background mail sender: these tests read queued messages from the outbox, and a
    # sent message's body is emptied.
    mail = {"embedded": False, **overrides.pop("mail", {})}
    settings = make_settings(
        database_url,
        tmp_path,
        geoip={"city_db": db_file},
        http={"trusted_proxies": ["127.0.0.0/8"]},
        travel=travel,
        mail=mail,
        **overrides,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        container = app.state.container
        container.mfa.clock = clock
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            try:
                yield Gateway(app, client, container, clock)
            finally:
                await wipe(container)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth_service, "utcnow", fake)
    monkeypatch.setattr(signins, "utcnow", fake)
    return fake


@pytest.fixture
async def open_gateway(database_url, tmp_path, clock):
    """`await open_gateway(risk={...}, account={...})`: an app with those settings."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**overrides: Any) -> Gateway:
            return await stack.enter_async_context(
                _gateway(database_url, tmp_path, clock, **overrides)
            )

        yield open_
