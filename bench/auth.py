#!/usr/bin/env python3
"""Authentication throughput of Globeguard, as ratios to baselines measured in the same run.

What is measured, all against one `globeguard serve` process started here on a fresh database:

* **sign-in** — `POST /api/v1/auth/signin` req/s, divided by **raw argon2id verify/s**: a
  thread pool of `os.cpu_count()` threads calling argon2-cffi's `PasswordHasher.verify` with
  the server's parameters (m=19 MiB, t=2, p=1) on the same cores. A sign-in must pay for one
  verify, so this ratio says how much of the machine's hashing capacity the service turns
  into sign-ins; everything else it does (HTTP, JSON, DB, token signing) is overhead.
  Goal: >= 0.85.
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

Run:  .venv/bin/python bench/auth.py [--duration 8] [--json] [--check]
          [--db-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
Needs wrk (`apt-get install -y wrk`); as root the script installs it when missing.
Exit status: 0 measured (whatever the ratios), 1 invalid measurement or failed set-up,
2 no wrk, 3 a ratio below its goal with --check, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[1]
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
READY_TIMEOUT_S = 60.0

EXIT_INVALID = 1
EXIT_NO_WRK = 2
EXIT_BELOW_GOAL = 3


class InvalidMeasurementError(Exception):
    """A run that cannot be trusted: errors, non-2xx answers, a server that died."""


class SetupError(Exception):
    """The benchmark could not be prepared (database, server start-up)."""


# --------------------------------------------------------------------------------------------
# Output helpers: progress goes to stderr so that --json leaves stdout machine-readable.


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    print(f"\n*** {message}\n", file=sys.stderr, flush=True)
    sys.exit(code)


# --------------------------------------------------------------------------------------------
# wrk


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    requests: int
    non_2xx: int
    socket_errors: int
    output: str

    @property
    def problems(self) -> list[str]:
        found = []
        if self.requests == 0:
            found.append("no request completed")
        if self.non_2xx:
            found.append(f"{self.non_2xx} non-2xx/3xx responses")
        if self.socket_errors:
            found.append(f"{self.socket_errors} socket errors")
        return found


def ensure_wrk() -> str:
    """Path to wrk; installs the Debian package when running as root, else explains how."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("wrk is not installed; installing the Debian package: apt-get install -y wrk")
        for command in (["apt-get", "install", "-y", "wrk"],
                        # A fresh machine may have no package lists yet.
                        ["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
            if subprocess.run(command, stdout=sys.stderr, check=False).returncode == 0 and (
                path := shutil.which("wrk")
            ):
                return path
    fail("wrk is required but not installed. Install it with:  sudo apt-get install -y wrk",
         EXIT_NO_WRK)


def wrk_version(wrk: str) -> str:
    # wrk has no real --version: it prints "wrk <version> [epoll] Copyright ..." and exits 1.
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+)", done.stdout + done.stderr)
    return f"wrk {match.group(1)}" if match else "wrk"


def parse_wrk(output: str) -> WrkResult:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise InvalidMeasurementError(f"could not parse wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        output=output,
    )


def run_wrk(
    wrk: str, url: str, *, seconds: int, connections: int,
    headers: dict[str, str] | None = None, script: Path | None = None,
) -> WrkResult:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InvalidMeasurementError(f"wrk exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def post_json_script(directory: Path, body: dict[str, str]) -> Path:
    """wrk sends a body only through Lua; a long bracket needs no escaping of the JSON."""
    payload = json.dumps(body)
    assert "]==]" not in payload
    script = directory / "signin.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{payload}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


# --------------------------------------------------------------------------------------------
# Baseline: raw argon2id verification on every core


def argon2_verify_rate(seconds: float, threads: int) -> float:
    """Verifies/s of `threads` threads hashing flat out; argon2-cffi releases the GIL."""
    from argon2 import PasswordHasher, Type

    hasher = PasswordHasher(
        time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM, type=Type.ID,
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
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for worker in workers:
        worker.join()
    # The last verify of each thread may end past the deadline: divide by the real span.
    return sum(counts) / (time.perf_counter() - began)


# --------------------------------------------------------------------------------------------
# Database: a temp SQLite file, or a throwaway PostgreSQL database


def _asyncpg_dsn(sqlalchemy_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _pg_admin(sqlalchemy_url: str, statement: str) -> None:
    import asyncpg

    # CREATE/DROP DATABASE cannot run inside the target database: use the maintenance one.
    conn = await asyncpg.connect(_asyncpg_dsn(sqlalchemy_url, "postgres"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def database(db_url: str | None, workdir: Path) -> Iterator[str]:
    """The server's database URL: SQLite in workdir by default, else a dedicated PostgreSQL
    database (random name) created here and dropped after, so runs never share state."""
    if db_url is None:
        yield f"sqlite+aiosqlite:///{workdir / 'gg.db'}"
        return
    if not db_url.startswith("postgresql"):
        yield db_url
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"gg_bench_{secrets.token_hex(6)}"
    say(f"creating PostgreSQL database {name}")
    try:
        asyncio.run(_pg_admin(db_url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        raise SetupError(f"cannot create a PostgreSQL database via {db_url}: {exc}") from exc
    try:
        yield make_url(db_url).set(database=name).render_as_string(hide_password=False)
    finally:
        say(f"dropping PostgreSQL database {name}")
        asyncio.run(_pg_admin(db_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def backend_of(db_url: str) -> str:
    return db_url.split(":", 1)[0].split("+", 1)[0]


# --------------------------------------------------------------------------------------------
# The server under test


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - always an http://127.0.0.1 URL built here
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(
                f"server exited with {process.returncode} during start-up:\n{_log_tail(log)}"
            )
        try:
            if http("GET", f"{base}/readyz")[0] == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise SetupError(f"server not ready after {READY_TIMEOUT_S:.0f} s:\n{_log_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def server(
    db_url: str, workdir: Path, log_level: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A `globeguard serve` subprocess, ready to answer; always stopped on the way out."""
    port = free_port()
    env = {
        **os.environ,
        "GLOBEGUARD_DB__URL": db_url,
        "GLOBEGUARD_DATA_DIR": str(workdir / "data"),
        "GLOBEGUARD_SECRET_KEY": secrets.token_urlsafe(32),
        # The access log at "info" writes one line per request: that would measure logging.
        "GLOBEGUARD_LOG_LEVEL": log_level,
    }
    log = workdir / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [server_python(), "-m", "globeguard", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            # cwd=workdir: a developer's ./.env must not change what is measured.
            # New session: Ctrl-C reaches this script, which then stops the server in order.
            cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_ready(process, base, log)
        yield base, process
    except (InvalidMeasurementError, SetupError):
        tail = _log_tail(log)
        if tail:
            say(f"server log (last lines):\n{tail}")
        raise
    finally:
        stop(process)


def signup(base: str) -> tuple[str, str]:
    """A fresh account; returns (username, access token)."""
    username = f"bench-{secrets.token_hex(4)}"
    status, body = http(
        "POST", f"{base}/api/v1/auth/signup", {"username": username, "password": PASSWORD}
    )
    if status != 201:
        raise SetupError(f"signup answered {status}: {body}")
    return username, str(body["access_token"])


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


@dataclass(slots=True)
class Series:
    """Repeated measurements of one quantity, in the unit given."""

    name: str
    unit: str
    runs: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return mean(self.runs) if self.runs else 0.0


@dataclass(frozen=True, slots=True)
class Ratio:
    name: str
    subject: Series
    baseline: Series
    goal: float

    @property
    def value(self) -> float:
        return self.subject.mean / self.baseline.mean if self.baseline.mean else 0.0

    @property
    def passed(self) -> bool:
        return self.value >= self.goal


def abba(rounds: int) -> list[bool]:
    """True = baseline, False = subject: A B B A A B ... cancels a linear drift."""
    order: list[bool] = []
    for i in range(rounds):
        order += [True, False] if i % 2 == 0 else [False, True]
    return order


# A runner measures one quantity for the given number of seconds and returns its rate.
Runner = Callable[[int], float]


def measure_pair(
    baseline: Series, subject: Series, run_baseline: Runner, run_subject: Runner,
    opts: Settings, server_process: subprocess.Popen[bytes],
) -> None:
    for is_baseline in abba(opts.rounds):
        series, run = (baseline, run_baseline) if is_baseline else (subject, run_subject)
        value = run(opts.duration)
        # A crashed server answers nothing; wrk would then report 0 req/s or socket errors,
        # but say plainly why.
        if server_process.poll() is not None:
            raise InvalidMeasurementError(f"server exited with {server_process.returncode}")
        series.runs.append(value)
        say(f"  {series.name:<28} {value:10.1f} {series.unit}")


def http_runner(wrk: str, url: str, connections: int, **kw: Any) -> Runner:
    def run(seconds: int) -> float:
        result = run_wrk(wrk, url, seconds=seconds, connections=connections, **kw)
        if result.problems:
            raise InvalidMeasurementError(
                f"{url}: {', '.join(result.problems)} — the measurement is invalid.\n"
                f"{result.output}"
            )
        return result.requests_per_s

    return run


def run_benchmark(opts: Settings, wrk: str, workdir: Path) -> tuple[list[Ratio], dict[str, Any]]:
    cores = os.cpu_count() or 1
    with database(opts.db_url, workdir) as db_url, \
            server(db_url, workdir, opts.log_level) as (base, process):
        username, token = signup(base)
        say(f"server ready at {base} ({backend_of(db_url)}); account {username} signed up")
        signin_script = post_json_script(workdir, {"username": username, "password": PASSWORD})

        healthz = http_runner(wrk, f"{base}/healthz", GET_CONNECTIONS)
        me = http_runner(wrk, f"{base}/api/v1/users/me", GET_CONNECTIONS,
                         headers={"Authorization": f"Bearer {token}"})
        signin = http_runner(wrk, f"{base}/api/v1/auth/signin", SIGNIN_CONNECTIONS,
                             script=signin_script)

        # Warm-up runs the lazy first-use paths (imports, prepared statements, pools) outside
        # the measured runs, and fails fast on a broken endpoint before the long runs.
        if opts.warmup > 0:
            for name, run in (("healthz", healthz), ("users/me", me), ("signin", signin)):
                say(f"warm-up {name} ({opts.warmup} s)")
                run(opts.warmup)

        # The GET pair first: sign-in writes rows (sessions, audit events) that could make
        # later reads slower; each pair is compared within itself, never across.
        health_s = Series("GET /healthz", "req/s")
        me_s = Series("GET /api/v1/users/me", "req/s")
        say(f"measuring GET /users/me vs GET /healthz ({opts.rounds} x 2 x {opts.duration} s)")
        measure_pair(health_s, me_s, healthz, me, opts, process)

        argon_s = Series(f"argon2id verify ({cores} threads)", "verify/s")
        signin_s = Series("POST /api/v1/auth/signin", "req/s")
        say(f"measuring sign-in vs raw argon2id ({opts.rounds} x 2 x {opts.duration} s)")
        measure_pair(argon_s, signin_s, lambda seconds: argon2_verify_rate(seconds, cores),
                     signin, opts, process)

    config = {
        "db_backend": backend_of(db_url), "cpu_count": cores,
        "server_hash_concurrency": int(os.environ.get("GLOBEGUARD_AUTH__HASH_CONCURRENCY", cores)),
        "argon2": {"type": "id", "memory_kib": ARGON2_MEMORY_KIB,
                   "time_cost": ARGON2_TIME_COST, "parallelism": ARGON2_PARALLELISM},
        "wrk": wrk_version(wrk), "wrk_threads": 1,
        "connections": {"signin": SIGNIN_CONNECTIONS, "get": GET_CONNECTIONS},
        "duration_s": opts.duration, "warmup_s": opts.warmup, "rounds": opts.rounds,
        "server_log_level": opts.log_level,
        "python": sys.version.split()[0],
    }
    ratios = [
        Ratio("signin / argon2id verify", signin_s, argon_s, SIGNIN_GOAL),
        Ratio("users/me / healthz", me_s, health_s, ME_GOAL),
    ]
    return ratios, config


# --------------------------------------------------------------------------------------------
# Reporting


def report_text(ratios: list[Ratio], config: dict[str, Any]) -> str:
    lines = [
        f"Globeguard auth benchmark — db {config['db_backend']}, {config['cpu_count']} CPUs, "
        f"{config['wrk']}, {config['duration_s']} s x {config['rounds']} runs per side",
        f"server: hash concurrency {config['server_hash_concurrency']}, log level "
        f"{config['server_log_level']}; wrk connections: signin "
        f"{config['connections']['signin']}, GET {config['connections']['get']}",
        "",
        f"{'measurement':<34}{'mean':>11}  runs",
    ]
    seen: set[str] = set()
    for ratio in ratios:
        for series in (ratio.baseline, ratio.subject):
            if series.name in seen:
                continue
            seen.add(series.name)
            runs = ", ".join(f"{r:.1f}" for r in series.runs)
            lines.append(f"{series.name:<34}{series.mean:>11.1f}  {series.unit}  [{runs}]")
    lines += ["", f"{'ratio':<34}{'value':>11}  {'goal':>6}  result"]
    for ratio in ratios:
        verdict = "PASS" if ratio.passed else "BELOW"
        lines.append(f"{ratio.name:<34}{ratio.value:>11.3f}  >={ratio.goal:<4}  {verdict}")
    lines += [
        "",
        "Note: wrk (1 thread) shares these cores with the server during the HTTP runs, while",
        "the argon2 baseline has them to itself: the sign-in ratio is, if anything, understated.",
    ]
    return "\n".join(lines)


def report_json(ratios: list[Ratio], config: dict[str, Any]) -> str:
    measurements = {}
    for ratio in ratios:
        for series in (ratio.baseline, ratio.subject):
            measurements[series.name] = {"unit": series.unit, "mean": series.mean,
                                         "runs": series.runs}
    return json.dumps({
        "config": config,
        "measurements": measurements,
        "ratios": [
            {"name": r.name, "value": r.value, "goal": r.goal, "passed": r.passed,
             "subject": r.subject.name, "baseline": r.baseline.name}
            for r in ratios
        ],
    }, indent=2)


# --------------------------------------------------------------------------------------------
# Entry point


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description="Globeguard sign-in and /users/me throughput as ratios to same-run baselines."
    )
    parser.add_argument("--duration", type=int, default=8,
                        help="seconds per measured run (default 8)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of warm-up per endpoint (default 2; 0 skips)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs per side of each ratio, in ABBA order (default 2)")
    parser.add_argument("--db-url", default=None,
                        help="server database; a postgresql URL gets a throwaway database "
                             "(default: SQLite in a temp dir)")
    parser.add_argument("--log-level", default="warning",
                        help="server log level (default warning: no per-request access log)")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--check", action="store_true",
                        help=f"exit {EXIT_BELOW_GOAL} when a ratio is below its goal")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--duration and --rounds must be >= 1, --warmup >= 0")
    return Settings(args.duration, args.warmup, args.rounds, args.db_url, args.log_level,
                    args.json, args.check)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    # SIGTERM (e.g. a CI timeout) must unwind like Ctrl-C so the server and temp dir go away.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    wrk = ensure_wrk()
    try:
        with tempfile.TemporaryDirectory(prefix="gg-bench-") as tmp:
            ratios, config = run_benchmark(opts, wrk, Path(tmp))
    except InvalidMeasurementError as exc:
        fail(f"INVALID MEASUREMENT: {exc}")
    except SetupError as exc:
        fail(f"SET-UP FAILED: {exc}")
    except KeyboardInterrupt:
        say("interrupted; server stopped and temp files removed")
        return 130
    print(report_json(ratios, config) if opts.as_json else report_text(ratios, config))
    if opts.check and not all(r.passed for r in ratios):
        return EXIT_BELOW_GOAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
