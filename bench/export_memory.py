#!/usr/bin/env python3
"""Peak memory of a large user export: does it stay flat as the table grows?

Fills a fresh SQLite database with `--users` users (default 1,000,000; AuthGlobeTrek-shaped
metadata, written straight with sqlite3 to keep the set-up short), then runs the export job's
writer (NDJSON, every default field, gzip) in this process and samples the peak RSS
(`ru_maxrss`) after 1 %, 10 %, 50 % and 100 % of the rows. A streamed export holds a page or
two whatever the size, so the peak after 10 % and after 100 % should be about the same; an
export that buffered would grow with the table.

Run:  .venv/bin/python bench/export_memory.py [--users 1000000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import say

from globeguard.boot import prepare
from globeguard.jobs.exports import Exporter, resolve
from globeguard.jobs.service import user_filter
from globeguard.settings import Settings
from globeguard.wiring import build

TIERS = ("free", "basic", "premium")
SOURCES = ("social media", "word-of-mouth", "advertising")
BATCH = 20_000


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def random_ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(lo, hi)) for lo, hi in ((1, 223), (0, 255), (0, 255), (1, 254)))


def fill(path: Path, users: int, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with sqlite3.connect(path) as conn:
        for first in range(0, users, BATCH):
            rows = []
            for i in range(first, min(users, first + BATCH)):
                created = (start + timedelta(seconds=i)).isoformat(sep=" ").replace("+00:00", "")
                metadata = {
                    "theme": "light",
                    "subscription_tier": rng.choice(TIERS),
                    "referral_source": rng.choice(SOURCES),
                    "last_login_ip": random_ip(rng),
                }
                app = {"roles": ["user"], "plan": "premium"}
                rows.append(
                    (str(uuid.UUID(int=rng.getrandbits(128))).replace("-", ""), f"user{i}",
                     f"user{i}", f"user{i}@test.com", f"user{i}@test.com", "User", f"#{i}",
                     json.dumps(metadata), json.dumps(app), created, created, i % 50)
                )  # fmt: skip
            conn.executemany(
                "INSERT INTO user (id, username, username_key, email, email_key, given_name,"
                " family_name, user_metadata, app_metadata, created_at, updated_at, logins_count,"
                " email_verified, status, token_version, revision) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'active', 1, 1)",
                rows,
            )
            conn.commit()


async def measure(workdir: Path, users: int, seed: int) -> dict[str, object]:
    settings = Settings(
        _env_file=None,
        db={"url": f"sqlite+aiosqlite:///{workdir / 'gg.db'}"},
        data_dir=workdir,
        secret_key="bench-only-secret-for-a-throwaway-database",  # noqa: S106 - a throwaway database
        jobs={"embedded": False},
    )
    container = build(settings)
    await prepare(container)
    say(f"filling {users:,} users")
    fill(workdir / "gg.db", users, seed)
    marks = {max(1, users // 100): "1%", users // 10: "10%", users // 2: "50%"}
    samples: dict[str, float] = {"before": peak_rss_mib()}
    next_marks = sorted(marks)

    async def progress(done: int) -> None:
        while next_marks and done >= next_marks[0]:
            samples[marks[next_marks.pop(0)]] = peak_rss_mib()

    exporter = Exporter(container.db)
    target = workdir / "export.ndjson.gz"
    say("exporting")
    started = time.perf_counter()
    written = await exporter.write(
        target, resolve(None), "ndjson", user_filter(None, "sqlite"), progress
    )
    elapsed = time.perf_counter() - started
    samples["100%"] = peak_rss_mib()
    await container.db.dispose()
    with gzip.open(target, "rb") as handle:
        lines = sum(1 for _ in handle)
    if lines != users or written != users:
        raise SystemExit(f"export wrote {written} users, file has {lines} lines, expected {users}")
    return {
        "users": users,
        "seconds": round(elapsed, 1),
        "users_per_s": round(users / elapsed),
        "file_mib": round(target.stat().st_size / 2**20, 1),
        "peak_rss_mib": {k: round(v, 1) for k, v in samples.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gg-export-mem-") as tmp:
        result = asyncio.run(measure(Path(tmp), args.users, args.seed))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        rss = result["peak_rss_mib"]
        print(
            f"exported {result['users']:,} users in {result['seconds']} s "
            f"({result['users_per_s']:,} users/s), {result['file_mib']} MiB gzipped"
        )
        print("peak RSS (MiB) after: " + ", ".join(f"{k} {v}" for k, v in rss.items()))  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    sys.exit(main())
