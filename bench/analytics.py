#!/usr/bin/env python3
"""Analytics read latency at 1M login events divided by the same at 10k, on SQLite and on
PostgreSQL, and the demo seeder's users/s.

What is measured. For each database, two fresh databases are filled, one with 10k and one with
1M login events, and the same requests are timed on both. Counted against the goal (1M ÷ 10k
<= 2, i.e. a request reads cells, not events): the dashboard's opening requests, a world
heatmap (zoom 2) and the top-10 cities over everything kept, served from the all-days totals.
Printed for information: the same for the last 7 days, read from the day rollups, one row per
cell and day (at 10k events a week holds a few hundred events, so its rows are sparse; at 1M
every cell has a row every day, which no per-day store avoids); requests with a user query
(`q=`) and `by=users`, which read the per-subject rollups and grow with the users involved.

How. Rollups are filled by the production observer (`RollupObserver.inserted`), fed the rows
the recording paths would write, in batches of 1000 inside transactions, as the bulk path
does; the raw `login_event` rows are not written, since no analytics request reads them
(recording throughput is bench/travel.py's). Both sizes are the same population (`--users`,
default 10,000 Globeguard users, 1 in 3 premium for `q=`) with the same homes (40 % in ten
hot spots, the rest in cities the bundled GeoIP database places, drawn as the demo seeder
draws them): 10k events is each user signing in about once, 1M about a hundred times. One
sign-in in ten is away, at another user's home; 10 % fail; verdicts as grading leaves them
(mostly none/plausible, 2 % flagged); times over the last 30 days. `ANALYZE` after filling.
Latency: the service call inside `db.read()` (SQL and response building, no HTTP), median of
15 runs after 3 warm-ups, the two databases alternately (ABBA).

The seeder: `globeguard demo seed`'s service on a fresh SQLite database, 100,000 users (the
count the goal "100k users must not take minutes" names), its users/s and time taken.

PostgreSQL is measured when GLOBEGUARD_BENCH_POSTGRES_URL (or GLOBEGUARD_TEST_POSTGRES_URL)
names a server whose user may create databases.

Run:  .venv/bin/python bench/analytics.py [--large 1000000] [--small 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from globeguard.analytics.params import heatmap_params, top_params
from globeguard.analytics.rollups import RollupObserver
from globeguard.analytics.service import AnalyticsService
from globeguard.db.migrate import upgrade
from globeguard.demo.generate import Addresses, City
from globeguard.demo.service import DemoSeeder
from globeguard.identity.models import User
from globeguard.settings import Settings
from globeguard.wiring import build

GOAL = 2.0
BENCH_SECRET = "bench-secret-key-not-for-production"  # noqa: S105 - a throwaway database
BATCH = 1000
RUNS, WARMUP = 15, 3
NOW = datetime.now(UTC)
WEEK_AGO = (NOW - timedelta(days=6)).date().isoformat()

REQUESTS: dict[str, tuple[str, list[tuple[str, str]], bool]] = {
    # name: (endpoint, parameters, counted against the goal)
    "heatmap, all days": ("heatmap", [("zoom", "2")], True),
    "top-10 cities, all days": ("top", [], True),
    "heatmap, last 7 days": ("heatmap", [("zoom", "2"), ("from", WEEK_AGO)], False),
    "top-10 cities, last 7 days": ("top", [("from", WEEK_AGO)], False),
    "heatmap, q=premium users": (
        "heatmap",
        [("zoom", "2"), ("q", "user_metadata.subscription_tier:premium")],
        False,
    ),
    "heatmap, by=users": ("heatmap", [("zoom", "2"), ("by", "users")], False),
}


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Places:
    """Real cities from the bundled GeoIP database, with hot spots (see demo.generate)."""

    def __init__(self, settings: Settings, rng: random.Random) -> None:
        self.locator = build(settings).locator
        self.rng = rng
        self.details: dict[int, Any] = {}
        self.addresses = Addresses(rng, self._city)
        self.pool = [self.addresses.anywhere() for _ in range(3000)]

    def _city(self, ip: str) -> City | None:
        found = self.locator.locate(ip)
        if not found.located or found.city_geoname_id is None or found.latitude is None:
            return None
        self.details[found.city_geoname_id] = found
        return City(found.city_geoname_id, found.latitude, found.longitude or 0.0)

    def home(self) -> Any:
        _, city = self.addresses.home() if self.rng.random() < 0.4 else self.rng.choice(self.pool)
        return self.details[city.geoname_id]


class Population:
    """The same users, with the same homes, for every database of a run: 1M events are the
    same people signing in a hundred times more often than 10k, not a hundred times more
    people (who would add places, and rightly cost more cells)."""

    def __init__(self, places: Places, size: int, seed: int = 3) -> None:
        rng = random.Random(seed)
        self.users = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(size)]
        self.homes = [places.home() for _ in self.users]


def event_rows(count: int, seed: int, population: Population) -> Any:
    rng = random.Random(seed)
    size = len(population.users)
    for n in range(count):
        who = rng.randrange(size)
        # One sign-in in ten away from home: at another user's home (people travel to where
        # people are).
        where = who if rng.random() < 0.9 else rng.randrange(size)
        geo = population.homes[where]
        verdict = rng.choices(("none", "plausible", "suspicious", "impossible"), (30, 68, 1, 1))[0]
        yield {
            "event_uuid": f"b{seed}-{n}",
            "subject": str(population.users[who]),
            "user_id": None,
            "occurred_at": NOW - timedelta(seconds=rng.uniform(0, 30 * 86400)),
            "success": rng.random() >= 0.1,
            "located": True,
            "latitude": geo.latitude,
            "longitude": geo.longitude,
            "country_iso": geo.country_iso,
            "country_geoname_id": geo.country_geoname_id,
            "subdivision_iso": geo.subdivision_iso,
            "subdivision_geoname_id": geo.subdivision_geoname_id,
            "city_name": geo.city_name,
            "city_geoname_id": geo.city_geoname_id,
            "verdict": verdict,
            "verdict_reasons": None,
        }


async def fill(settings: Settings, events: int, population: Population) -> Any:
    container = build(settings)
    await upgrade(container.db.engine)
    users = population.users
    async with container.db.transaction() as session:
        for start in range(0, len(users), 5000):
            await session.execute(
                insert(User),
                [
                    {
                        "id": u,
                        "username": f"b{u.hex[:12]}",
                        "username_key": f"b{u.hex[:12]}",
                        "user_metadata": {"subscription_tier": ("free", "basic", "premium")[i % 3]},
                        "app_metadata": {},
                    }
                    for i, u in enumerate(users[start : start + 5000], start=start)
                ],
            )
    observer = RollupObserver()
    batch: list[dict[str, Any]] = []
    started = time.perf_counter()
    for done, row in enumerate(event_rows(events, 7, population), start=1):
        batch.append(row)
        if len(batch) == BATCH:
            async with container.db.transaction() as session:
                await observer.inserted(session, batch)
            batch = []
            if done % 100_000 == 0:
                say(f"  {done:,} events ({done / (time.perf_counter() - started):,.0f}/s)")
    if batch:
        async with container.db.transaction() as session:
            await observer.inserted(session, batch)
    # Fresh planner statistics, as autovacuum (PostgreSQL) or `ANALYZE` would leave them.
    async with container.db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return container


async def timed(container: Any, endpoint: str, params: list[tuple[str, str]]) -> float:
    service = AnalyticsService()
    start = time.perf_counter()
    async with container.db.read() as session:
        if endpoint == "heatmap":
            await service.heatmap(session, heatmap_params(params))
        else:
            await service.top_locations(session, top_params(params))
    return time.perf_counter() - start


async def latencies(small: Any, large: Any) -> dict[str, tuple[float, float]]:
    """Median latency of each request on both databases, measured alternately (ABBA) so a
    change of load on the machine weighs on both sides alike."""
    medians = {}
    for request, (endpoint, params, _) in REQUESTS.items():
        for container in (small, large):
            for _ in range(WARMUP):
                await timed(container, endpoint, params)
        times: dict[int, list[float]] = {0: [], 1: []}
        for round_ in range(RUNS):
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            for side in order:
                times[side].append(await timed((small, large)[side], endpoint, params))
        medians[request] = (statistics.median(times[0]), statistics.median(times[1]))
    return medians


async def measure(
    name: str,
    make_url_for: Callable[[str], Awaitable[str]],
    sizes: list[int],
    population: Population,
    data: Path,
) -> dict[str, tuple[float, float]]:
    containers = []
    try:
        for size in sizes:
            say(f"{name}: filling rollups with {size:,} events")
            settings = Settings(
                _env_file=None,
                db={"url": await make_url_for(f"{size}")},
                data_dir=data,
                secret_key=BENCH_SECRET,
            )
            containers.append(await fill(settings, size, population))
        say(f"{name}: measuring")
        return await latencies(*containers)
    finally:
        for container in containers:
            await container.db.dispose()


async def seeder_timing(data: Path, users: int) -> tuple[float, float]:
    """(users/s, seconds) of one seeding."""
    settings = Settings(
        _env_file=None,
        db={"url": f"sqlite+aiosqlite:///{data}/seed.db"},
        data_dir=data,
        secret_key=BENCH_SECRET,
    )
    container = build(settings)
    await upgrade(container.db.engine)
    try:
        seeder = DemoSeeder(container.db, container.ingestor, container.settings.geoip)
        start = time.perf_counter()
        report = await seeder.seed(users, 5, NOW)
        seconds = time.perf_counter() - start
        return report.users / seconds, seconds
    finally:
        await container.db.dispose()


async def run(data: Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000, help="population (both sizes)")
    parser.add_argument("--seed-users", type=int, default=100_000)
    args = parser.parse_args()
    sizes = [args.small, args.large]
    places = Places(Settings(_env_file=None, data_dir=data), random.Random(1))
    population = Population(places, args.users)

    async def sqlite_url(tag: str) -> str:
        return f"sqlite+aiosqlite:///{data}/analytics-{tag}.db"

    report = {"SQLite": await measure("SQLite", sqlite_url, sizes, population, data)}
    admin = os.environ.get("GLOBEGUARD_BENCH_POSTGRES_URL") or os.environ.get(
        "GLOBEGUARD_TEST_POSTGRES_URL"
    )
    created: list[str] = []
    if admin:

        async def pg_url(tag: str) -> str:
            name = f"gg_bench_{tag}_{secrets.token_hex(3)}"
            engine = create_async_engine(
                make_url(admin).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
            )
            async with engine.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            await engine.dispose()
            created.append(name)
            return (
                make_url(admin)
                .set(drivername="postgresql+asyncpg", database=name)
                .render_as_string(hide_password=False)
            )

        try:
            report["PostgreSQL"] = await measure("PostgreSQL", pg_url, sizes, population, data)
        finally:
            engine = create_async_engine(
                make_url(admin).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
            )
            async with engine.connect() as conn:
                for name in created:
                    await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await engine.dispose()
    else:
        say("PostgreSQL skipped: set GLOBEGUARD_BENCH_POSTGRES_URL")
    say(f"demo seeder: {args.seed_users} users on SQLite")
    users_per_s, seconds = await seeder_timing(data, args.seed_users)

    ok = True
    print(f"\nAnalytics latency at {args.large:,} events / at {args.small:,} (goal <= {GOAL})")
    for database, medians in report.items():
        print(f"  {database}")
        for request, (_, _, counted) in REQUESTS.items():
            small, large = medians[request]
            ratio = large / small
            verdict = ("ok" if ratio <= GOAL else "OVER GOAL") if counted else "info"
            ok = ok and (ratio <= GOAL or not counted)
            ms = f"({small * 1000:7.2f} ms -> {large * 1000:7.2f} ms)"
            print(f"    {request:28s} {ratio:6.2f}   {ms}  {verdict}")
    print(
        f"\nDemo seeder: {users_per_s:,.0f} users/s "
        f"({args.seed_users:,} users with their sign-ins in {seconds:.1f} s, SQLite)"
    )
    return 0 if ok else 3


async def main() -> int:
    data = Path(tempfile.mkdtemp(prefix="gg-bench-analytics-"))
    try:
        return await run(data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
