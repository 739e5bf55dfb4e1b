"""Filling a database with demo users and their sign-ins (`globeguard demo seed`).

Bulk paths only: users go in with one executemany per chunk, sign-ins through the same
`BulkIngestor` that serves `POST /api/v1/login-events` (GeoIP, grading, analytics rollups),
a chunk of `USERS_PER_CHUNK` users and their events per transaction.

Two processes share the work, so both cores are busy: a producer process draws the users,
locates their addresses and grades their sign-ins (`BulkIngestor.prepare_new`: the users are
new, so nothing stored can change a verdict), while this process writes earlier chunks
(`store_prepared`, which checks that premise). The producer also works out what each chunk
adds to the analytics rollups (the ingestor's observers' summaries), so this process only
writes. Chunks go through a pipe, at most `AHEAD` ready before the writer takes them, so
memory stays bounded whatever the count. The producer uses the local GeoIP database: demo
places are what that database knows.

Demo users have no password (`password_hash` NULL): nobody can sign in as them, and seeding
100k of them costs no argon2 hashing (17 ms each, half an hour for 100k). Their sign-ins are
reported under their user id as subject, which is how the analytics rollups tie them to the
users a search matches (bulk ingestion does not set `user_id`).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from globeguard.adapters.geoip.port import GeoLocator
from globeguard.db.session import Database
from globeguard.db.statistics import analyse_after_bulk_load, refresh_statistics
from globeguard.demo.generate import City, DemoUser, users
from globeguard.demo.repository import DemoRepository
from globeguard.kit.collector import collecting_between_batches
from globeguard.kit.errors import Conflict
from globeguard.settings import GeoIpSettings, TravelSettings
from globeguard.travel.ingest import BulkIngestor, IncomingEvent, IngestReport, Prepared
from globeguard.travel.observers import LoginEventObserver
from globeguard.wiring import local_locator

# Users per chunk, and so per transaction. Bigger transactions cost less per user (each
# commit rewrites the pages it touched; a chunk's rollup counts are summed in memory first),
# but a transaction holds SQLite's write lock, and a server running beside the seeder must
# get it well within its busy timeout (5 s): 2000 users take under a second to write.
USERS_PER_CHUNK = 2000
# Chunks the producer may have ready before the seeder takes them.
AHEAD = 3
SOURCE = "demo"


@dataclass(slots=True)
class SeedReport:
    users: int = 0
    events: int = 0
    flagged: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """What the producer process needs to make a seed's chunks (picklable)."""

    count: int
    seed: int
    until: datetime
    geoip: GeoIpSettings
    travel: TravelSettings
    # The seeder's ingestor's: the producer summarises each chunk for them.
    observers: tuple[LoginEventObserver, ...]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Some users' rows, and their sign-ins graded."""

    users: list[dict[str, Any]]
    sign_ins: Prepared


class DemoSeeder:
    def __init__(self, db: Database, ingestor: BulkIngestor, geoip: GeoIpSettings) -> None:
        """`geoip`: the database the producer process opens for itself (the ingestor's
        locator stays with this process)."""
        self.db = db
        self.ingestor = ingestor
        self.geoip = geoip

    async def seed(
        self,
        count: int,
        seed: int,
        until: datetime,
        progress: Callable[[int], None] = lambda _: None,
    ) -> SeedReport:
        report = SeedReport()
        with collecting_between_batches() as batch_done:
            ingestor = self.ingestor
            plan = Plan(
                count, seed, until, self.geoip, ingestor.settings, tuple(ingestor.observers)
            )
            producer = _Producer(plan)
            try:
                async with aclosing(producer.chunks()) as chunks:
                    async for chunk in chunks:
                        if report.users == 0:  # the seed's first chunk
                            await self._refuse_reseed(chunk.users[0]["username"])
                        await self._store(chunk, report, progress)
                        # The seed grows every table it writes many times over: analysed
                        # as it goes, its look-ups keep using their indexes (db.statistics).
                        await refresh_statistics(self.db)
                        batch_done()
            finally:
                producer.close()
        await analyse_after_bulk_load(self.db)
        return report

    async def _refuse_reseed(self, username: str) -> None:
        async with self.db.read() as session:
            if await DemoRepository(session).username_taken(username.lower()):
                raise Conflict(
                    f"demo users of seed {username} exist already; pick another --seed",
                    code="demo_seeded",
                )

    async def _store(
        self, chunk: Chunk, report: SeedReport, progress: Callable[[int], None]
    ) -> None:
        """Write a chunk in one transaction. It is in hand before the transaction opens: the
        transaction holds SQLite's write lock, never while waiting for the producer."""
        ingest = IngestReport()
        async with self.db.transaction() as session:
            await DemoRepository(session).insert_users(chunk.users)
            await self.ingestor.store_prepared(session, chunk.sign_ins, ingest)
        report.users += len(chunk.users)
        report.events += ingest.accepted
        report.flagged += ingest.suspicious
        progress(len(chunk.users))


class _Producer:
    """The producer process and the receiving end of its pipe."""

    def __init__(self, plan: Plan) -> None:
        # fork where there is one: the child starts with every module loaded.
        methods = multiprocessing.get_all_start_methods()
        context: Any = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=produce,
            args=(self.receiver, sender, plan),
            name="globeguard-demo-producer",
            daemon=True,
        )
        self.process.start()
        sender.close()

    async def chunks(self) -> AsyncGenerator[Chunk, None]:
        """Every chunk in order. Received only between writes: unpickling in a thread while
        the writer runs would fight it for the GIL at every row SQLite steps through."""
        while (chunk := await self.next()) is not None:
            yield chunk

    async def next(self) -> Chunk | None:
        """The next chunk, or None after the last."""
        try:
            kind, payload = await asyncio.get_running_loop().run_in_executor(
                None, self.receiver.recv
            )
        except EOFError:
            self.process.join(timeout=5)
            raise RuntimeError(
                f"the demo data producer stopped (exit code {self.process.exitcode})"
            ) from None
        if kind == "error":
            raise RuntimeError(f"the demo data producer failed: {payload}")
        return payload if kind == "chunk" else None

    def close(self) -> None:
        self.receiver.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)


def produce(inherited: Connection, sender: Connection, plan: Plan) -> None:
    """The producer process: every chunk of the seed, in order, then "done".

    A thread writes to the pipe, so the producer runs up to `AHEAD` chunks ahead of the
    seeder instead of waiting, chunk by chunk, for it to read."""
    # The seeder's end of the pipe, which a forked child holds a copy of: closed, so that
    # the seeder going away breaks the pipe instead of leaving the producer blocked.
    inherited.close()
    # No automatic cycle collection: the producer makes no cycles (tested), and each full
    # collection would walk the GeoIP cache's 100k results (kit.collector).
    gc.disable()
    outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=AHEAD)
    writer = threading.Thread(target=_send_all, args=(outbox, sender), daemon=True)
    writer.start()
    try:
        locator = local_locator(plan.geoip)
        ingestor = BulkIngestor(locator, plan.travel, plan.observers)
        for chunk in chunks(plan.count, plan.seed, plan.until, locator, ingestor):
            outbox.put(_message("chunk", chunk))
        outbox.put(_message("done", None))
    except Exception as exc:  # reported to the seeder, which raises it
        outbox.put(_message("error", f"{type(exc).__name__}: {exc}"))
    finally:
        outbox.put(None)
        writer.join()
        sender.close()


def _message(kind: str, payload: Any) -> bytes:
    return pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)


def _send_all(outbox: queue.Queue[bytes | None], sender: Connection) -> None:
    while (message := outbox.get()) is not None:
        try:
            sender.send_bytes(message)
        except BrokenPipeError:
            # The seeder stopped listening (an error, Ctrl-C, or it died): nothing left to
            # do, and the producer must not stay behind blocked on a full outbox.
            os._exit(0)


def chunks(
    count: int, seed: int, until: datetime, locator: GeoLocator, ingestor: BulkIngestor
) -> Iterator[Chunk]:
    """The seed's users a chunk at a time, with their sign-ins graded. Pure CPU work: no
    database."""

    def city(ip: str) -> City | None:
        found = locator.locate(ip)
        if not found.located or found.city_geoname_id is None or found.latitude is None:
            return None
        return City(found.city_geoname_id, found.latitude, found.longitude or 0.0)

    batch: list[DemoUser] = []
    for user in users(count, seed, city, until):
        batch.append(user)
        if len(batch) == USERS_PER_CHUNK:
            yield _chunk(batch, ingestor)
            batch = []
    if batch:
        yield _chunk(batch, ingestor)


def _chunk(batch: Sequence[DemoUser], ingestor: BulkIngestor) -> Chunk:
    # model_construct: the generator's values are valid by construction (aware UTC times,
    # dotted-quad addresses), and validating 360k of them was a tenth of the producer's time.
    events = [
        (
            n,
            IncomingEvent.model_construct(
                subject=str(u.id),
                occurred_at=login.occurred_at,
                ip=login.ip,
                success=login.success,
                event_uuid=login.event_uuid,
            ),
        )
        for n, (u, login) in enumerate(((u, x) for u in batch for x in u.logins), start=1)
    ]
    owners = {str(u.id): u.id for u in batch}
    return Chunk([_user_row(u) for u in batch], ingestor.prepare_new(events, SOURCE, owners))


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
        "password_reset_required": False,
        "created_at": created,
        "updated_at": created,
    }
