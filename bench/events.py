#!/usr/bin/env python3
"""Event delivery throughput and latency of Globeguard, as ratios to a baseline measured in the
same run.

What is measured, in one run, on SQLite (embedded: `globeguard serve` delivers) and on
PostgreSQL (`globeguard serve` with delivery off, plus two `globeguard worker` processes):

* **Deliveries/s ÷ the receiver's own max req/s.** The receiver (bench/_receiver.py, one
  uvicorn process) does what a real one does: verifies the Standard Webhooks signature with
  `globeguard.webhooks.verify`, parses the JSON, dedupes on webhook-id. Its max req/s is wrk
  POSTing a signed webhook at it (32 connections). The deliveries/s is a backlog of `--events`
  deliveries, released at once by an admin redrive (`POST /subscriptions/{id}/redrive`, rate
  cap lifted for the run), counted at the receiver: (requests - 1) / (last - first arrival).
  The ratio says how close the pipeline (claim, sign, send, settle, all in the database)
  comes to the fastest the receiver can take. Goal: >= 0.5.
* **Send-only ÷ the receiver's max** and **deliveries ÷ send-only**: where the gap is. The
  send-only side is the dispatcher's own HTTP stack (WebhookSink: the SSRF guard, HttpClient
  with as many connections, as many long-lived senders as the dispatcher's `concurrency`)
  sending the same number of webhooks, signed beforehand, to the same receiver, with no
  database, on uvloop as `serve` and `globeguard worker` run: from one process for SQLite,
  from one process per worker for PostgreSQL. Its rate is
  the ceiling of any Python dispatcher on this stack; deliveries ÷ send-only is how much of
  it the pipeline (claim, body, sign, settle) keeps.
* **CPU per delivery**, read from /proc (each thread's schedstat) from the redrive's answer
  to the last arrival: the delivering processes' event-loop thread and other threads (the
  SQLite writer), the receiver, and on PostgreSQL the database's server processes for the
  bench database; per request for the send-only processes and the receiver. On a shared
  machine these are steadier than rates. From them, **the ratio's ceiling**: the
  deliveries/s the cores would allow if every one were busy at that CPU per delivery (the
  delivering processes, the receiver and PostgreSQL share them), over the receiver's max;
  and **each delivering process's**: the deliveries/s if each were busy on one core at the
  CPU a delivery costs it, event loop and SQLite writer together (their threads share one
  interpreter lock, and a cycle's claim, sends and settle follow one another). Where the
  ratio is near the lower of the two, only less CPU per delivery raises it; on SQLite one
  embedded dispatcher is the floor (its delivery rate has matched 1 / its CPU per delivery).
* **Median commit → delivery latency**: `--latency-events` profile changes (`PATCH
  /users/me`, each a user.updated event committed with it) made one by one at 20/s; the
  receiver takes its arrival time minus the event's `time` (stamped in the committing
  transaction). An in-process commit wakes the embedded dispatcher at once; separate workers
  are woken by the commit's NOTIFY (and look at least once a poll interval, 500 ms); the
  phase starts once every worker listens, so it does not time their start-up.

The comparison is kept like for like:

* Connections: wrk and the dispatcher reach the receiver over the same number of connections
  (CONNECTIONS): the dispatcher's `connections_per_host` (default 16) is set to wrk's 32 for
  the run. This does not raise the baseline (the receiver's max with 16 and with 32 wrk
  connections is the same within this machine's noise, ~25,000 req/s); it gives the
  dispatcher what wrk is given. `--connections 16` measures the default.
* Work per request: the receiver does the same for every request whether its webhook-id is
  new or not (bench/_receiver.py). It used to read the event's time only for a new id, and
  wrk repeats one id, so each baseline request was ~1 us (~3 %) cheaper than each delivery.
* Slots: the subscription's `max_in_flight` is the delivering processes' senders in all
  (64 on SQLite, 2 x 64 with two PostgreSQL workers), as the send-only side runs as many. At
  64 with two workers, one worker held every slot and the other claimed nothing (its claims
  found the subscription full), so the pipeline ran at half the senders it was compared with.
* Polling: the receiver's counts are polled every 50 ms without the latency list (4,200
  floats, encoded and decoded on every poll, on the cores the measured run needs); the list
  is read once, after the latency phase.

Noise control: the sides in turn and then in reverse (baseline, send-only, deliveries,
deliveries, send-only, baseline for two rounds), each side the mean of its runs. Everything
shares the machine's cores: during a delivery run the server (or the workers) and the
receiver compete for them, as they would on one host (so do the send-only processes and the
receiver); during the baseline only wrk and the receiver run. That favours the baseline, so
the ratio is conservative.

Run:  .venv/bin/python bench/events.py [--events 4000] [--duration 5] [--json] [--check]
          [--connections 32] [--pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
          | --no-pg]
Needs wrk (`apt-get install -y wrk`); as root the script installs it when missing. With
`--profile DIR`, py-spy samples the server (SQLite) or the workers (PostgreSQL) during each
delivery run (the redrive request's own work, before it answers, is in these profiles; it
is not in the CPU figures).
Exit status: 0 measured, 1 invalid measurement or failed set-up, 2 no wrk, 3 a ratio below
its goal with --check, 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

from _common import (
    EXIT_BELOW_GOAL,
    EXIT_INTERRUPTED,
    InvalidMeasurementError,
    Ratio,
    Series,
    SetupError,
    check_wrk,
    cpu_ns,
    cpu_per_item,
    database,
    ensure_wrk,
    free_port,
    globeguard_cli,
    http,
    postgres_backends,
    run_guarded,
    run_wrk,
    say,
    server,
    server_env,
    server_python,
    stop,
    wait_accepting,
    wrk_version,
)

GOAL = 0.5
ADMIN = "benchadmin"
PASSWORD = "correct-horse-battery-staple-7"  # noqa: S105 - a throwaway benchmark account
CONNECTIONS = 32
# The dispatcher's senders per process (DeliverySettings.concurrency's default): send-only
# runs as many.
CONCURRENCY = 64
# `globeguard worker` processes delivering on PostgreSQL.
PG_WORKERS = 2
LATENCY_RATE_PER_S = 20
WAIT_S = 300.0
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class Options:
    events: int
    latency_events: int
    duration: int
    rounds: int
    connections: int
    profile: Path | None
    pg_url: str | None
    log_level: str
    as_json: bool
    check: bool


# --------------------------------------------------------------------------------------------
# The receiver


@dataclass(frozen=True, slots=True)
class Receiver:
    base: str
    pid: int


@contextmanager
def receiver(workdir: Path):
    port = free_port()
    log = (workdir / "receiver.log").open("wb")
    process = subprocess.Popen(
        [server_python(), str(HERE / "_receiver.py"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_accepting(process, port, "the receiver")
        yield Receiver(base, process.pid)
    finally:
        stop(process)
        log.close()


def configure(receiver_base: str, secret: str) -> None:
    status, _ = http("POST", f"{receiver_base}/config", {"secret": secret})
    if status != 204:
        raise SetupError(f"receiver /config answered {status}")


def stats(receiver_base: str, *, latencies: bool = False) -> dict[str, Any]:
    query = "?latencies=1" if latencies else ""
    return http("GET", f"{receiver_base}/stats{query}")[1]  # type: ignore[no-any-return]


def wait_for(receiver_base: str, key: str, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = stats(receiver_base)
        if got[key] >= count:
            return got
        time.sleep(0.05)
    raise InvalidMeasurementError(f"receiver got {got[key]} of {count} ({key}) in {WAIT_S} s")


def signed_request_script(workdir: Path, secret: str) -> Path:
    """A wrk Lua script POSTing one signed webhook (signed now: receivers accept 5 min)."""
    msg_id, stamp = "evt_BENCHBASELINE", int(time.time())
    body = json.dumps(
        {
            "data": {"changed": ["user_metadata"], "user_id": "bench"},
            "id": msg_id,
            "subject": "user/bench",
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "type": "user.updated",
            "version": 1,
        },
        separators=(",", ":"),
    )
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.{body}".encode(), hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(digest).decode()
    script = workdir / "webhook.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["content-type"] = "application/json"\n'
        f'wrk.headers["webhook-id"] = "{msg_id}"\n'
        f'wrk.headers["webhook-timestamp"] = "{stamp}"\n'
        f'wrk.headers["webhook-signature"] = "{signature}"\n'
    )
    return script


# --------------------------------------------------------------------------------------------
# Globeguard: the server, the workers, the admin API


@contextmanager
def workers(env: dict[str, str], workdir: Path, count: int):
    processes = []
    try:
        for i in range(count):
            log = (workdir / f"worker{i}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [server_python(), "-m", "globeguard", "worker"],
                    cwd=workdir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        yield processes
    finally:
        for process in processes:
            stop(process)


def api(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    status, answer = http(method, url, body, {"Authorization": f"Bearer {token}"})
    if status >= 300:
        raise SetupError(f"{method} {url} answered {status}: {answer}")
    return answer


def wait_settled(base: str, token: str, subscription_id: str) -> None:
    """Until no delivery is pending or in flight: the receiver counts a request when it
    arrives, the ledger settles it a few milliseconds later."""
    url = f"{base}/api/v1/subscriptions/{subscription_id}/deliveries"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if not api("GET", f"{url}?status=pending&status=inflight&limit=1", token)["items"]:
            return
        time.sleep(0.05)
    raise InvalidMeasurementError(f"deliveries still unsettled after {WAIT_S} s")


def wait_listening(db_url: str, workers: int) -> None:
    """Until every worker LISTENs for commits: timed before that, the first events' latency
    is the workers' start-up (they find them at their first look), not commit -> delivery."""
    import asyncio

    import asyncpg

    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def listening() -> int:
        connection = await asyncpg.connect(dsn)
        try:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
                )
            )
        finally:
            await connection.close()

    deadline = time.monotonic() + WAIT_S
    while asyncio.run(listening()) < workers:
        if time.monotonic() > deadline:
            raise SetupError(f"{workers} workers did not start listening in {WAIT_S} s")
        time.sleep(0.1)


def change_profile(base: str, token: str, n: int) -> None:
    api("PATCH", f"{base}/api/v1/users/me", token, {"user_metadata": {"n": n}})


@dataclass(slots=True)
class Backend:
    name: str
    deliveries: Series
    receiver_max: Series
    send_only: Series
    latencies_ms: list[float]
    # The processes that deliver: the server on SQLite, the workers on PostgreSQL.
    delivering: int
    # us of CPU per delivery (per request for send-only and the receiver), by process and
    # thread, each run's figures
    cpu: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def add_cpu(self, side: str, per_item: dict[str, float]) -> None:
        self.cpu.setdefault(side, []).append(per_item)


def run_backend(
    name: str, db_url: str | None, opts: Options, wrk: str, workdir: Path, rx: Receiver
) -> Backend:
    postgres = db_url is not None
    receiver_base = rx.base
    result = Backend(
        name,
        Series(f"{name}: deliveries", "deliveries/s"),
        Series(f"{name}: receiver max", "req/s"),
        Series(f"{name}: send-only", "req/s"),
        [],
        PG_WORKERS if postgres else 1,
    )
    with ExitStack() as stack:
        url = stack.enter_context(database(db_url, workdir))
        extra = {
            "GLOBEGUARD_DELIVERY__ALLOW_PRIVATE_TARGETS": "true",
            "GLOBEGUARD_DELIVERY__REDRIVE_RATE_PER_S": "1000000",
            "GLOBEGUARD_DELIVERY__REDRIVE_MAX": "1000000",
            # As many connections to the receiver as wrk uses (module docstring).
            "GLOBEGUARD_DELIVERY__CONNECTIONS_PER_HOST": str(opts.connections),
        }
        if postgres:
            extra["GLOBEGUARD_DELIVERY__EMBEDDED"] = "false"
        env = server_env(url, workdir, opts.log_level, **extra)
        globeguard_cli(["db", "upgrade"], env, workdir)
        globeguard_cli(
            ["admin", "create", "--username", ADMIN, "--password", PASSWORD], env, workdir
        )
        base, process = stack.enter_context(server(url, workdir, opts.log_level, env))
        delivering = [process]
        if postgres:
            delivering = stack.enter_context(workers(env, workdir, PG_WORKERS))
        token = http(
            "POST", f"{base}/api/v1/auth/signin", {"username": ADMIN, "password": PASSWORD}
        )[1]["access_token"]
        subscription = api(
            "POST",
            f"{base}/api/v1/subscriptions",
            token,
            {
                "name": "bench",
                "target": f"{receiver_base}/hook",
                "event_types": ["user.updated"],
                # As many as the delivering processes' senders, like the send-only side.
                "max_in_flight": CONCURRENCY * len(delivering),
            },
        )
        configure(receiver_base, subscription["signing_secret"])
        since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        if postgres:
            wait_listening(url, len(delivering))

        say(f"{name}: {opts.latency_events} events one by one for the latency")
        for n in range(opts.latency_events):
            change_profile(base, token, n)
            time.sleep(1 / LATENCY_RATE_PER_S)
        wait_for(receiver_base, "unique", opts.latency_events)
        got = stats(receiver_base, latencies=True)
        result.latencies_ms = [s * 1000 for s in got["latencies"]]

        say(f"{name}: a backlog of {opts.events} events")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: change_profile(base, token, n), range(opts.events)))
        wait_for(receiver_base, "unique", opts.latency_events + opts.events)
        total = opts.latency_events + opts.events
        script = signed_request_script(workdir, subscription["signing_secret"])

        secret = subscription["signing_secret"]
        # Send-only is the same HTTP stack on the event loop the delivering processes run
        # (uvloop, under `serve` and `worker` alike), as many processes as deliver.
        senders = (len(delivering), "uvloop") if postgres else (1, "uvloop")
        backends = (lambda: postgres_backends(url)) if postgres else list

        def baseline(seconds: int) -> float:
            url = f"{receiver_base}/hook"
            before = cpu_ns([rx.pid])
            done = run_wrk(wrk, url, seconds=seconds, connections=CONNECTIONS, script=script)
            if done.requests:
                result.add_cpu("receiver max", _prefixed("receiver", before, rx.pid, done.requests))
            return check_wrk(url, done)

        def send_only_run(_seconds: int) -> float:
            configure(receiver_base, secret)  # clears the counts
            children = start_senders(
                f"{receiver_base}/hook", secret, total, senders[0], opts.connections, senders[1]
            )
            before = cpu_ns([rx.pid])
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            got = wait_for(receiver_base, "requests", total)
            cpu = _prefixed("receiver", before, rx.pid, total)
            sent = 0.0
            for child in children:
                out, _ = child.communicate(timeout=WAIT_S)
                report = json.loads(out.strip().splitlines()[-1])
                if report["failed"]:
                    raise InvalidMeasurementError(f"send-only: {report['failed']} not 2xx")
                sent += report["cpu_us"]
            cpu["sender"] = sent / total
            result.add_cpu("send-only", cpu)
            return _rate(got, total)

        def deliveries(_seconds: int) -> float:
            wait_settled(base, token, subscription["id"])
            configure(receiver_base, secret)  # clears the counts
            runs = len(result.deliveries.runs)
            pids = [p.pid for p in delivering]
            with profiling(opts.profile, delivering, f"{name.split(',')[0].lower()}-{runs}"):
                done = api(
                    "POST",
                    f"{base}/api/v1/subscriptions/{subscription['id']}/redrive",
                    token,
                    {"since": since, "statuses": ["succeeded"]},
                )
                if done["redriven"] != total:
                    raise InvalidMeasurementError(f"redrove {done['redriven']} of {total}")
                # CPU from here on: the redrive itself (an API request) is not delivering.
                database_pids = backends()
                before = cpu_ns(pids), cpu_ns([rx.pid]), cpu_ns(database_pids)
                early = stats(receiver_base)["requests"]
                got = wait_for(receiver_base, "requests", total)
                after = cpu_ns(pids), cpu_ns([rx.pid]), cpu_ns(database_pids)
            counted = total - early
            cpu = {
                f"dispatcher {k}": v for k, v in cpu_per_item(before[0], after[0], counted).items()
            }
            cpu["receiver"] = cpu_per_item(before[1], after[1], counted)["total"]
            if database_pids:
                cpu["postgres"] = cpu_per_item(before[2], after[2], counted)["total"]
            result.add_cpu("deliveries", cpu)
            return _rate(got, total)

        sides = {
            "baseline": (result.receiver_max, baseline),
            "send-only": (result.send_only, send_only_run),
            "deliveries": (result.deliveries, deliveries),
        }
        for side in _order(opts.rounds):
            series, run = sides[side]
            series.runs.append(run(opts.duration))
            if process.poll() is not None:
                raise InvalidMeasurementError(f"server exited with {process.returncode}")
            say(f"  {series.name:<34} {series.runs[-1]:10.1f} {series.unit}")
    return result


def _rate(got: dict[str, Any], total: int) -> float:
    if got["requests"] != total:
        raise InvalidMeasurementError(f"{got['requests']} requests for {total}")
    return float((got["requests"] - 1) / (got["last"] - got["first"]))


def _prefixed(role: str, before: dict[str, int], pid: int, items: int) -> dict[str, float]:
    return {role: cpu_per_item(before, cpu_ns([pid]), items)["total"]}


@contextmanager
def profiling(where: Path | None, processes: list[subprocess.Popen[bytes]], label: str):
    """With --profile: py-spy samples each delivering process (the server on SQLite, the
    workers on PostgreSQL) for the length of one delivery run, into raw collapsed stacks
    (`<label>-<pid>.txt`, one line per stack and its count: flamegraph.pl or speedscope
    read them)."""
    if where is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    where.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                *(spy, "record", "-p", str(p.pid), "-r", "250", "-f", "raw", "--threads"),
                *("-o", str(where / f"{label}-{p.pid}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in processes
    ]
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        for spy_process in spies:
            spy_process.send_signal(signal.SIGINT)
        for spy_process in spies:
            spy_process.wait(timeout=60)


def _order(rounds: int) -> list[str]:
    """baseline, send-only, deliveries, then the reverse, ...: a linear drift cancels."""
    forward = ["baseline", "send-only", "deliveries"]
    order: list[str] = []
    for i in range(rounds):
        order += forward if i % 2 == 0 else forward[::-1]
    return order


# --------------------------------------------------------------------------------------------
# The send-only side: the dispatcher's HTTP stack with no database


SEND_ONLY_CHILD = "--send-only-child"


def send_only_child(argv: list[str]) -> int:
    """In a child process: `count` webhooks signed beforehand, sent by `concurrency`
    long-lived senders through WebhookSink (SSRF guard, HttpClient with `connections`
    connections to the receiver), as the dispatcher's senders do, on the event loop the
    delivering process runs (uvloop under `serve`, asyncio's own under `worker`). Prints
    "ready" once the messages are made, starts at a line on stdin, prints how many answers
    were not 2xx."""
    import asyncio
    from collections import deque

    from globeguard.events.signing import SigningKey, webhook_headers
    from globeguard.events.sinks.guard import TargetGuard
    from globeguard.events.sinks.port import Message
    from globeguard.events.sinks.webhook import WebhookSink

    url, secret, tag, loop_kind = argv[0], argv[1], argv[2], argv[6]
    count, connections, concurrency = int(argv[3]), int(argv[4]), int(argv[5])
    keys, stamp, occurred = (SigningKey(secret),), int(time.time()), _now_text()
    messages: deque[Message] = deque()
    for n in range(count):
        msg_id = f"evt_send_only_{tag}_{n}"
        body = webhook_body(msg_id, occurred)
        headers = webhook_headers(msg_id, stamp, body, keys)
        messages.append(Message(msg_id, "user.updated", url, body, headers))
    failed = 0

    async def sender(sink: WebhookSink) -> None:
        nonlocal failed
        while messages:
            result = await sink.send(messages.popleft())
            if result.status is None or not 200 <= result.status < 300:
                failed += 1

    async def run() -> None:
        sink = WebhookSink.create(
            timeout_s=15.0, lanes=connections, guard=TargetGuard(True), excerpt=1000
        )
        try:
            await asyncio.gather(*(sender(sink) for _ in range(concurrency)))
        finally:
            await sink.close()

    print("ready", flush=True)
    sys.stdin.readline()
    began = time.process_time()
    if loop_kind == "uvloop":
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())
    cpu_us = (time.process_time() - began) * 1e6
    print(json.dumps({"failed": failed, "cpu_us": cpu_us}), flush=True)
    return 0


def start_senders(
    url: str, secret: str, total: int, processes: int, connections: int, loop: str
) -> list[subprocess.Popen[str]]:
    """`processes` send-only children sharing `total` webhooks, each ready to go."""
    children = []
    for i in range(processes):
        share = total // processes + (1 if i < total % processes else 0)
        children.append(
            subprocess.Popen(
                [
                    *(server_python(), str(Path(__file__).resolve()), SEND_ONLY_CHILD),
                    *(url, secret, f"{time.time_ns()}_{i}", str(share)),
                    *(str(connections), str(CONCURRENCY), loop),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        )
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            for other in children:
                other.kill()
            raise SetupError("a send-only process did not start")
    return children


def webhook_body(msg_id: str, occurred: str) -> bytes:
    """The body of a user.updated webhook, as the dispatcher sends it."""
    return json.dumps(
        {
            "data": {"changed": ["user_metadata"], "user_id": "bench"},
            "id": msg_id,
            "subject": "user/bench",
            "time": occurred,
            "type": "user.updated",
            "version": 1,
        },
        separators=(",", ":"),
    ).encode()


def _now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Report


def ratios_of(backend: Backend) -> tuple[Ratio, list[Ratio]]:
    """The goal's ratio, and the two that say where the rest of the gap is: send-only ÷
    receiver max is the ceiling of any Python dispatcher on this HTTP stack, deliveries ÷
    send-only the part of it the pipeline (claim, sign, settle) keeps."""
    name = backend.name
    return (
        Ratio(f"{name}: deliveries / receiver max", backend.deliveries, backend.receiver_max, GOAL),
        [
            Ratio(f"{name}: send-only / receiver max", backend.send_only, backend.receiver_max, 0),
            Ratio(f"{name}: deliveries / send-only", backend.deliveries, backend.send_only, 0),
        ],
    )


def mean_cpu(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = dict.fromkeys(k for run in runs for k in run)
    return {k: sum(run.get(k, 0.0) for run in runs) / len(runs) for k in keys}


def cpu_ceiling(backend: Backend, deliveries_cpu: dict[str, float], cores: int) -> float | None:
    """The deliveries/s the machine's cores allow at the CPU each delivery cost everything
    that shares them (the delivering processes, the receiver, PostgreSQL), as a ratio to the
    receiver's max: the ratio cannot pass it however well the pipeline overlaps its waits."""
    spent = sum(deliveries_cpu.get(k, 0.0) for k in ("dispatcher total", "receiver", "postgres"))
    return _over_receiver_max(backend, cores, spent)


def interpreter_ceiling(backend: Backend, deliveries_cpu: dict[str, float]) -> float | None:
    """The deliveries/s the delivering processes allow if each were busy on one core at the
    CPU its delivery costs it (event loop plus other threads), as a ratio to the receiver's
    max. A process's threads share one interpreter lock, and a cycle's claim, sends and
    settle follow one another, so one process's loop and SQLite writer do not overlap: where
    the ratio meets this figure, one process's CPU per delivery is the floor."""
    return _over_receiver_max(backend, backend.delivering, deliveries_cpu.get("dispatcher total"))


def _over_receiver_max(backend: Backend, cores: int, us_per_delivery: float | None) -> float | None:
    """Deliveries/s of `cores` each busy at `us_per_delivery`, over the receiver's max."""
    if not us_per_delivery or not backend.receiver_max.mean:
        return None
    return cores * 1e6 / us_per_delivery / backend.receiver_max.mean


def report(backends: list[Backend], config: dict[str, Any], as_json: bool) -> str:
    latency = {b.name: median(b.latencies_ms) for b in backends if b.latencies_ms}
    goals = [ratios_of(b)[0] for b in backends]
    shares = [r for b in backends for r in ratios_of(b)[1]]
    cpu = {b.name: {side: mean_cpu(runs) for side, runs in b.cpu.items()} for b in backends}
    ceilings = {
        b.name: cpu_ceiling(b, cpu[b.name].get("deliveries", {}), config["cpus"] or 1)
        for b in backends
    }
    per_interpreter = {
        b.name: interpreter_ceiling(b, cpu[b.name].get("deliveries", {})) for b in backends
    }
    if as_json:
        return json.dumps(
            {
                "config": config,
                "ratios": [
                    {"name": r.name, "value": r.value, "goal": r.goal, "passed": r.passed}
                    for r in goals
                ]
                + [{"name": r.name, "value": r.value} for r in shares],
                "measurements": {
                    s.name: {"unit": s.unit, "mean": s.mean, "runs": s.runs}
                    for b in backends
                    for s in (b.receiver_max, b.send_only, b.deliveries)
                },
                "cpu_us_per_request": cpu,
                "cpu_ceiling_of_the_ratio": ceilings,
                "interpreter_ceiling_of_the_ratio": per_interpreter,
                "median_commit_to_delivery_ms": latency,
            },
            indent=2,
        )
    width = 44
    lines = ["", "Globeguard event delivery", ""]
    lines += [f"  {k}: {v}" for k, v in config.items()]
    lines += ["", f"{'measurement':<{width}}{'mean':>11}  runs"]
    for b in backends:
        for series in (b.receiver_max, b.send_only, b.deliveries):
            runs = ", ".join(f"{r:.1f}" for r in series.runs)
            lines.append(f"{series.name:<{width}}{series.mean:>11.1f}  {series.unit}  [{runs}]")
    lines += ["", f"{'ratio':<{width}}{'value':>11}  {'goal':>6}  result"]
    for r in goals:
        verdict = "PASS" if r.passed else "BELOW"
        lines.append(f"{r.name:<{width}}{r.value:>11.3f}  >={r.goal:<4}  {verdict}")
    lines += ["", "where the gap is (send-only: the dispatcher's HTTP stack, no database)"]
    lines += [f"{r.name:<{width}}{r.value:>11.3f}" for r in shares]
    lines += ["", "CPU us per delivery (per request: receiver max, send-only), mean of runs"]
    for name, sides in cpu.items():
        for side, figures in sides.items():
            shown = ", ".join(f"{k} {v:.1f}" for k, v in figures.items())
            lines.append(f"  {name}, {side}: {shown}")
    lines += ["", "the ratio's ceiling: the cores all busy at that CPU per delivery"]
    for name, ceiling in ceilings.items():
        if ceiling is not None:
            lines.append(f"{name + ': deliveries / receiver max':<{width}}{ceiling:>11.3f}")
    lines += ["", "... and each delivering process busy on one core (one interpreter lock each)"]
    for name, ceiling in per_interpreter.items():
        if ceiling is not None:
            lines.append(f"{name + ': deliveries / receiver max':<{width}}{ceiling:>11.3f}")
    lines.append("")
    for name, value in latency.items():
        lines.append(f"median commit -> delivery latency, {name:<24}{value:>9.1f} ms")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="backlog size (default 4000)")
    parser.add_argument(
        "--latency-events", type=int, default=200, help="events for the latency (default 200)"
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds (default 2)")
    parser.add_argument(
        "--connections",
        type=int,
        default=CONNECTIONS,
        help=f"the dispatcher's connections to the receiver (default {CONNECTIONS}, as wrk's)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "GLOBEGUARD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL for the two-worker run (a throwaway database is made there)",
    )
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--profile",
        type=Path,
        help="a directory: py-spy (make install brings it) samples the delivering processes",
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help=f"exit {EXIT_BELOW_GOAL} below goal")
    args = parser.parse_args(argv)
    if min(args.events, args.latency_events, args.duration, args.rounds, args.connections) < 1:
        parser.error(
            "--events, --latency-events, --duration, --rounds and --connections must be >= 1"
        )
    return Options(
        args.events,
        args.latency_events,
        args.duration,
        args.rounds,
        args.connections,
        args.profile,
        None if args.no_pg else args.pg_url,
        args.log_level,
        args.json,
        args.check,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [SEND_ONLY_CHILD]:
        return send_only_child(args[1:])
    opts = parse_args(argv)
    wrk = ensure_wrk()
    plan: list[tuple[str, str | None]] = [("SQLite, embedded", None)]
    if opts.pg_url:
        plan.append(("PostgreSQL, 2 workers", opts.pg_url))

    def measure(tmp: Path) -> list[Any]:
        backends = []
        with receiver(tmp) as rx:
            for name, url in plan:
                workdir = tmp / name.split(",")[0].lower()
                workdir.mkdir()
                backends.append(run_backend(name, url, opts, wrk, workdir, rx))
        return backends

    backends = run_guarded(measure)
    if backends is None:
        return EXIT_INTERRUPTED
    ratios = [ratios_of(b)[0] for b in backends]
    config = {
        "backlog events": opts.events,
        "latency events": opts.latency_events,
        "wrk": f"{wrk_version(wrk)}, {CONNECTIONS} connections, {opts.duration} s",
        "dispatcher connections to the receiver": opts.connections,
        "cpus": os.cpu_count(),
    }
    print(report(backends, config, opts.as_json))
    if opts.check and not all(r.passed for r in ratios):
        return EXIT_BELOW_GOAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
