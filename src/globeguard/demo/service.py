"""Filling a database with demo users and their sign-ins (`globeguard demo seed`).

Bulk paths only: users go in with one multi-row INSERT per chunk, sign-ins through the same
`BulkIngestor` that serves `POST /api/v1/login-events` (GeoIP, grading, analytics rollups),
a chunk of users and their events per transaction.

Demo users have no password (`password_hash` NULL): nobody can sign in as them, and seeding
100k of them costs no argon2 hashing (17 ms each, half an hour for 100k). Their sign-ins are
reported under their user id as subject, which is how the analytics rollups tie them to the
users a search matches (bulk ingestion does not set `user_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from globeguard.adapters.geoip.port import GeoLocator
from globeguard.db.session import Database
from globeguard.demo.generate import City, DemoUser, users
from globeguard.demo.repository import DemoRepository
from globeguard.kit.errors import Conflict
from globeguard.travel.ingest import BATCH_SIZE, BulkIngestor, IncomingEvent, IngestReport

USERS_PER_TRANSACTION = 500
SOURCE = "demo"


@dataclass(slots=True)
class SeedReport:
    users: int = 0
    events: int = 0
    flagged: int = 0


class DemoSeeder:
    def __init__(self, db: Database, locator: GeoLocator, ingestor: BulkIngestor) -> None:
        self.db = db
        self.locator = locator
        self.ingestor = ingestor

    def _city(self, ip: str) -> City | None:
        found = self.locator.locate(ip)
        if not found.located or found.city_geoname_id is None or found.latitude is None:
            return None
        return City(found.city_geoname_id, found.latitude, found.longitude or 0.0)

    async def seed(
        self,
        count: int,
        seed: int,
        until: datetime,
        progress: Callable[[int], None] = lambda _: None,
    ) -> SeedReport:
        report = SeedReport()
        generated = users(count, seed, self._city, until)
        chunk: list[DemoUser] = []
        for user in generated:
            if not chunk and user.number == 1:
                await self._refuse_reseed(user)
            chunk.append(user)
            if len(chunk) == USERS_PER_TRANSACTION:
                await self._store(chunk, report)
                progress(len(chunk))
                chunk = []
        if chunk:
            await self._store(chunk, report)
            progress(len(chunk))
        return report

    async def _refuse_reseed(self, first: DemoUser) -> None:
        async with self.db.read() as session:
            if await DemoRepository(session).username_taken(first.username.lower()):
                raise Conflict(
                    f"demo users of seed {first.username} exist already; pick another --seed",
                    code="demo_seeded",
                )

    async def _store(self, chunk: Sequence[DemoUser], report: SeedReport) -> None:
        events = [
            (
                n,
                IncomingEvent(
                    subject=str(u.id),
                    occurred_at=login.occurred_at,
                    ip=login.ip,
                    success=login.success,
                    event_uuid=login.event_uuid,
                ),
            )
            for n, (u, login) in enumerate(((u, x) for u in chunk for x in u.logins), start=1)
        ]
        ingest = IngestReport()
        users = {str(u.id): u.id for u in chunk}
        async with self.db.transaction() as session:
            await DemoRepository(session).insert_users([_user_row(u) for u in chunk])
            for start in range(0, len(events), BATCH_SIZE):
                await self.ingestor.store(
                    session, events[start : start + BATCH_SIZE], SOURCE, ingest, users
                )
        report.users += len(chunk)
        report.events += ingest.accepted
        report.flagged += ingest.suspicious


def _user_row(user: DemoUser) -> dict[str, Any]:
    successes = [x for x in user.logins if x.success]
    first = min((x.occurred_at for x in user.logins), default=None)
    created = first or datetime.now().astimezone()
    return {
        "id": user.id,
        "username": user.username,
        "username_key": user.username.lower(),
        "email": user.email,
        "email_key": user.email.lower(),
        "email_verified": False,
        "password_hash": None,
        "given_name": "User",
        "family_name": f"#{user.number}",
        "user_metadata": user.user_metadata,
        "app_metadata": user.app_metadata,
        "status": "active",
        "token_version": 1,
        "revision": 1,
        "logins_count": len(successes),
        "last_login_at": successes[-1].occurred_at if successes else None,
        "last_login_ip": successes[-1].ip if successes else None,
        "blocked_at": None,
        "deleted_at": None,
        "created_at": created,
        "updated_at": created,
    }
