#!/usr/bin/env python3
"""Authentication throughput of Globeguard, as ratios to baselines measured in the same run.

What is measured, all against one `globeguard serve` process started here on a fresh database:

* **sign-in** — `POST /api/v1/auth/signin` req/s, divided by **raw argon2id verify/s**: a
  thread pool of `os.cpu_count()` threads calling argon2-cffi's `PasswordHasher.verify` with
  the server's parameters (m=19 MiB, t=2, p=1) on the same cores. A sign-in must pay for one
  verify, so this ratio says how much of the machine's hashing capacity the service turns
  into sign-ins; everything else it does (HTTP, JSON, DB, token signing) is overhead.
  Goal: >= 0.85. wrk signs in as 32 accounts in turn from one address: the throttle lets
  at most 10 attempts per (account, address) be in flight, and a peak of sign-ins is many
  users at once, not one user 16 times over.
* **`GET /users/me`** with a Bearer token — req/s divided by `GET /healthz` req/s on the same
  server (same middleware, same HTTP stack, no auth, no DB). The ratio is the cost of
  authenticating a token and loading the user relative to a request that does nothing.
  Goal: >= 0.5.

Why ratios and not absolute numbers: req/s depends on the CPU, its clock, the load of the
machine and the Python build. A ratio against a baseline taken moments apart on the same
cores cancels most of that, so results from a laptop, a developer box and CI are comparable,
and a regression shows as a lower ratio rather than as noise.

Noise control: each pair is measured in ABBA order (baseline, subject, subject, baseline for
two rounds) so that a linear drift (thermal, another process) hits both sides equally, and
each side is the mean of its runs. The load generator, wrk (one thread), runs on the same
cores as the server during the HTTP measurements, while the argon2 baseline has the cores to
itself: that is inherent to a single-machine benchmark. It can only lower the sign-in ratio
(at sign-in rates wrk needs little CPU), and it weighs on /healthz, the faster side, a bit
more than on /users/me.

On a machine shared with other work, req/s moves more than ABBA can absorb (the same build
gave sign-in ratios from 0.85 to 1.36 on a loaded 2-core machine: the baseline's threads lose
more to the other load than the server does). The sign-in runs therefore also report the
server's CPU per sign-in, read from /proc: the event loop's, the other threads', and one raw
verify's. Hashing's share of the server's CPU is the ratio's ceiling on an idle machine, and it
moves much less with other load: compare builds by it when the machine is shared.

Run:  .venv/bin/python bench/auth.py [--duration 8] [--json] [--check] [--only signin]
          [--db-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
Needs wrk (`apt-get install -y wrk`); as root the script installs it when missing.
Exit status: 0 measured (whatever the ratios), 1 invalid measurement or failed set-up,
2 no wrk, 3 a ratio below its goal with --check, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    EXIT_BELOW_GOAL,
    EXIT_INTERRUPTED,
    CpuTallies,
    Ratio,
    Runner,
    Series,
    SetupError,
    backend_of,
    check_wrk,
    database,
    ensure_wrk,
    http,
    http_runner,
    measure_pair,
    report_json,
    run_guarded,
    run_wrk,
    say,
    server,
    table_lines,
    wrk_version,
)

PASSWORD = "correct-horse-battery-staple-7"  # noqa: S105 - a throwaway bench account
# The server's parameters (globeguard.identity.passwords): argon2id, OWASP m=19 MiB, t=2, p=1.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1

SIGNIN_GOAL = 0.85
ME_GOAL = 0.5

# Sign-in is CPU-bound on hashing: a handful of connections per core keeps every hash thread
# busy without queueing so deep that latency hits wrk's timeout. GETs are cheap, so more
# connections are needed to keep the event loop saturated.
SIGNIN_CONNECTIONS = 16
GET_CONNECTIONS = 32
# The sign-in throttle lets at most `lockout_threshold` (10) attempts per (account, address)
# be in flight at once; 16 connections signing in as one account from one address would be
# refused (429), which is the throttle doing its job. wrk sends the requests of its accounts
# in turn, so with twice as many accounts as connections each has at most one or two
# attempts in flight: the load is many users at once, as a real sign-in peak is.
SIGNIN_ACCOUNTS = 2 * SIGNIN_CONNECTIONS


# --------------------------------------------------------------------------------------------
# wrk's request body


def post_json_script(directory: Path, bodies: list[dict[str, str]]) -> Path:
    """wrk sends a body only through Lua. The requests, one per body, are formatted once in
    init (after wrk has set the Host header) and sent in turn; a long bracket needs no
    escaping of the JSON."""
    literals = []
    for body in bodies:
        payload = json.dumps(body)
        assert "]==]" not in payload
        literals.append(f"  [==[{payload}]==],")
    script = directory / "signin.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "local bodies = {\n" + "\n".join(literals) + "\n}\n"
        "local requests = {}\n"
        "init = function(args)\n"
        "  for i, body in ipairs(bodies) do requests[i] = wrk.format(nil, nil, nil, body) end\n"
        "end\n"
        "local turn = 0\n"
        "request = function()\n"
        "  turn = turn % #requests + 1\n"
        "  return requests[turn]\n"
        "end\n"
    )
    return script


# --------------------------------------------------------------------------------------------
# CPU per operation, read from /proc (Linux). Other load on the machine moves req/s a lot but
# the CPU one sign-in costs much less, so these figures show where a sign-in's time goes: the
# event loop's share is what the hash threads lose when every core is busy.

SIGNIN, VERIFY = "sign-in", "argon2id verify"


def counted_signin_runner(wrk: str, url: str, script: Path, tally: CpuTallies) -> Runner:
    """Like http_runner, also adding the server's CPU (its event loop's thread and the
    others: hashing and, on SQLite, its writer) and the requests served to `tally`. A
    PostgreSQL server's own CPU is not counted."""

    def run(seconds: int) -> float:
        with tally.counting(SIGNIN) as count:
            result = run_wrk(
                wrk, url, seconds=seconds, connections=SIGNIN_CONNECTIONS, script=script
            )
            count(result.requests)
        return check_wrk(url, result)

    return run


# --------------------------------------------------------------------------------------------
# Baseline: raw argon2id verification on every core


def argon2_verify_rate(seconds: float, threads: int, tally: CpuTallies) -> float:
    """Verifies/s of `threads` threads hashing flat out; argon2-cffi releases the GIL."""
    from argon2 import PasswordHasher, Type

    hasher = PasswordHasher(
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
        type=Type.ID,
    )
    stored = hasher.hash(PASSWORD)
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def work(index: int) -> None:
        start.wait()
        while time.perf_counter() < deadline:
            hasher.verify(stored, PASSWORD)
            counts[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    # This process's CPU, the hashing threads' included once they have ended (/proc lists
    # only live threads, so not cpu_ns).
    cpu_before = time.process_time_ns()
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for worker in workers:
        worker.join()
    tally.add(VERIFY, {"threads": time.process_time_ns() - cpu_before}, sum(counts))
    # The last verify of each thread may end past the deadline: divide by the real span.
    return sum(counts) / (time.perf_counter() - began)


# --------------------------------------------------------------------------------------------
# The server's fixtures


def signup(base: str) -> tuple[str, str]:
    """A fresh account; returns (username, access token)."""
    username = f"bench-{secrets.token_hex(4)}"
    status, body = http(
        "POST", f"{base}/api/v1/auth/signup", {"username": username, "password": PASSWORD}
    )
    if status != 201:
        raise SetupError(f"signup answered {status}: {body}")
    return username, str(body["access_token"])


def signin_bodies(base: str, accounts: int) -> list[dict[str, str]]:
    """Sign-in bodies of `accounts` fresh accounts."""
    return [{"username": signup(base)[0], "password": PASSWORD} for _ in range(accounts)]


# --------------------------------------------------------------------------------------------
# Measurement plan


@dataclass(frozen=True, slots=True)
class Settings:
    """Command-line options."""

    duration: int
    warmup: int
    rounds: int
    db_url: str | None
    log_level: str
    as_json: bool
    check: bool
    only: str | None


def run_benchmark(opts: Settings, wrk: str, workdir: Path) -> tuple[list[Ratio], dict[str, Any]]:
    cores = os.cpu_count() or 1
    with (
        database(opts.db_url, workdir) as db_url,
        server(db_url, workdir, opts.log_level) as (base, process),
    ):
        username, token = signup(base)
        say(f"server ready at {base} ({backend_of(db_url)}); account {username} signed up")
        signin_script = post_json_script(workdir, signin_bodies(base, SIGNIN_ACCOUNTS))
        say(f"{SIGNIN_ACCOUNTS} sign-in accounts signed up")

        healthz = http_runner(wrk, f"{base}/healthz", GET_CONNECTIONS)
        me = http_runner(
            wrk,
            f"{base}/api/v1/users/me",
            GET_CONNECTIONS,
            headers={"Authorization": f"Bearer {token}"},
        )
        signin_cpu, argon_cpu = CpuTallies(process.pid), CpuTallies(os.getpid())
        signin = counted_signin_runner(wrk, f"{base}/api/v1/auth/signin", signin_script, signin_cpu)

        # Warm-up runs the lazy first-use paths (imports, prepared statements, pools) outside
        # the measured runs, and fails fast on a broken endpoint before the long runs.
        warm = [("healthz", healthz), ("users/me", me), ("signin", signin)]
        if opts.only == "signin":
            warm = warm[2:]
        elif opts.only == "me":
            warm = warm[:2]
        if opts.warmup > 0:
            for name, run in warm:
                say(f"warm-up {name} ({opts.warmup} s)")
                run(opts.warmup)
            signin_cpu.clear()

        # The GET pair first: sign-in writes rows (sessions, audit events) that could make
        # later reads slower; each pair is compared within itself, never across.
        health_s = Series("GET /healthz", "req/s")
        me_s = Series("GET /api/v1/users/me", "req/s")
        if opts.only != "signin":
            say(f"measuring GET /users/me vs GET /healthz ({opts.rounds} x 2 x {opts.duration} s)")
            measure_pair(
                health_s,
                me_s,
                healthz,
                me,
                rounds=opts.rounds,
                duration=opts.duration,
                server_process=process,
            )

        argon_s = Series(f"argon2id verify ({cores} threads)", "verify/s")
        signin_s = Series("POST /api/v1/auth/signin", "req/s")
        if opts.only != "me":
            say(f"measuring sign-in vs raw argon2id ({opts.rounds} x 2 x {opts.duration} s)")
            measure_pair(
                argon_s,
                signin_s,
                lambda seconds: argon2_verify_rate(seconds, cores, argon_cpu),
                signin,
                rounds=opts.rounds,
                duration=opts.duration,
                server_process=process,
            )

    config = {
        "db_backend": backend_of(db_url),
        "cpu_count": cores,
        "server_hash_concurrency": int(os.environ.get("GLOBEGUARD_AUTH__HASH_CONCURRENCY", cores)),
        "argon2": {
            "type": "id",
            "memory_kib": ARGON2_MEMORY_KIB,
            "time_cost": ARGON2_TIME_COST,
            "parallelism": ARGON2_PARALLELISM,
        },
        "wrk": wrk_version(wrk),
        "wrk_threads": 1,
        "connections": {"signin": SIGNIN_CONNECTIONS, "get": GET_CONNECTIONS},
        "signin_accounts": SIGNIN_ACCOUNTS,
        "duration_s": opts.duration,
        "warmup_s": opts.warmup,
        "rounds": opts.rounds,
        "server_log_level": opts.log_level,
        "python": sys.version.split()[0],
    }
    if opts.only != "me":
        signin_us = signin_cpu.per_item().get(SIGNIN, {})
        verify_us = argon_cpu.per_item().get(VERIFY, {})
        config["cpu_ms"] = {
            "signin_event_loop": signin_us.get("loop", 0.0) / 1000,
            "signin_other_threads": signin_us.get("threads", 0.0) / 1000,
            "argon2_verify": sum(verify_us.values()) / 1000,
        }
    ratios = []
    if opts.only != "me":
        ratios.append(Ratio("signin / argon2id verify", signin_s, argon_s, SIGNIN_GOAL))
    if opts.only != "signin":
        ratios.append(Ratio("users/me / healthz", me_s, health_s, ME_GOAL))
    return ratios, config


# --------------------------------------------------------------------------------------------
# Reporting


def report_text(ratios: list[Ratio], config: dict[str, Any]) -> str:
    lines = [
        f"Globeguard auth benchmark — db {config['db_backend']}, {config['cpu_count']} CPUs, "
        f"{config['wrk']}, {config['duration_s']} s x {config['rounds']} runs per side",
        f"server: hash concurrency {config['server_hash_concurrency']}, log level "
        f"{config['server_log_level']}; wrk connections: signin "
        f"{config['connections']['signin']} ({config['signin_accounts']} accounts), GET "
        f"{config['connections']['get']}",
        "",
        *table_lines(ratios),
    ]
    if cpu := config.get("cpu_ms"):
        others = (
            "hashing, SQLite's writer"
            if config["db_backend"] == "sqlite"
            else "hashing; PostgreSQL's own CPU not counted"
        )
        spent = cpu["signin_event_loop"] + cpu["signin_other_threads"]
        share = cpu["argon2_verify"] / spent if spent else 0.0
        lines += [
            "",
            f"CPU per sign-in in the server: event loop {cpu['signin_event_loop']:.1f} ms, "
            f"other threads {cpu['signin_other_threads']:.1f} ms",
            f"({others}); one raw argon2id verify: {cpu['argon2_verify']:.1f} ms.",
            f"Hashing's share of the server's CPU, {share:.2f}, is the sign-in ratio's ceiling "
            "on an",
            "otherwise idle machine (wrk's CPU, and PostgreSQL's, come on top). Other load moves",
            "it much less than it moves req/s: compare builds by it when the machine is shared.",
        ]
    lines += [
        "",
        "Note: wrk (1 thread) shares these cores with the server during the HTTP runs, while",
        "the argon2 baseline has them to itself: the sign-in ratio is, if anything, understated.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Entry point


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Globeguard sign-in and /users/me throughput as ratios to same-run baselines."
    )
    parser.add_argument(
        "--duration", type=int, default=8, help="seconds per measured run (default 8)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up per endpoint (default 2; 0 skips)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="runs per side of each ratio, in ABBA order (default 2)",
    )
    parser.add_argument(
        "--db-url",
        default=None,
        help="server database; a postgresql URL gets a throwaway database "
        "(default: SQLite in a temp dir)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        help="server log level (default warning: no per-request access log)",
    )
    parser.add_argument(
        "--only",
        choices=["signin", "me"],
        default=None,
        help="measure one ratio only (default: both)",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit {EXIT_BELOW_GOAL} when a ratio is below its goal",
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--duration and --rounds must be >= 1, --warmup >= 0")
    return Settings(
        args.duration,
        args.warmup,
        args.rounds,
        args.db_url,
        args.log_level,
        args.json,
        args.check,
        args.only,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    wrk = ensure_wrk()
    measured = run_guarded(lambda tmp: run_benchmark(opts, wrk, tmp))
    if measured is None:
        return EXIT_INTERRUPTED
    ratios, config = measured
    print(report_json(ratios, config) if opts.as_json else report_text(ratios, config))
    if opts.check and not all(r.passed for r in ratios):
        return EXIT_BELOW_GOAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
