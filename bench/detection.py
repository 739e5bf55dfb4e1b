#!/usr/bin/env python3
"""Detection quality of Globeguard's impossible-travel grading on a realistic month of logins,
next to the naive Superman rule on the same data.

The data (bench/detection_data.py, a pure function of --seed and --users): home/office
workers, travellers on real flights, mobile-carrier users, employees behind a head-office
egress, VPN users, typos; plus account takeovers (fast: >= 2x the 500 mph threshold from the
user's previous login; slow: 1.2-2x; some attackers return two days later) and
credential-stuffing bursts. Every address geolocates, through a City and an ASN database
written here (MaxMind format), to its intended city, radius and operator.

Each pass starts a fresh `globeguard serve` on SQLite with those databases (and any
`--set KEY=VALUE` as GLOBEGUARD_TRAVEL__KEY), streams the month through
`POST /api/v1/login-events` as NDJSON (batches of --batch lines, --concurrency requests at
once), then reads every verdict from the database file (read-only). Caught = the attack
login's verdict is `suspicious` or `impossible`. Superman: consecutive logins of a subject
(any outcome) in time order, haversine between the geolocated centres, no radius, no
controls; a login is flagged when the speed from its predecessor or to its successor is
above 500 mph.

Run:  .venv/bin/python bench/detection.py [--users 3000] [--seed 1] [--orders 2]
          [--set learning_logins=10] [--sweep learning_logins=3,10 learning_period=0d,7d]
          [--review-vpn] [--shuffle]
Exit status: 0 measured, 1 invalid measurement or failed set-up, 130 interrupted.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    EXIT_INTERRUPTED,
    InvalidMeasurementError,
    admin_api_key,
    run_guarded,
    say,
    server,
    server_env,
)
from detection_data import DAY, Dataset, Event, generate
from detection_places import (
    COUNTRY_NAMES,
    AddressPlan,
    city_geoname_id,
    country_geoname_id,
    subdivision_geoname_id,
)
from detection_report import (
    Verdicts,
    summary_lines,
    superman_flags,
    sweep_header,
    sweep_row,
    vpn_review_lines,
)

REQUEST_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Options:
    seed: int
    users: int
    orders: int
    shuffle: bool
    settings: dict[str, str]
    sweep: list[tuple[str, list[str]]]
    review_vpn: bool
    batch: int
    concurrency: int
    log_level: str


# --------------------------------------------------------------------------------------------
# The GeoIP databases


def _city_record(block: Any) -> dict[str, Any]:
    city = block.city
    return {
        "city": {"geoname_id": city_geoname_id(city), "names": {"en": city.name}},
        "country": {
            "geoname_id": country_geoname_id(city.country),
            "iso_code": city.country,
            "names": {"en": COUNTRY_NAMES[city.country]},
        },
        "subdivisions": [
            {
                "geoname_id": subdivision_geoname_id(city.country, city.subdivision),
                "iso_code": city.subdivision,
                "names": {"en": f"{city.country}-{city.subdivision}"},
            }
        ],
        "location": {
            "latitude": block.lat,
            "longitude": block.lon,
            "accuracy_radius": block.radius_km,
        },
    }


def write_databases(plan: AddressPlan, directory: Path) -> tuple[Path, Path]:
    """A GeoIP2-City and a GeoLite2-ASN database (IPv4 trees) covering every /24 handed out."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    city = MMDBWriter(
        ip_version=4,
        database_type="GeoIP2-City",
        languages=["en"],
        description="Globeguard detection bench City",
    )
    asn = MMDBWriter(
        ip_version=4,
        database_type="GeoLite2-ASN",
        languages=["en"],
        description="Globeguard detection bench ASN",
    )
    for block in plan.blocks:
        cidr = IPSet([str(block.network)])
        city.insert_network(cidr, _city_record(block))
        asn.insert_network(
            cidr,
            {
                "autonomous_system_number": block.operator.asn,
                "autonomous_system_organization": block.operator.organization,
            },
        )
    paths = directory / "city.mmdb", directory / "asn.mmdb"
    city.to_db_file(str(paths[0]))
    asn.to_db_file(str(paths[1]))
    return paths


# --------------------------------------------------------------------------------------------
# Streaming and reading back


def _line(event: Event) -> bytes:
    success = "true" if event.success else "false"
    return (
        f'{{"subject":"{event.subject}","ip":"{event.ip}","occurred_at":{event.t},'
        f'"success":{success},"event_uuid":"{event.uuid}"}}\n'
    ).encode()


def stream(base: str, api_key: str, events: list[Event], batch: int, concurrency: int) -> float:
    """POST every event, `batch` lines per request, `concurrency` requests at once; seconds."""
    import httpx

    bodies = [b"".join(map(_line, events[i : i + batch])) for i in range(0, len(events), batch)]
    sizes = [len(events[i : i + batch]) for i in range(0, len(events), batch)]
    headers = {"Content-Type": "application/x-ndjson", "X-API-KEY": api_key}
    url = f"{base}/api/v1/login-events"

    def post(client: httpx.Client, body: bytes, size: int) -> None:
        response = client.post(url, content=body, headers=headers)
        if response.status_code != 200:
            raise InvalidMeasurementError(
                f"ingest answered {response.status_code}: {response.text[:500]}"
            )
        report = response.json()
        if report["accepted"] != size or report["error_count"]:
            raise InvalidMeasurementError(f"ingest refused lines: {str(report)[:1000]}")

    began = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency)
    with (
        httpx.Client(timeout=REQUEST_TIMEOUT_S, limits=limits) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):
        futures = [pool.submit(post, client, b, n) for b, n in zip(bodies, sizes, strict=True)]
        for count, done in enumerate(futures, 1):
            done.result()
            if count % max(1, len(futures) // 5) == 0 and count < len(futures):
                sent = sum(sizes[:count])
                say(f"  {sent:,} events in {time.perf_counter() - began:.0f} s")
    return time.perf_counter() - began


def read_verdicts(db_file: Path) -> tuple[Verdicts, dict[str, int]]:
    """{event_uuid: verdict} and {event_uuid: id}, read-only from the server's SQLite file."""
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT event_uuid, verdict, id FROM login_event").fetchall()
    return {u: v for u, v, _ in rows}, {u: i for u, _, i in rows}


# --------------------------------------------------------------------------------------------
# One pass: a fresh server, the month streamed, the verdicts read back


@dataclass(slots=True)
class Pass:
    verdicts: Verdicts
    ids: dict[str, int]
    seconds: float
    after_review: str = ""


def run_pass(
    opts: Options,
    data: Dataset,
    dbs: tuple[Path, Path],
    workdir: Path,
    settings: dict[str, str],
    *,
    shuffled: bool,
    review_vpn: bool = False,
) -> Pass:
    workdir.mkdir(parents=True)
    db_file = workdir / "gg.db"
    db_url = f"sqlite+aiosqlite:///{db_file}"
    extra = {f"GLOBEGUARD_TRAVEL__{k.upper()}": v for k, v in settings.items()}
    extra |= {"GLOBEGUARD_GEOIP__CITY_DB": str(dbs[0]), "GLOBEGUARD_GEOIP__ASN_DB": str(dbs[1])}
    env = server_env(db_url, workdir, opts.log_level, **extra)
    events = data.events
    if shuffled:
        events = list(events)
        random.Random(opts.seed).shuffle(events)
    with server(db_url, workdir, opts.log_level, env) as (base, process):
        scopes = ["login_events:write", "users:read", "users:write"]
        api_key = admin_api_key(base, env, workdir, scopes)
        order = "shuffled" if shuffled else "time"
        say(f"streaming {len(events):,} events ({order} order) to {base} {settings or ''}")
        seconds = stream(base, api_key, events, opts.batch, opts.concurrency)
        if process.poll() is not None:
            raise InvalidMeasurementError(f"server exited with {process.returncode}")
        say(f"  {seconds:.1f} s, {len(events) / seconds:,.0f} events/s")
        verdicts, ids = read_verdicts(db_file)
        result = Pass(verdicts, ids, seconds)
        if review_vpn:
            result.after_review = review_and_continue(opts, data, base, api_key, db_file, result)
    return result


def review_and_continue(
    opts: Options, data: Dataset, base: str, api_key: str, db_file: Path, first: Pass
) -> str:
    """Review as safe the first flagged login of every other VPN user, stream all VPN users'
    next week, and compare the reviewed half with the other half."""
    from _common import http

    vpn = [u for u in data.users if u.persona == "vpn" and not u.compromised]
    reviewed = {u.subject for u in vpn[::2]}
    month: dict[str, list[Event]] = {}
    for event in data.events:
        month.setdefault(event.subject, []).append(event)
    answers: dict[int, int] = {}
    for subject in sorted(reviewed):
        flagged = [
            e for e in month[subject] if first.verdicts.get(e.uuid) in ("suspicious", "impossible")
        ]
        if not flagged:
            continue
        login_id = first.ids[flagged[0].uuid]
        status, body = http(
            "POST",
            f"{base}/api/v1/logins/{login_id}/review",
            {"verdict": "safe"},
            {"X-API-KEY": api_key},
        )
        answers[status] = answers.get(status, 0) + 1
        if status == 404:
            return (
                f"--review-vpn: POST /api/v1/logins/{login_id}/review answered 404 "
                f"({str(body)[:200]}): this build has no review endpoint yet; nothing to compare."
            )
        if status != 200:
            raise InvalidMeasurementError(f"review answered {status}: {str(body)[:500]}")
    subjects = {u.subject for u in vpn}
    week = [e for e in data.extra if e.subject in subjects]
    say(f"reviewed {answers.get(200, 0)} VPN users' first flagged login as safe")
    say(f"streaming the next week of all {len(vpn)} VPN users ({len(week):,} events)")
    stream(base, api_key, week, opts.batch, opts.concurrency)
    after, _ = read_verdicts(db_file)
    return "\n".join(vpn_review_lines(vpn, reviewed, month, week, first.verdicts, after))


# --------------------------------------------------------------------------------------------
# Plan


def measure(opts: Options, workdir: Path) -> list[str]:
    began = time.perf_counter()
    start = _start_of_month()
    data = generate(opts.seed, opts.users, start)
    took = time.perf_counter() - began
    say(f"generated {len(data.events):,} events for {opts.users:,} users in {took:.1f} s")
    dbs = write_databases(data.plan, workdir)
    say(f"wrote {len(data.plan.blocks):,} /24 networks to {dbs[0].name} and {dbs[1].name}")
    flags = superman_flags(data)
    lines: list[str] = []
    if opts.sweep:
        keys = [k for k, _ in opts.sweep]
        combos = [
            dict(zip(keys, v, strict=True)) for v in itertools.product(*(v for _, v in opts.sweep))
        ]
        width = max(len(" ".join(f"{k}={v}" for k, v in c.items())) for c in combos) + 2
        lines += sweep_header(opts.settings, opts.seed, opts.users, width)
        for n, swept in enumerate(combos):
            settings = opts.settings | swept
            done = run_pass(opts, data, dbs, workdir / f"sweep{n}", settings, shuffled=opts.shuffle)
            lines.append(sweep_row(data, done.verdicts, swept, width))
            say(lines[-1])
        return lines
    first = run_pass(
        opts,
        data,
        dbs,
        workdir / "pass1",
        opts.settings,
        shuffled=opts.shuffle,
        review_vpn=opts.review_vpn,
    )
    lines += summary_lines(data, first.verdicts, flags, opts.settings, opts.seed)
    if opts.orders >= 2:
        second = run_pass(
            opts, data, dbs, workdir / "pass2", opts.settings, shuffled=not opts.shuffle
        )
        differ = sum(first.verdicts.get(e.uuid) != second.verdicts.get(e.uuid) for e in data.events)
        lines += [
            "",
            f"same verdicts whatever the arrival order: {differ} of {len(data.events):,} "
            f"verdicts differ between time order and shuffled order (must be 0)",
        ]
    if first.after_review:
        lines += ["", first.after_review]
    lines += [
        "",
        f"total {time.perf_counter() - began:.0f} s (ingest {first.seconds:.0f} s per pass)",
    ]
    return lines


def _start_of_month() -> int:
    """A Monday 0:00 UTC at least 40 days ago: the month and the week after are in the past,
    inside the server's 90-day retention, and weekdays fall where the generator put them."""
    earliest = int(time.time()) - 40 * DAY
    return earliest - (earliest - 4 * DAY) % (7 * DAY)  # 1970-01-05 was a Monday


# --------------------------------------------------------------------------------------------
# Entry point


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip().lower(), value.strip()


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument(
        "--orders",
        type=int,
        default=1,
        choices=(1, 2),
        help="2: a second fresh server in the other order; counts differing verdicts",
    )
    parser.add_argument("--shuffle", action="store_true", help="stream in a shuffled order")
    parser.add_argument(
        "--set",
        dest="settings",
        type=_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a travel setting, e.g. learning_logins=10",
    )
    parser.add_argument(
        "--sweep",
        type=_pair,
        nargs="+",
        default=[],
        metavar="KEY=V1,V2",
        help="one fresh run per value (per combination of several keys)",
    )
    parser.add_argument(
        "--review-vpn",
        action="store_true",
        help="review VPN users' first flagged login as safe, stream their next week",
    )
    parser.add_argument("--batch", type=int, default=4000, help="NDJSON lines per request")
    parser.add_argument("--concurrency", type=int, default=3, help="requests at once")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.users < 20:
        parser.error("--users must be >= 20")
    sweep = [(k, [v for v in values.split(",") if v]) for k, values in args.sweep]
    return Options(
        args.seed,
        args.users,
        args.orders,
        args.shuffle,
        dict(args.settings),
        sweep,
        args.review_vpn,
        args.batch,
        args.concurrency,
        args.log_level,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    lines = run_guarded(lambda tmp: measure(opts, tmp), prefix="gg-detection-")
    if lines is None:
        return EXIT_INTERRUPTED
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
