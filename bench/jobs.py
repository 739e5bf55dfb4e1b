#!/usr/bin/env python3
"""Bulk-job throughput of Globeguard, as a ratio to a baseline measured in the same run.

Against one `globeguard serve` process started here on a fresh database, through the public
API only (an admin's API key with `jobs:manage` and what the jobs read and write):

* **Import** — `POST /api/v1/jobs/users-imports` with a gzipped NDJSON file of `--users`
  users (default 200,000; AuthGlobeTrek-shaped metadata, Auth0-style ids, a bcrypt hash on
  one user in ten). Users/s = users inserted / (the job's `finished_at` - `started_at`), as
  the server records them: parsing, validation, batched INSERTs, role rows and one outbox
  event per user, 250 per transaction. Printed as an absolute figure: there is no baseline
  that does the same work.
* **Export** — `POST /api/v1/jobs/users-exports` (NDJSON, every default field, gzip), users/s
  from the job's timestamps, divided by **raw SELECT + orjson**: this process reading the same
  columns of the same rows in the same order with the bare driver (sqlite3 / asyncpg, one
  query, no ORM) and `orjson.dumps` of each row as a dict, nothing written. The ratio is the
  share of the bare read-and-serialise speed the export keeps while also paging, converting
  types, and gzip-writing a file. Goal: >= 0.5.

Noise control: ABBA order over `--rounds` rounds (baseline, export, export, baseline, ...),
each side the mean of its runs; the baseline runs with the server idle.

Run:  .venv/bin/python bench/jobs.py [--users 200000] [--rounds 2] [--json] [--check]
          [--db-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
Exit status: 0 measured, 1 invalid measurement or failed set-up, 3 below goal with --check.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import random
import sqlite3
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt
import orjson
from _common import (
    EXIT_BELOW_GOAL,
    EXIT_INTERRUPTED,
    InvalidMeasurementError,
    Ratio,
    Series,
    _asyncpg_dsn,
    admin_api_key,
    backend_of,
    database,
    http,
    report_json,
    run_guarded,
    say,
    server,
    server_env,
    table_lines,
)

GOAL = 0.5
POLL_S = 0.25
JOB_TIMEOUT_S = 3600.0
COLUMNS = (
    "id", "username", "email", "email_verified", "given_name", "family_name", "status",
    "user_metadata", "app_metadata", "created_at", "updated_at", "last_login_at",
    "last_login_ip", "logins_count",
)  # fmt: skip


def random_ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(lo, hi)) for lo, hi in ((1, 223), (0, 255), (0, 255), (1, 254)))


def users_file(path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    # One real bcrypt hash, shared: hashing 20,000 would only slow the set-up down.
    hashed = bcrypt.hashpw(b"bench-password", bcrypt.gensalt(rounds=4)).decode()
    with gzip.open(path, "wb", compresslevel=1) as out:
        for i in range(count):
            record: dict[str, Any] = {
                "user_id": f"auth0|{i:012x}",
                "email": f"user{i}@test.com",
                "email_verified": i % 3 == 0,
                "given_name": "User",
                "family_name": f"#{i}",
                "created_at": "2025-01-01T00:00:00.000Z",
                "last_login": "2026-11-01T12:00:00.000Z",
                "last_ip": random_ip(rng),
                "logins_count": rng.randint(1, 500),
                "user_metadata": {
                    "theme": "light",
                    "subscription_tier": rng.choice(("free", "basic", "premium")),
                    "referral_source": rng.choice(("social media", "word-of-mouth", "advertising")),
                },
                "app_metadata": {"roles": ["admin" if i % 2 == 0 else "user"], "plan": "premium"},
            }  # fmt: skip
            if i % 10 == 0:
                record["password_hash"] = hashed
            out.write(orjson.dumps(record) + b"\n")


def api_key(base: str, env: dict[str, str], workdir: Path) -> str:
    return admin_api_key(
        base, env, workdir, ["jobs:manage", "users:read", "users:write", "users:password_hashes"]
    )


def wait_job(base: str, key: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        status, job = http("GET", f"{base}/api/v1/jobs/{job_id}", headers={"X-API-KEY": key})
        if status != 200:
            raise InvalidMeasurementError(f"GET /jobs/{job_id} answered {status}: {job}")
        if job["status"] in ("completed", "failed", "cancelled"):
            if job["status"] != "completed":
                raise InvalidMeasurementError(f"job {job_id} {job['status']}: {job['error']}")
            return dict(job)
        time.sleep(POLL_S)
    raise InvalidMeasurementError(f"job {job_id} did not end in {JOB_TIMEOUT_S:.0f} s")


def job_seconds(job: dict[str, Any]) -> float:
    started = datetime.fromisoformat(job["started_at"])
    finished = datetime.fromisoformat(job["finished_at"])
    return max((finished - started).total_seconds(), 1e-6)


def run_import(base: str, key: str, path: Path, users: int) -> float:
    request = urllib.request.Request(  # noqa: S310 - an http://127.0.0.1 URL built here
        f"{base}/api/v1/jobs/users-imports",
        data=path.read_bytes(),
        method="POST",
        headers={"Content-Type": "application/gzip", "X-API-KEY": key},
    )
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        job_id = orjson.loads(response.read())["id"]
    job = wait_job(base, key, job_id)
    result = job["result"]
    if result["inserted"] != users or result["failed"]:
        raise InvalidMeasurementError(
            f"import: {result['inserted']} inserted, {result['failed']} failed"
        )
    return users / job_seconds(job)


def run_export(base: str, key: str, users: int) -> float:
    status, body = http("POST", f"{base}/api/v1/jobs/users-exports", {}, headers={"X-API-KEY": key})
    if status != 202:
        raise InvalidMeasurementError(f"export answered {status}: {body}")
    job = wait_job(base, key, body["id"])
    if job["result"]["users"] < users:
        raise InvalidMeasurementError(f"export wrote {job['result']['users']} users")
    return float(job["result"]["users"]) / job_seconds(job)


def raw_sqlite(path: Path) -> tuple[int, float]:
    query = f'SELECT {", ".join(COLUMNS)} FROM "user" ORDER BY created_at, id'  # noqa: S608
    started = time.perf_counter()
    rows = size = 0
    with sqlite3.connect(path) as conn:
        for row in conn.execute(query):
            size += len(orjson.dumps(dict(zip(COLUMNS, row, strict=True))))
            rows += 1
    return rows, time.perf_counter() - started


async def raw_postgres(url: str) -> tuple[int, float]:
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(_asyncpg_dsn(url, make_url(url).database or "postgres"))
    query = f'SELECT {", ".join(COLUMNS)} FROM "user" ORDER BY created_at, id'  # noqa: S608
    try:
        started = time.perf_counter()
        rows = size = 0
        async with conn.transaction():
            async for row in conn.cursor(query, prefetch=1000):
                size += len(
                    orjson.dumps(dict(zip(COLUMNS, row.values(), strict=True)), default=str)
                )
                rows += 1
        return rows, time.perf_counter() - started
    finally:
        await conn.close()


def run_baseline(db_url: str, workdir: Path) -> float:
    if backend_of(db_url) == "sqlite":
        rows, seconds = raw_sqlite(workdir / "gg.db")
    else:
        rows, seconds = asyncio.run(raw_postgres(db_url))
    return rows / seconds


def run_benchmark(opts: argparse.Namespace, workdir: Path) -> tuple[list[Ratio], dict[str, Any]]:
    source = workdir / "users.ndjson.gz"
    say(f"writing {opts.users:,} users to import")
    users_file(source, opts.users, opts.seed)
    imported = Series("import (job)", "users/s")
    exported = Series("export NDJSON+gzip (job)", "users/s")
    baseline = Series("raw SELECT + orjson", "users/s")
    with database(opts.db_url, workdir) as db_url:
        env = server_env(db_url, workdir, "warning")
        with server(db_url, workdir, "warning", env) as (base, _process):
            key = api_key(base, env, workdir)
            imported.runs.append(run_import(base, key, source, opts.users))
            say(f"  import                        {imported.runs[-1]:10.1f} users/s")
            for is_baseline in [
                b
                for i in range(opts.rounds)
                for b in ((True, False) if i % 2 == 0 else (False, True))
            ]:
                series = baseline if is_baseline else exported
                value = (
                    run_baseline(db_url, workdir)
                    if is_baseline
                    else run_export(base, key, opts.users)
                )
                series.runs.append(value)
                say(f"  {series.name:<28} {value:10.1f} {series.unit}")
    config = {
        "backend": backend_of(db_url),
        "users": opts.users,
        "rounds": opts.rounds,
        "seed": opts.seed,
        "import_users_per_s": imported.mean,
    }
    return [Ratio("export / raw SELECT + orjson", exported, baseline, GOAL)], config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Bulk export/import throughput as ratios.")
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--json", action="store_true", dest="as_json")
    parser.add_argument("--check", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    measured = run_guarded(lambda tmp: run_benchmark(opts, tmp), prefix="gg-bench-jobs-")
    if measured is None:
        return EXIT_INTERRUPTED
    ratios, config = measured
    if opts.as_json:
        print(report_json(ratios, config))
    else:
        print(
            f"Bulk jobs, {config['backend']}, {config['users']:,} users, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        print(f"import: {config['import_users_per_s']:,.0f} users/s (job time, server-side)\n")
        print("\n".join(table_lines(ratios)))
    if opts.check and not all(r.passed for r in ratios):
        return EXIT_BELOW_GOAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
