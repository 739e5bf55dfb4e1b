#!/usr/bin/env python3
"""Tail latency of Globeguard: p99 against p50 on each endpoint, and how long a request waits
when another process holds SQLite's write lock. Every figure is a ratio of two latencies
measured in the same run, on one `globeguard serve` process started here on a fresh database.

What is measured, on four endpoints — `GET /healthz` (no auth, no database), `GET
/api/v1/users/me` (a bearer token), `POST /v1/` (a Superman login event, API key, one write
each; subjects and addresses as in bench/travel.py) and `POST /api/v1/auth/signin` (one
argon2id verify each; twice as many accounts as connections, in turn, as bench/auth.py
does, so that the throttle's 10 attempts in flight per account and address never refuse it):

* **Closed loop** — wrk `--latency`, `--connections` connections (default 32; sign-in
  `--signin-connections`, default 16: hashing saturates the cores with fewer), each sending
  its next request when the previous one is answered. Its p50, p99 and max; its req/s sets
  the rate of:
* **Fixed rate (open loop)** — `--rate-fraction` (default 0.6) of the closed-loop req/s just
  measured, one request every 1/rate s whatever the server does, over a pool of keep-alive
  HTTP/1.1 connections (as many as wrk's). Each latency runs from the request's *scheduled*
  send time, not from when it was sent. A closed loop stops sending while the server stalls,
  so a 1 s stall costs it one slow sample per connection and the percentiles barely move
  ("coordinated omission"); on a schedule, every request that falls due during the stall
  waits for it, and the percentiles show it as users would see it.
  Goal for both loads: p99 / p50 <= 3 — a tail within a few times the typical request.
* **Stall-free reference** (no goal) — each fixed-rate schedule again, against a server with
  no application (this script as a child, `latency.py _reference`) that spends the
  endpoint's closed-loop time per request (1 / its req/s) on every request, one at a time,
  and never stalls. Its p99/p50 is what this machine, its scheduler and the generator give
  by themselves; `server/ref` is the server's fixed-rate ratio over it. At sub-millisecond
  medians that floor alone is far above 3.

* **Lock test** (SQLite only) — this script's process (not the server's) opens the server's
  database file and holds its write lock (`BEGIN IMMEDIATE`, sleep 1.5 s, `ROLLBACK`) 3 times,
  1.5 s apart, while `GET /healthz` and `GET /users/me` run at `--lock-rate` req/s each
  (default 200) and `POST /v1/` at 20 req/s, so that the server's writer really waits for the
  lock. A CLI command, a backup or a second tool on the same file does this in production.
  The p99 of the GETs scheduled while the lock is held, divided by their p99 with the same
  load and no lock, over the same moments of the same schedule (two idle runs, before and
  after the locked one: the lower p99, since a disturbance can only raise it and a raised
  baseline would hide a stall). Writes must wait
  for the lock; reads and /healthz need not. Goal: <= 3. The writes' figures are printed
  too, with no goal. The rate is modest on purpose: the backlog a 1.5 s stall leaves at
  200 req/s (300 requests) drains in a fraction of a second, so the figure measures the
  stall, not a saturated server catching up.

The fixed-rate load generator is this script run as a child process (`latency.py _generate`,
uvloop when installed, plain asyncio protocols otherwise), so it never shares the server's
event loop nor this process's. It records how late it was itself: the time between a
request's scheduled send time and when its scheduler handed it to the pool. Above 5 ms at
p99, its own lateness is a visible share of what it reports, and the report says so.
(Waiting for a free connection is not the generator's lateness: a stalled server causes it,
and it is part of the latency, as it would be for a user.)

Why ratios: absolute latencies depend on the CPU, its clock and the load of the machine; a
ratio of two latencies measured moments apart on the same cores cancels most of that (see
bench/auth.py). Noise: wrk (one thread) and the generator share the cores with the server, as
does anything else running on the machine; a busy machine shows as a longer tail. One run per
figure: a noisy figure shows in max and in the generator's lateness, and a rerun settles it.

Run:  .venv/bin/python bench/latency.py [--duration 5] [--rate-fraction 0.6]
          [--connections 32] [--lock-rate 200] [--json] [--check]
          [--db-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
Needs wrk (`apt-get install -y wrk`); as root the script installs it when missing.
Exit status: 0 measured (whatever the ratios), 1 invalid measurement or failed set-up,
2 no wrk, 3 a ratio above its goal with --check, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from _common import (
    EXIT_BELOW_GOAL,
    EXIT_INTERRUPTED,
    InvalidMeasurementError,
    WrkResult,
    backend_of,
    check_wrk,
    database,
    ensure_wrk,
    free_port,
    percentile,
    run_guarded,
    run_wrk,
    say,
    server,
    server_env,
    wait_accepting,
    wrk_version,
)
from auth import SIGNIN_CONNECTIONS, post_json_script, signin_bodies, signup

from travel import (
    SUPERMAN_INTERVAL_S,
    SUPERMAN_USERS,
    api_key_for,
    bundled_city_db,
    locatable_ips,
    open_reader,
    superman_script,
)

P99_P50_GOAL = 3.0
LOCK_GOAL = 3.0

RATE_FRACTION = 0.6
CONNECTIONS = 32
LOCK_RATE = 200.0
# Writes during the lock test: enough that one falls due within 50 ms of the lock being
# taken, so the server's writer waits on it for nearly the whole 1.5 s.
LOCK_WRITE_RATE = 20.0
LOCK_WRITE_CONNECTIONS = 8
LOCK_HOLD_S = 1.5
LOCK_GAP_S = 1.5
LOCKS = 3
# Before the first lock: the run's first requests (fresh connections) are not during a lock.
LOCK_LEAD_S = 1.0

# Requests still unanswered this long after the last one fell due are failures (wrk's
# --timeout in run_wrk is the same 10 s).
DRAIN_S = 10.0
# From connecting the pool to the first scheduled request.
READY_DELAY_S = 0.25
# The generator's own lateness (p99) above which its figures are flagged.
GENERATOR_LAG_LIMIT_S = 0.005
# Locatable addresses for POST /v1/ (bench/travel.py uses 5,000 for its bulk stream).
IP_POOL = 1_000

GENERATE = "_generate"
REFERENCE = "_reference"
HEALTHZ = "GET /healthz"
ME = "GET /api/v1/users/me"
SUPERMAN = "POST /v1/ (Superman)"
SIGNIN = "POST /api/v1/auth/signin"
SIGNIN_PATH = "/api/v1/auth/signin"

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# The fixed-rate load generator: runs in a child process (`latency.py _generate`), reads its
# spec as JSON on stdin, prints {"ready": start} once its pool is connected, and writes its
# results (one latency per request, up to megabytes) to the file the spec names.


class ProtocolError(Exception):
    """An HTTP answer this client cannot read."""


def _parse_response(buffer: bytearray) -> tuple[int, int, bool] | None:
    """(status, bytes used, keep-alive) of the complete response at the start of buffer;
    None while incomplete. The server answers with Content-Length: chunked is refused."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise ProtocolError(f"bad status line {lines[0]!r}") from exc
    length, keep_alive = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            raise ProtocolError(f"transfer-encoding {value.strip()} is not supported")
        elif name == "connection" and value.strip().lower() == "close":
            keep_alive = False
    used = end + 4 + length
    return (status, used, keep_alive) if len(buffer) >= used else None


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time. `answered_at` is stamped when the
    last byte arrives, before the awaiting task is scheduled: the generator's own loop delay
    is not added to the latency."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.answered_at = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = _parse_response(self.buffer)
        except (ProtocolError, ValueError) as exc:
            waiter.set_exception(ProtocolError(str(exc)))
            return
        if parsed is None:
            return
        self.answered_at = time.monotonic()
        status, used, keep_alive = parsed
        del self.buffer[:used]
        self.closed = self.closed or not keep_alive
        waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed by the server: {exc}"))

    async def request(self, payload: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def superman_body(n: int, spec: dict[str, Any]) -> str:
    """Request n's event: user n % U, its k-th login k intervals after the start, from its
    home address 4 times in 5 — bench/travel.py's wrk script, in Python."""
    users, ips = spec["users"], spec["ips"]
    user, k = n % users, n // users
    ip = ips[(n * 7919) % len(ips)] if k % 5 == 4 else ips[(user * 31) % len(ips)]
    return json.dumps(
        {
            "username": f"{spec['prefix']}-u{user}",
            "unix_timestamp": spec["start"] + k * spec["interval"] + user,
            "event_uuid": f"{spec['prefix']}-{n}",
            "ip_address": ip,
        },
        separators=(",", ":"),
    )


def _request_builder(spec: dict[str, Any], host: str) -> Callable[[int], bytes]:
    """Request n's bytes: the same request each time, bodies in turn, or a fresh Superman
    event."""
    head = f"{spec['method']} {spec['path']} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in spec.get("headers", {}).items()
    )
    superman = spec.get("superman")
    if superman is not None:

        def build(n: int) -> bytes:
            body = superman_body(n, superman).encode()
            return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

        return build
    bodies = [body.encode() for body in spec.get("bodies") or []]
    if not bodies:
        payload = f"{head}\r\n".encode()
        return lambda _n: payload
    payloads = [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
    return lambda n: payloads[n % len(payloads)]


class _Stream:
    """One endpoint's schedule, queue and results inside the generator."""

    def __init__(self, spec: dict[str, Any], duration: float, host: str) -> None:
        self.name: str = spec["name"]
        self.rate = float(spec["rate"])
        self.connections = int(spec["connections"])
        self.total = max(1, int(self.rate * duration))
        self.build = _request_builder(spec, host)
        self.latency: list[float | None] = [None] * self.total
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.first_error: str | None = None
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.opened: list[_Connection] = []

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"


async def _connect(stream: _Stream, address: tuple[str, int]) -> _Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Connection, *address)
    stream.opened.append(conn)
    return conn


async def _worker(
    stream: _Stream, conn: _Connection | None, address: tuple[str, int], start: float
) -> None:
    """Sends the requests of the queue one after the other on one connection; a closed one
    is replaced, and the time that takes is the request's, as it would be a user's."""
    while True:
        n = await stream.queue.get()
        try:
            if conn is None or conn.closed:
                conn = await _connect(stream, address)
            status = await conn.request(stream.build(n))
            stream.latency[n] = conn.answered_at - (start + n / stream.rate)
            stream.statuses[status] += 1
        except (OSError, ProtocolError) as exc:
            stream.fail(exc)
            if conn is not None:
                conn.close()
            conn = None
        finally:
            stream.queue.task_done()


async def _dispatch(stream: _Stream, start: float, lateness: list[float]) -> None:
    """Hands request n to the pool at start + n / rate, whatever the pool is doing: a request
    that finds every connection busy waits in the queue, and that wait counts. `lateness`
    gets how late this loop woke for each request (its own delay, not the server's)."""
    clock, rate, sent = time.monotonic, stream.rate, 0
    while sent < stream.total:
        now = clock()
        due = min(stream.total, int((now - start) * rate) + 1) if now >= start else 0
        while sent < due:
            lateness.append(now - (start + sent / rate))
            stream.queue.put_nowait(sent)
            sent += 1
        if sent < stream.total:
            await asyncio.sleep(max(0.0, start + sent / rate - clock()))


async def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    address = (spec["host"], int(spec["port"]))
    host = f"{address[0]}:{address[1]}"
    streams = [_Stream(s, float(spec["duration"]), host) for s in spec["streams"]]
    pools = [
        await asyncio.gather(*(_connect(s, address) for _ in range(s.connections))) for s in streams
    ]
    # time.monotonic is CLOCK_MONOTONIC on Linux, one clock for every process: the parent
    # compares these times with the ones it takes (the lock test's lock intervals).
    start = time.monotonic() + READY_DELAY_S
    print(json.dumps({"ready": start}), flush=True)
    cpu_before = time.process_time()
    workers = [
        asyncio.create_task(_worker(s, conn, address, start))
        for s, pool in zip(streams, pools, strict=True)
        for conn in pool
    ]
    lateness: list[float] = []
    await asyncio.gather(*(_dispatch(s, start, lateness) for s in streams))
    # Requests still unanswered after DRAIN_S stay None: the parent counts them as failures.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_S):
            await asyncio.gather(*(s.queue.join() for s in streams))
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    for s in streams:
        for conn in s.opened:
            conn.close()
    # Its share of one core: near 100 %, the generator itself would be the bottleneck.
    cpu = (time.process_time() - cpu_before) / max(time.monotonic() - start, 1e-9)
    lateness.sort()
    return {
        "start": start,
        "cpu": cpu,
        "lateness": {
            "p50": percentile(lateness, 0.5),
            "p99": percentile(lateness, 0.99),
            "max": lateness[-1] if lateness else 0.0,
        },
        "streams": [
            {
                "name": s.name,
                "rate": s.rate,
                "latency": [round(v, 7) if v is not None else None for v in s.latency],
                "statuses": {str(k): v for k, v in s.statuses.items()},
                "errors": s.errors,
                "first_error": s.first_error,
            }
            for s in streams
        ],
    }


def _loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, f"uvloop {uvloop.__version__}"


def generator_main() -> int:
    spec = json.loads(sys.stdin.read())
    factory, loop_name = _loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(_generate(spec))
    Path(spec["out"]).write_text(json.dumps(result | {"loop": loop_name}))
    return 0


# --------------------------------------------------------------------------------------------
# The stall-free reference: a server with no application (`latency.py _reference PORT SECONDS`)
# that spends the same CPU on every request and answers it. The same schedule against it shows
# how much of a fixed-rate p99/p50 this machine, its scheduler and the generator give by
# themselves: at sub-millisecond medians that share is most of it.

REFERENCE_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


def _take_request(buffer: bytearray) -> bool:
    """Removes one whole request (head and Content-Length body) from `buffer`, if there."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    total = end + 4 + length
    if len(buffer) < total:
        return False
    del buffer[:total]
    return True


class _Reference(asyncio.Protocol):
    def __init__(self, service_s: float) -> None:
        self.service_s = service_s
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while _take_request(self.buffer):
            busy_until = time.perf_counter() + self.service_s
            while time.perf_counter() < busy_until:
                pass
            assert self.transport is not None
            self.transport.write(REFERENCE_ANSWER)


def reference_main(port: int, service_s: float) -> int:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Reference(service_s), "127.0.0.1", port, backlog=1024
        )
        async with server:
            await server.serve_forever()

    factory, _ = _loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve())
    return 0


@contextlib.contextmanager
def reference_server(service_s: float) -> Iterator[str]:
    """The reference server in a child process: its base URL; stopped on the way out."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), REFERENCE, str(port), repr(service_s)]
    )
    try:
        wait_accepting(process, port, "the reference server")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------------------------
# The parent's side of the generator


@dataclass(slots=True)
class StreamResult:
    name: str
    rate: float
    start: float
    latency: list[float | None]
    statuses: dict[str, int]
    errors: int
    first_error: str | None

    def scheduled(self, n: int) -> float:
        return self.start + n / self.rate

    def answered(self, keep: Callable[[float], bool] = lambda _t: True) -> list[float]:
        """Ascending latencies of the answered requests whose scheduled time passes `keep`."""
        return sorted(
            v for n, v in enumerate(self.latency) if v is not None and keep(self.scheduled(n))
        )

    @property
    def failures(self) -> int:
        """Requests that failed, got no answer, or a non-2xx/3xx one."""
        bad = sum(v for k, v in self.statuses.items() if not 200 <= int(k) < 400)
        return sum(v is None for v in self.latency) + bad

    @property
    def problems(self) -> list[str]:
        found = []
        if unanswered := sum(v is None for v in self.latency) - self.errors:
            found.append(f"{unanswered} requests unanswered after {DRAIN_S:.0f} s")
        if self.errors:
            found.append(f"{self.errors} failed requests, first: {self.first_error}")
        if bad := {k: v for k, v in self.statuses.items() if not 200 <= int(k) < 400}:
            found.append(f"non-2xx/3xx answers {bad}")
        return found


@dataclass(slots=True)
class GeneratorRun:
    label: str
    loop: str
    lateness: dict[str, float]
    cpu: float
    streams: dict[str, StreamResult]

    @property
    def kept_up(self) -> bool:
        return self.lateness["p99"] <= GENERATOR_LAG_LIMIT_S


def stream_spec(
    name: str,
    method: str,
    path: str,
    *,
    rate: float,
    connections: int,
    headers: dict[str, str] | None = None,
    bodies: list[str] | None = None,
    superman: dict[str, Any] | None = None,
) -> dict[str, Any]:
    headers = dict(headers or {})
    if bodies or superman is not None:
        headers["Content-Type"] = "application/json"
    return {
        "name": name,
        "method": method,
        "path": path,
        "rate": rate,
        "connections": connections,
        "headers": headers,
        "bodies": bodies,
        "superman": superman,
    }


def run_generator(
    label: str,
    base: str,
    streams: list[dict[str, Any]],
    duration: float,
    during: Callable[[float], T] | None = None,
) -> tuple[GeneratorRun, T | None]:
    """The streams at their rates for `duration` s, from a child process; `during(start)`
    runs in a thread of this process meanwhile (its result is returned with the run)."""
    parts = urlsplit(base)
    with tempfile.TemporaryDirectory(prefix="gg-latency-") as tmp:
        out = Path(tmp) / "result.json"
        spec = {
            "host": parts.hostname,
            "port": parts.port,
            "duration": duration,
            "streams": streams,
            "out": str(out),
        }
        code, side = _run_child(label, spec, during)
        if code != 0 or not out.exists():
            raise InvalidMeasurementError(f"{label}: the load generator exited {code}")
        result = json.loads(out.read_text())
    return GeneratorRun(
        label=label,
        loop=result["loop"],
        lateness=result["lateness"],
        cpu=result["cpu"],
        streams={
            s["name"]: StreamResult(
                name=s["name"],
                rate=s["rate"],
                start=result["start"],
                latency=s["latency"],
                statuses=s["statuses"],
                errors=s["errors"],
                first_error=s["first_error"],
            )
            for s in result["streams"]
        },
    ), side


def _run_child(
    label: str, spec: dict[str, Any], during: Callable[[float], T] | None
) -> tuple[int, T | None]:
    """The generator process, and `during(start)` in a thread once it is ready: (exit
    status, what `during` returned)."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), GENERATE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    side: T | None = None
    try:
        process.stdin.write(json.dumps(spec))
        process.stdin.close()
        ready = process.stdout.readline()
        if not ready:
            raise InvalidMeasurementError(
                f"{label}: the load generator exited {process.wait()} before its first request"
            )
        start = float(json.loads(ready)["ready"])
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(during, start) if during is not None else None
            code = process.wait()
            if pending is not None:
                side = pending.result()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, side


# --------------------------------------------------------------------------------------------
# The lock holder: this process, not the server, takes SQLite's write lock


def hold_write_lock(db_path: Path, start: float) -> list[tuple[float, float]]:
    """LOCKS times: at start + LOCK_LEAD_S + k * (hold + gap), BEGIN IMMEDIATE, hold, ROLLBACK.
    Returns the (acquired, released) times, on the generator's clock."""
    held: list[tuple[float, float]] = []
    # isolation_level=None: the module must not open transactions of its own.
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        for k in range(LOCKS):
            time.sleep(
                max(0.0, start + LOCK_LEAD_S + k * (LOCK_HOLD_S + LOCK_GAP_S) - time.monotonic())
            )
            # The server may hold the lock for a moment itself: the hold starts when ours is.
            conn.execute("BEGIN IMMEDIATE")
            acquired = time.monotonic()
            time.sleep(LOCK_HOLD_S)
            conn.execute("ROLLBACK")
            held.append((acquired, time.monotonic()))
    except sqlite3.Error as exc:
        raise InvalidMeasurementError(f"lock test: cannot hold the write lock: {exc}") from exc
    finally:
        conn.close()
    return held


# --------------------------------------------------------------------------------------------
# Figures


@dataclass(frozen=True, slots=True)
class Row:
    """One endpoint under one load: its latencies in seconds and p99/p50 against the goal."""

    endpoint: str
    load: str
    rate: float
    requests: int
    p50: float
    p99: float
    max: float

    @property
    def ratio(self) -> float:
        return self.p99 / self.p50 if self.p50 else 0.0

    @property
    def passed(self) -> bool:
        return self.ratio <= P99_P50_GOAL


@dataclass(frozen=True, slots=True)
class LockRow:
    """An endpoint's p99 while the lock is held against its p99 at the same rate, idle."""

    endpoint: str
    idle_p99: float
    # Of the idle run before the locked one, and of the one after; idle_p99 is the lower.
    idle_p99s: list[float]
    lock_p99: float
    lock_max: float
    lock_requests: int
    failed: int
    goal: float | None

    @property
    def ratio(self) -> float:
        return self.lock_p99 / self.idle_p99 if self.idle_p99 else 0.0

    @property
    def passed(self) -> bool:
        return self.goal is None or (self.ratio <= self.goal and not self.failed)


def row_of_wrk(endpoint: str, result: WrkResult) -> Row:
    if result.latency is None:
        raise InvalidMeasurementError(f"{endpoint}: no latency distribution in\n{result.output}")
    lat = result.latency
    return Row(
        endpoint, "closed", result.requests_per_s, result.requests, lat.p50, lat.p99, lat.max
    )


def row_of_stream(endpoint: str, load: str, stream: StreamResult) -> Row:
    if stream.problems:
        raise InvalidMeasurementError(f"{endpoint} ({load}): {'; '.join(stream.problems)}")
    values = stream.answered()
    return Row(
        endpoint,
        load,
        stream.rate,
        len(values),
        percentile(values, 0.5),
        percentile(values, 0.99),
        values[-1],
    )


# --------------------------------------------------------------------------------------------
# Measurement plan


@dataclass(frozen=True, slots=True)
class Settings:
    """Command-line options."""

    duration: int
    warmup: int
    rate_fraction: float
    connections: int
    signin_connections: int
    lock_rate: float
    seed: int
    db_url: str | None
    log_level: str
    as_json: bool
    check: bool


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to load one endpoint: `closed(seconds)` runs wrk, `stream(rate, connections)` is
    the generator's spec. Both give POST /v1/ fresh event names on every call."""

    name: str
    connections: int
    closed: Callable[[int], WrkResult]
    stream: Callable[[float, int], dict[str, Any]]


@dataclass(slots=True)
class Results:
    rows: list[Row] = field(default_factory=list)
    # The fixed-rate runs again, against the stall-free reference server (no goal).
    references: list[Row] = field(default_factory=list)
    lock: list[LockRow] | None = None
    lock_intervals: list[tuple[float, float]] = field(default_factory=list)
    runs: list[GeneratorRun] = field(default_factory=list)


def _fresh(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(3)}"


def superman_spec(pool: list[str], prefix: str) -> dict[str, Any]:
    return {
        "prefix": prefix,
        "users": SUPERMAN_USERS,
        "start": int(time.time()) - 7 * 86_400,
        "interval": SUPERMAN_INTERVAL_S,
        "ips": pool,
    }


@dataclass(frozen=True, slots=True)
class Fixtures:
    """What the requests carry: a user's token, sign-in bodies of other accounts, an admin's
    API key, addresses."""

    token: str
    signins: list[dict[str, str]]
    api_key: str
    pool: list[str]


def endpoints(opts: Settings, wrk: str, base: str, workdir: Path, fx: Fixtures) -> list[Endpoint]:
    bearer = {"Authorization": f"Bearer {fx.token}"}
    api_key = {"X-API-KEY": fx.api_key}
    signin_script = post_json_script(workdir, fx.signins)

    def closed(
        path: str,
        connections: int,
        headers: dict[str, str] | None = None,
        script: Callable[[], Path] | None = None,
    ) -> Callable[[int], WrkResult]:
        def run(seconds: int) -> WrkResult:
            url = f"{base}{path}"
            result = run_wrk(
                wrk,
                url,
                seconds=seconds,
                connections=connections,
                headers=headers,
                script=script() if script is not None else None,
                latency=True,
            )
            check_wrk(url, result)
            return result

        return run

    def opened(
        name: str, method: str, path: str, superman: bool = False, **kw: Any
    ) -> Callable[[float, int], dict[str, Any]]:
        def spec(rate: float, connections: int) -> dict[str, Any]:
            events = superman_spec(fx.pool, _fresh("o")) if superman else None
            return stream_spec(
                name, method, path, rate=rate, connections=connections, superman=events, **kw
            )

        return spec

    c, sc = opts.connections, opts.signin_connections
    return [
        Endpoint(HEALTHZ, c, closed("/healthz", c), opened(HEALTHZ, "GET", "/healthz")),
        Endpoint(
            ME,
            c,
            closed("/api/v1/users/me", c, headers=bearer),
            opened(ME, "GET", "/api/v1/users/me", headers=bearer),
        ),
        Endpoint(
            SUPERMAN,
            c,
            closed(
                "/v1/", c, script=lambda: superman_script(workdir, fx.api_key, fx.pool, _fresh("c"))
            ),
            opened(SUPERMAN, "POST", "/v1/", superman=True, headers=api_key),
        ),
        Endpoint(
            SIGNIN,
            sc,
            closed(SIGNIN_PATH, sc, script=lambda: signin_script),
            opened(SIGNIN, "POST", SIGNIN_PATH, bodies=[json.dumps(b) for b in fx.signins]),
        ),
    ]


def ensure_alive(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        raise InvalidMeasurementError(f"server exited with {process.returncode}")


def measure_endpoint(
    opts: Settings, base: str, ep: Endpoint, process: subprocess.Popen[bytes], results: Results
) -> None:
    """Closed loop first; its req/s sets the fixed rate of the run right after it."""
    if opts.warmup > 0:
        say(f"warm-up {ep.name} ({opts.warmup} s)")
        ep.closed(opts.warmup)
    say(f"{ep.name}: closed loop, wrk {ep.connections} connections, {opts.duration} s")
    closed = row_of_wrk(ep.name, ep.closed(opts.duration))
    ensure_alive(process)
    rate = opts.rate_fraction * closed.rate
    say(f"{ep.name}: fixed rate {rate:.1f} req/s ({opts.rate_fraction:.0%}), {opts.duration} s")
    run, _ = run_generator(
        f"{ep.name}, fixed rate", base, [ep.stream(rate, ep.connections)], opts.duration
    )
    ensure_alive(process)
    fixed = row_of_stream(ep.name, f"fixed {opts.rate_fraction:.0%}", run.streams[ep.name])
    results.rows += [closed, fixed]
    results.runs.append(run)
    results.references.append(reference_row(opts, ep, rate, 1 / closed.rate))
    for row in (closed, fixed):
        say(
            f"  {row.load:<10} {row.rate:9.1f} req/s  p50 {row.p50 * 1e3:8.2f} ms  "
            f"p99 {row.p99 * 1e3:8.2f} ms  max {row.max * 1e3:8.2f} ms  p99/p50 {row.ratio:.2f}"
        )
    if not run.kept_up:
        say(f"  the generator fell behind: its lateness p99 {run.lateness['p99'] * 1e3:.1f} ms")


def reference_row(opts: Settings, ep: Endpoint, rate: float, service_s: float) -> Row:
    """The fixed-rate run's schedule against the reference server, which spends the
    endpoint's closed-loop time per request (1 / its req/s) on each."""
    say(f"{ep.name}: the same schedule against a stall-free reference ({service_s * 1e3:.2f} ms)")
    with reference_server(service_s) as base:
        run, _ = run_generator(
            f"{ep.name}, reference", base, [ep.stream(rate, ep.connections)], opts.duration
        )
    return row_of_stream(ep.name, "reference", run.streams[ep.name])


def lock_test(
    opts: Settings,
    base: str,
    db_path: Path,
    eps: dict[str, Endpoint],
    process: subprocess.Popen[bytes],
    results: Results,
) -> None:
    """The same load three times: idle, with another process taking the write lock, idle
    again. The lower idle p99 is the baseline: a disturbance (another process on the
    machine) can only raise an idle p99, and a raised baseline would hide a stall."""
    duration = LOCK_LEAD_S + LOCKS * (LOCK_HOLD_S + LOCK_GAP_S)

    def streams() -> list[dict[str, Any]]:
        return [
            eps[HEALTHZ].stream(opts.lock_rate, opts.connections),
            eps[ME].stream(opts.lock_rate, opts.connections),
            eps[SUPERMAN].stream(LOCK_WRITE_RATE, LOCK_WRITE_CONNECTIONS),
        ]

    say(
        f"lock test, idle: GETs at {opts.lock_rate:.0f} req/s each, writes at "
        f"{LOCK_WRITE_RATE:.0f} req/s, {duration:.1f} s"
    )
    before, _ = run_generator("lock test, idle before", base, streams(), duration)
    ensure_alive(process)
    say(f"lock test, locked: the same, with the write lock held {LOCKS} x {LOCK_HOLD_S} s")
    locked, held = run_generator(
        "lock test, locked",
        base,
        streams(),
        duration,
        during=lambda start: hold_write_lock(db_path, start),
    )
    ensure_alive(process)
    say("lock test, idle again")
    after, _ = run_generator("lock test, idle after", base, streams(), duration)
    ensure_alive(process)
    assert held is not None
    results.runs += [before, locked, after]
    results.lock_intervals = held

    # The idle runs are measured over the same windows, relative to their start, as the locks
    # were in the locked run: the same moments of the same schedule, without the lock.
    origin = locked.streams[HEALTHZ].start
    offsets = [(acquired - origin, released - origin) for acquired, released in held]

    def windows(start: float) -> Callable[[float], bool]:
        return lambda t: any(start + a <= t <= start + r for a, r in offsets)

    results.lock = []
    for name in (HEALTHZ, ME, SUPERMAN):
        idle_p99s = []
        for idle in (before, after):
            calm = idle.streams[name]
            if calm.problems:
                raise InvalidMeasurementError(f"{name} ({idle.label}): {'; '.join(calm.problems)}")
            idle_p99s.append(percentile(calm.answered(windows(calm.start)), 0.99))
        busy = locked.streams[name]
        busy_values = busy.answered(windows(origin))
        row = LockRow(
            endpoint=name,
            idle_p99=min(idle_p99s),
            idle_p99s=idle_p99s,
            lock_p99=percentile(busy_values, 0.99),
            lock_max=busy_values[-1] if busy_values else 0.0,
            lock_requests=len(busy_values),
            failed=busy.failures,
            goal=None if name == SUPERMAN else LOCK_GOAL,
        )
        results.lock.append(row)
        say(
            f"  {name:<24} idle p99 {row.idle_p99 * 1e3:8.2f} ms  lock p99 "
            f"{row.lock_p99 * 1e3:8.2f} ms  ({row.lock_requests} during the lock)  "
            f"ratio {row.ratio:.1f}"
        )


def run_benchmark(opts: Settings, wrk: str, workdir: Path) -> tuple[Results, dict[str, Any]]:
    from sqlalchemy.engine import make_url

    reader = open_reader(bundled_city_db())
    pool = locatable_ips(reader, IP_POOL, random.Random(opts.seed))
    reader.close()
    results = Results()
    with database(opts.db_url, workdir) as db_url:
        backend = backend_of(db_url)
        env = server_env(db_url, workdir, opts.log_level)
        with server(db_url, workdir, opts.log_level, env) as (base, process):
            api_key = api_key_for(base, env, workdir)
            username, token = signup(base)
            signins = signin_bodies(base, 2 * opts.signin_connections)
            say(
                f"server ready at {base} ({backend}); account {username}, "
                f"{len(signins)} sign-in accounts, an admin API key"
            )
            fx = Fixtures(token, signins, api_key, pool)
            eps = endpoints(opts, wrk, base, workdir, fx)
            for ep in eps:
                measure_endpoint(opts, base, ep, process, results)
            if backend == "sqlite":
                db_path = Path(str(make_url(db_url).database))
                lock_test(opts, base, db_path, {ep.name: ep for ep in eps}, process, results)
            else:
                say(f"lock test: SQLite only, skipped on {backend}")
    lateness = [run.lateness["p99"] for run in results.runs]
    config = {
        "db_backend": backend,
        "cpu_count": os.cpu_count() or 1,
        "wrk": wrk_version(wrk),
        "wrk_threads": 1,
        "connections": opts.connections,
        "signin_connections": opts.signin_connections,
        "signin_accounts": 2 * opts.signin_connections,
        "duration_s": opts.duration,
        "warmup_s": opts.warmup,
        "rate_fraction": opts.rate_fraction,
        "generator_loop": results.runs[0].loop if results.runs else None,
        "generator_lateness_p99_max_s": max(lateness, default=0.0),
        "generator_lateness_limit_s": GENERATOR_LAG_LIMIT_S,
        "lock": {
            "rate": opts.lock_rate,
            "write_rate": LOCK_WRITE_RATE,
            "hold_s": LOCK_HOLD_S,
            "gap_s": LOCK_GAP_S,
            "locks": LOCKS,
        },
        "server_log_level": opts.log_level,
        "python": sys.version.split()[0],
        "seed": opts.seed,
    }
    return results, config


# --------------------------------------------------------------------------------------------
# Reporting


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def passed(results: Results) -> bool:
    return all(r.passed for r in results.rows) and all(r.passed for r in results.lock or [])


def report_text(results: Results, config: dict[str, Any]) -> str:
    fraction = f"{config['rate_fraction']:.0%}"
    lines = [
        f"Globeguard latency benchmark — db {config['db_backend']}, {config['cpu_count']} CPUs, "
        f"{config['wrk']}, {config['duration_s']} s per run",
        f"closed: wrk --latency, {config['connections']} connections (sign-in "
        f"{config['signin_connections']})",
        f"fixed: {fraction} of the closed-loop req/s, as many connections; each latency from",
        "       the request's scheduled send time",
        "",
        f"{'endpoint':<26}{'load':<11}{'req/s':>9}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'p99/p50':>9}  result",
    ]
    for r in results.rows:
        verdict = "PASS" if r.passed else "ABOVE"
        lines.append(
            f"{r.endpoint:<26}{r.load:<11}{r.rate:>9.1f}{r.requests:>10}{_ms(r.p50):>9}"
            f"{_ms(r.p99):>9}{_ms(r.max):>9}{r.ratio:>9.2f}  {verdict}"
        )
    lines += [
        f"goal: p99/p50 <= {P99_P50_GOAL:g}",
        "",
        "the same fixed-rate schedules against a stall-free reference server (no application;",
        "each request spends the endpoint's closed-loop time per request, one at a time): what",
        "the machine, its scheduler and the load generator give by themselves (no goal)",
        f"{'endpoint':<26}{'service ms':>11}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'p99/p50':>9}{'server/ref':>11}",
    ]
    closed_rows = [r for r in results.rows if r.load == "closed"]
    fixed_rows = [r for r in results.rows if r.load != "closed"]
    for ref, closed, fixed in zip(results.references, closed_rows, fixed_rows, strict=True):
        lines.append(
            f"{ref.endpoint:<26}{_ms(1 / closed.rate):>11}{ref.rate:>9.1f}{_ms(ref.p50):>9}"
            f"{_ms(ref.p99):>9}{_ms(ref.max):>9}{ref.ratio:>9.2f}"
            f"{fixed.ratio / ref.ratio if ref.ratio else 0.0:>11.2f}"
        )
    lines += [
        "server/ref: the server's fixed-rate p99/p50 over the reference's",
        "",
        f"load generator ({config['generator_loop']}): its own lateness per run (a p99 above "
        f"{_ms(GENERATOR_LAG_LIMIT_S)} ms",
        "is a visible share of the latencies it reports: BEHIND), and its share of one core",
    ]
    for run in results.runs:
        lines.append(
            f"  {run.label:<40} p99 {_ms(run.lateness['p99']):>7} ms  max "
            f"{_ms(run.lateness['max']):>7} ms  cpu {run.cpu:4.0%}  "
            f"{'kept up' if run.kept_up else 'BEHIND'}"
        )
    lock = config["lock"]
    if results.lock is None:
        lines += ["", "lock test: SQLite only, not run"]
    else:
        lines += [
            "",
            f"lock test — another process holds SQLite's write lock {lock['locks']} x "
            f"{lock['hold_s']} s (BEGIN IMMEDIATE);",
            f"GETs at {lock['rate']:.0f} req/s each, POST /v1/ at {lock['write_rate']:.0f} "
            "req/s; runs idle, locked, idle,",
            "each measured over the lock's windows; idle p99: the lower of the two idle runs",
            f"{'endpoint':<26}{'idle p99 ms':>12}{'(2nd idle)':>11}{'lock p99 ms':>12}"
            f"{'lock max ms':>12}{'in lock':>8}{'failed':>7}{'lock/idle':>10}  result",
        ]
        for row in results.lock:
            verdict = "(no goal)" if row.goal is None else "PASS" if row.passed else "ABOVE"
            lines.append(
                f"{row.endpoint:<26}{_ms(row.idle_p99):>12}{_ms(max(row.idle_p99s)):>11}"
                f"{_ms(row.lock_p99):>12}{_ms(row.lock_max):>12}{row.lock_requests:>8}"
                f"{row.failed:>7}{row.ratio:>10.2f}  {verdict}"
            )
        lines += [
            f"goal: p99 during the lock / idle p99 <= {LOCK_GOAL:g}, no failed request in the "
            "locked run;",
            "writes must wait for the lock, so they have no goal",
        ]
    return "\n".join(lines)


def report_json(results: Results, config: dict[str, Any]) -> str:
    return json.dumps(
        {
            "config": config,
            "latency": [
                {**asdict(r), "p99_over_p50": r.ratio, "goal": P99_P50_GOAL, "passed": r.passed}
                for r in results.rows
            ],
            "reference": [{**asdict(r), "p99_over_p50": r.ratio} for r in results.references],
            "generator": [
                {
                    "run": run.label,
                    "lateness_s": run.lateness,
                    "cpu_share": run.cpu,
                    "kept_up": run.kept_up,
                }
                for run in results.runs
            ],
            "lock_test": None
            if results.lock is None
            else {
                "intervals_s": [[a, b] for a, b in results.lock_intervals],
                "endpoints": [
                    {**asdict(row), "lock_over_idle": row.ratio, "passed": row.passed}
                    for row in results.lock
                ],
            },
            "passed": passed(results),
        },
        indent=2,
    )


# --------------------------------------------------------------------------------------------
# Entry point


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Globeguard tail latency (p99/p50, closed loop and fixed rate) and the "
        "SQLite write-lock test."
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds per measured run (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of wrk warm-up per endpoint (default 1)"
    )
    parser.add_argument(
        "--rate-fraction",
        type=float,
        default=RATE_FRACTION,
        help="fixed rate as a fraction of the closed-loop req/s just measured (default 0.6)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=CONNECTIONS,
        help=f"wrk connections and generator pool per endpoint (default {CONNECTIONS})",
    )
    parser.add_argument(
        "--signin-connections",
        type=int,
        default=SIGNIN_CONNECTIONS,
        help=f"the same for sign-in, which hashing saturates (default {SIGNIN_CONNECTIONS})",
    )
    parser.add_argument(
        "--lock-rate",
        type=float,
        default=LOCK_RATE,
        help=f"req/s of each GET in the lock test (default {LOCK_RATE:g})",
    )
    parser.add_argument("--seed", type=int, default=1, help="address pool seed (default 1)")
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
        help=f"exit {EXIT_BELOW_GOAL} when a ratio is above its goal",
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be >= 1, --warmup >= 0")
    if not 0 < args.rate_fraction <= 1:
        parser.error("--rate-fraction must be in (0, 1]")
    if args.connections < 1 or args.signin_connections < 1 or args.lock_rate <= 0:
        parser.error("--connections and --signin-connections must be >= 1, --lock-rate > 0")
    return Settings(
        args.duration,
        args.warmup,
        args.rate_fraction,
        args.connections,
        args.signin_connections,
        args.lock_rate,
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
    results, config = measured
    print(report_json(results, config) if opts.as_json else report_text(results, config))
    if opts.check and not passed(results):
        return EXIT_BELOW_GOAL
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == [REFERENCE]:
        sys.exit(reference_main(int(sys.argv[2]), float(sys.argv[3])))
    sys.exit(generator_main() if sys.argv[1:2] == [GENERATE] else main())
