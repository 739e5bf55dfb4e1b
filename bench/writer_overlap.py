#!/usr/bin/env python3
"""Why a bulk batch's SQLite writes cost the event loop what they cost: the price of a row
written by the writer thread while the event loop thread runs Python, by the two ways a
batch can reach SQLite, measured in one run.

Why: `POST /api/v1/login-events` stores each batch in one transaction whose writes (the
events, their rollups, the profiles) go to the SQLite writer thread as `executemany` calls
(db/sqlite_writer.py). Both threads run under one interpreter lock, and sqlite3's
`executemany` hands it back for every row's `sqlite3_step` and must win it again to bind the
next row; with the loop busy, winning it back waits for the loop to be asked to let go, once
per switch interval (`sys.getswitchinterval()`, 5 ms by default), and the writer's rows
crawl. One statement that reads the whole batch from one JSON text (`INSERT ... SELECT ...
FROM json_each(?)`, as PostgreSQL takes its batches and as the delivery ledger writes on
SQLite) steps through every row in C with the lock released once, so it keeps its pace
beside a busy loop, but each row costs SQLite more (json_extract per value, where a bound
value is read as it is).

Which matters depends on what the loop does while a batch commits. A stream's next batch
is graded against the profiles the batch before it left, so the loop only reads and parses
the next batch meanwhile; a `POST /v1/` group commits while most of its requests wait for
it. Both then run at about one over the loop's plus the writer's CPU per event (bench/
travel.py prints both), and the cheaper rows win: measured on the bulk path with every
DriverRows statement and rollup upsert switched to one JSON statement, ingest went from
8,812 to 7,040 events/s and `POST /v1/` from 2,310 to 2,013 req/s, the writer's CPU per
event from 51 to 77 µs. So the bulk paths keep executemany; this script keeps the figures
behind that choice checkable on any machine.

What is measured, on a fresh database file with WAL and synchronous=NORMAL (as `serve` runs
SQLite), a table shaped like a rollup (a key, text, a real, a time text, an integer, one
secondary index): `--rows` rows (default 20,000) written in one transaction on a thread of
its own, then committed,

* **executemany, alone** — with this process otherwise idle;
* **executemany, beside Python** — while the main thread runs a pure-Python loop (the event
  loop grading a batch), at the interpreter's default switch interval;
* **executemany, beside Python, short switch** — the same at `--switch-ms` (default 0.1 ms):
  what a smaller interval would buy back, and what it costs the busy thread;
* **one JSON statement, alone** and **beside Python** — the rows as one JSON text, encoded
  by orjson on the writer thread, read by json_each.

Each side is timed by the wall clock of its writes (what a batch waits for); the sides take
turns in ABBA order for `--rounds` rounds and each side is the mean of its runs.

Run:  .venv/bin/python bench/writer_overlap.py [--rows 20000] [--rounds 2] [--switch-ms 0.1]
Exit status: 0 measured, 1 failed set-up, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from statistics import mean

import orjson
from _common import EXIT_INTERRUPTED, run_guarded, say

SCHEMA = (
    "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c REAL, d TEXT, e INTEGER)",
    "CREATE INDEX ix_t ON t (b, e)",
)
INSERT = "INSERT INTO t VALUES (?, ?, ?, ?, ?)"
INSERT_JSON = (
    "INSERT INTO t SELECT json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'),"
    " json_extract(e.value, '$[2]'), json_extract(e.value, '$[3]'),"
    " json_extract(e.value, '$[4]') FROM json_each(?) AS e ORDER BY e.key"
)
Write = Callable[[sqlite3.Connection, list[tuple]], None]


def by_executemany(connection: sqlite3.Connection, rows: list[tuple]) -> None:
    connection.executemany(INSERT, rows)


def by_json(connection: sqlite3.Connection, rows: list[tuple]) -> None:
    connection.execute(INSERT_JSON, (orjson.dumps(rows).decode(),))


def rows_of(count: int, offset: int) -> list[tuple[int, str, float, str, int]]:
    return [
        (offset + i, f"subject-{i % 2000}", i * 0.5, "2026-12-06 12:00:00.000000", i % 7)
        for i in range(count)
    ]


def open_database(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    for statement in SCHEMA:
        connection.execute(statement)
    return connection


def timed_write(connection: sqlite3.Connection, how: Write, rows: list[tuple]) -> float:
    """Seconds for one transaction of `rows`, written `how` on a thread of its own."""
    spent: list[float] = []

    def write() -> None:
        began = time.perf_counter()
        connection.execute("BEGIN")
        how(connection, rows)
        connection.execute("COMMIT")
        spent.append(time.perf_counter() - began)

    writer = threading.Thread(target=write, name="writer")
    writer.start()
    writer.join()
    return spent[0]


def beside_python(write: Callable[[], float]) -> tuple[float, float]:
    """`write()`'s seconds while this thread runs Python, and the Python work done per
    second meanwhile (additions, in millions)."""
    result: list[float] = []
    runner = threading.Thread(target=lambda: result.append(write()), name="writer")
    done, began = 0, time.perf_counter()
    runner.start()
    while runner.is_alive():
        total = 0
        for i in range(1_000):
            total += i
        done += 1_000
    elapsed = time.perf_counter() - began
    runner.join()
    return result[0], done / elapsed / 1e6


SIDES = ("alone", "beside", "short", "json_alone", "json_beside")
# The sides written while the main thread runs Python, whose pace is reported too.
BUSY_SIDES = ("beside", "short", "json_beside")


def measure(opts: argparse.Namespace, workdir: Path) -> dict[str, list[float]]:
    connection = open_database(workdir / "overlap.db")
    default_switch = sys.getswitchinterval()
    offset = 0
    runs: dict[str, list[float]] = {side: [] for side in SIDES}
    python_rate: dict[str, list[float]] = {side: [] for side in BUSY_SIDES}

    def next_rows() -> list[tuple]:
        nonlocal offset
        offset += opts.rows
        return rows_of(opts.rows, offset)

    def alone(kind: str, how: Write) -> None:
        runs[kind].append(timed_write(connection, how, next_rows()))

    def beside(kind: str, how: Write, switch: float) -> None:
        rows = next_rows()
        sys.setswitchinterval(switch)
        try:
            seconds, rate = beside_python(lambda: timed_write(connection, how, rows))
        finally:
            sys.setswitchinterval(default_switch)
        runs[kind].append(seconds)
        python_rate[kind].append(rate)

    sides = [
        lambda: alone("alone", by_executemany),
        lambda: beside("beside", by_executemany, default_switch),
        lambda: beside("short", by_executemany, opts.switch_ms / 1000),
        lambda: alone("json_alone", by_json),
        lambda: beside("json_beside", by_json, default_switch),
    ]
    # Warm-up, not counted: the file grows, the statements are prepared.
    timed_write(connection, by_executemany, next_rows())
    timed_write(connection, by_json, next_rows())
    for _ in range(opts.rounds):
        for side in [*sides, *reversed(sides)]:
            side()
    connection.close()
    return {**runs, **{f"python_{kind}": rates for kind, rates in python_rate.items()}}


def report(opts: argparse.Namespace, runs: dict[str, list[float]]) -> str:
    per_row = {kind: mean(runs[kind]) / opts.rows * 1e6 for kind in SIDES}
    switch_ms = sys.getswitchinterval() * 1000
    labels = {
        "alone": "executemany, alone",
        "beside": f"executemany, beside Python ({switch_ms:g} ms switch)",
        "short": f"executemany, beside Python ({opts.switch_ms:g} ms switch)",
        "json_alone": "one JSON statement, alone",
        "json_beside": f"one JSON statement, beside Python ({switch_ms:g} ms)",
    }
    lines = [
        f"SQLite writes on a thread, {opts.rows} rows a transaction, {opts.rounds} rounds "
        f"(ABBA), sqlite {sqlite3.sqlite_version}",
        "",
        f"{'writer':52} {'us/row':>8} {'ratio to executemany alone':>27}",
    ]
    for kind in SIDES:
        ratio = per_row[kind] / per_row["alone"]
        lines.append(f"{labels[kind]:52} {per_row[kind]:8.1f} {ratio:27.1f}")
    lines += ["", "the busy thread's Python work meanwhile, M additions/s:"]
    for kind in BUSY_SIDES:
        lines.append(f"  {labels[kind]:50} {mean(runs[f'python_{kind}']):8.1f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="SQLite writes on a thread, by executemany and by one JSON statement, "
        "alone and beside a busy Python thread."
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows a transaction")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (default 2)")
    parser.add_argument(
        "--switch-ms", type=float, default=0.1, help="the short switch interval (default 0.1)"
    )
    opts = parser.parse_args(argv)
    if opts.rows < 1 or opts.rounds < 1 or opts.switch_ms <= 0:
        parser.error("--rows and --rounds must be >= 1, --switch-ms > 0")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    say("measuring SQLite writes alone and beside a busy Python thread")
    runs = run_guarded(lambda workdir: measure(opts, workdir))
    if runs is None:
        return EXIT_INTERRUPTED
    print(report(opts, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
