#!/usr/bin/env python3
"""What one SQL statement and one transaction cost the event loop on SQLite, as ratios to
SQLAlchemy running pysqlite on the calling thread, measured in one run.

Why: every request that writes pays its statements' cost on the event loop, and on SQLite
Globeguard runs each statement on a writer thread of its own (db/sqlite_writer.py: one hop
per statement, so that no lock wait, disk sync or long batch ever stops the loop). A hop is
a handoff between two threads and back. This script says what that costs, so that a path's
CPU per request (bench/auth.py prints sign-in's) can be read as "so many statements, so many
transactions".

What is measured, on a fresh database file with one small table, `--transactions`
transactions per run (default 2,000), each either one SELECT by primary key or `--statements`
of them (default 5), then COMMIT:

* **inline** — SQLAlchemy's synchronous Session on pysqlite, on this thread: the statement's
  cost with no hop (what the loop paid before the writer thread, freezes included).
* **threaded** — Globeguard's `Database` (the threaded writer) on uvloop, as `serve` runs it:
  the event loop thread's CPU, and its other threads' (the writer and its checkpointer).
* **threaded, one core** — the same with the loop and its writer thread kept on one CPU
  (sched_setaffinity): the part of a hop that is two cores waking each other up.

From each side's two kinds of transaction: the CPU of a further statement (the difference
divided by `--statements - 1`) and of a transaction's own work (BEGIN, COMMIT, the session:
the one-statement transaction less one statement). CPU is thread time, so it is steadier than
elapsed time on a shared machine; the threaded sides' loop and writer are read from /proc.
The sides take turns, in one order and then the reverse (inline, threaded, one core, one
core, threaded, inline for two rounds), so that a drift of the machine's speed weighs on each
alike; each side's figures are the means of its runs.

Run:  .venv/bin/python bench/statements.py [--transactions 2000] [--statements 5]
          [--rounds 2] [--json]
Exit status: 0 measured, 1 invalid measurement or failed set-up, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    EXIT_INTERRUPTED,
    CpuTallies,
    InvalidMeasurementError,
    run_guarded,
    say,
)

ROWS = 1_000
SELECT = "SELECT a, b FROM t WHERE a = :a"
INLINE, THREADED, ONE_CORE = "inline", "threaded", "threaded, one core"


@dataclass(frozen=True, slots=True)
class Costs:
    """us of CPU: a transaction's own work, and each statement in it."""

    transaction: float
    statement: float


def split_costs(one: float, many: float, statements: int) -> Costs:
    """From the CPU of a one-statement transaction and of a `statements`-statement one."""
    if statements < 2:
        raise ValueError("need transactions of at least two statements to tell them apart")
    statement = (many - one) / (statements - 1)
    return Costs(one - statement, statement)


@dataclass(slots=True)
class Side:
    """CPU per transaction (us) by thread role, for each transaction length, over the runs."""

    runs: dict[int, list[dict[str, float]]] = field(default_factory=dict)

    def add(self, statements: int, per_transaction: dict[str, float]) -> None:
        self.runs.setdefault(statements, []).append(per_transaction)

    def mean(self, statements: int, role: str) -> float:
        found = [run.get(role, 0.0) for run in self.runs[statements]]
        return sum(found) / len(found)


# --------------------------------------------------------------------------------------------
# The two ways of running the same transactions


def create_table(path: Path) -> None:
    import sqlite3

    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
        connection.executemany("INSERT INTO t (b) VALUES (?)", [("x",)] * ROWS)


def inline_run(path: Path, transactions: int, statements: int) -> dict[str, float]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    engine = create_engine(f"sqlite:///{path}")
    query = text(SELECT)
    try:
        began = time.thread_time_ns()
        for n in range(transactions):
            with Session(engine) as session:
                for k in range(statements):
                    session.execute(query, {"a": (n + k) % ROWS + 1}).all()
                session.commit()
        spent = time.thread_time_ns() - began
    finally:
        engine.dispose()
    return {"loop": spent / 1000 / transactions}


def threaded_run(path: Path, transactions: int, statements: int) -> dict[str, float]:
    import uvloop
    from sqlalchemy import text

    from globeguard.db.session import Database
    from globeguard.settings import DatabaseSettings

    query = text(SELECT)
    tally = CpuTallies(os.getpid())

    async def run() -> None:
        db = Database(DatabaseSettings(url=f"sqlite:///{path}"))
        try:
            await one_pass(db, 10)  # the writer thread starts and the statement is compiled
            if not any(t.name == "sqlite-writer" for t in threading.enumerate()):
                raise InvalidMeasurementError("no sqlite-writer thread: not the threaded writer")
            with tally.counting("run") as count:
                await one_pass(db, transactions)
                count(transactions)
        finally:
            await db.dispose()

    async def one_pass(db: Any, count: int) -> None:
        for n in range(count):
            async with db.transaction() as session:
                for k in range(statements):
                    (await session.execute(query, {"a": (n + k) % ROWS + 1})).all()

    uvloop.run(run())
    return tally.per_item()["run"]


def on_one_core(run: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    """`run(*args)` with this thread, and the threads it starts (the writer), on one of the
    CPUs it may use."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        return run(*args)
    finally:
        os.sched_setaffinity(0, allowed)


# --------------------------------------------------------------------------------------------
# Measurement plan and report


def measure(opts: argparse.Namespace, workdir: Path) -> dict[str, Side]:
    path = workdir / "statements.db"
    create_table(path)
    runners: dict[str, Callable[[int], dict[str, float]]] = {
        INLINE: lambda length: inline_run(path, opts.transactions, length),
        THREADED: lambda length: threaded_run(path, opts.transactions, length),
    }
    if len(os.sched_getaffinity(0)) > 1:  # one core of one is no variant
        runners[ONE_CORE] = lambda length: on_one_core(
            threaded_run, path, opts.transactions, length
        )
    sides = {name: Side() for name in runners}
    order = list(runners)
    for round_ in range(opts.rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            say(f"run: {name}")
            for length in (1, opts.statements):
                sides[name].add(length, runners[name](length))
    return sides


def summary(sides: dict[str, Side], statements: int) -> dict[str, dict[str, float]]:
    """Per side: the loop's (calling thread's) transaction and statement costs, and its
    other threads' CPU per one-statement transaction."""
    out = {}
    for name, side in sides.items():
        if not side.runs:
            continue
        loop = split_costs(side.mean(1, "loop"), side.mean(statements, "loop"), statements)
        out[name] = {
            "loop_transaction_us": loop.transaction,
            "loop_statement_us": loop.statement,
            "writer_per_transaction_us": side.mean(1, "threads"),
        }
    return out


def report_text(found: dict[str, dict[str, float]], opts: argparse.Namespace) -> str:
    inline = found[INLINE]
    lines = [
        f"Globeguard statement cost on SQLite — {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, {opts.transactions} transactions per run, "
        f"{opts.rounds} rounds",
        "CPU us on the event loop (inline: the calling thread), per transaction's own work "
        "and per statement; the other threads' (writer, checkpointer) per one-statement "
        "transaction",
        f"{'side':<22} {'transaction':>12} {'statement':>10} {'writer':>8}   vs inline",
    ]
    for name, costs in found.items():
        ratio = ""
        if name != INLINE:
            ratio = (
                f"x{costs['loop_transaction_us'] / inline['loop_transaction_us']:.1f} / "
                f"x{costs['loop_statement_us'] / inline['loop_statement_us']:.1f}"
            )
        lines.append(
            f"{name:<22} {costs['loop_transaction_us']:12.1f} {costs['loop_statement_us']:10.1f} "
            f"{costs['writer_per_transaction_us']:8.1f}   {ratio}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Event-loop CPU of a statement and a transaction on Globeguard's SQLite "
        "writer, against pysqlite inline."
    )
    parser.add_argument("--transactions", type=int, default=2_000)
    parser.add_argument("--statements", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    if args.transactions < 1 or args.statements < 2 or args.rounds < 1:
        parser.error("--transactions and --rounds must be >= 1, --statements >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    sides = run_guarded(lambda workdir: measure(opts, workdir))
    if sides is None:
        return EXIT_INTERRUPTED
    found = summary(sides, opts.statements)
    print(json.dumps(found, indent=2) if opts.json else report_text(found, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
