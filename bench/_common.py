"""Shared machinery of the benchmarks in bench/: wrk, a throwaway database, a `globeguard serve`
subprocess, ABBA-ordered measurement of a subject against a baseline, and the report.

Each benchmark script (bench/auth.py, bench/travel.py) imports this module; run them as
`.venv/bin/python bench/NAME.py`, which puts bench/ on sys.path.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any, NoReturn, TypeVar

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0

EXIT_INVALID = 1
EXIT_NO_WRK = 2
EXIT_BELOW_GOAL = 3
EXIT_INTERRUPTED = 130


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


T = TypeVar("T")


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    # SIGTERM (e.g. a CI timeout) must unwind like Ctrl-C so servers and temp dirs go away.
    raise KeyboardInterrupt


def run_guarded(measure: Callable[[Path], T], prefix: str = "gg-bench-") -> T | None:
    """`measure(temp dir)`, with SIGTERM unwinding like Ctrl-C; an invalid measurement or a
    failed set-up exits with its message. None when interrupted (exit EXIT_INTERRUPTED)."""
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            return measure(Path(tmp))
    except InvalidMeasurementError as exc:
        fail(f"INVALID MEASUREMENT: {exc}")
    except SetupError as exc:
        fail(f"SET-UP FAILED: {exc}")
    except KeyboardInterrupt:
        say("interrupted; processes stopped and temp files removed")
        return None


# --------------------------------------------------------------------------------------------
# wrk


@dataclass(frozen=True, slots=True)
class WrkLatency:
    """wrk's latency figures (`--latency`), in seconds."""

    p50: float
    p75: float
    p90: float
    p99: float
    max: float


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    requests: int
    non_2xx: int
    socket_errors: int
    output: str
    # Only when wrk ran with --latency (run_wrk(latency=True)).
    latency: WrkLatency | None = None

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
        for command in (
            ["apt-get", "install", "-y", "wrk"],
            # A fresh machine may have no package lists yet.
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "wrk"],
        ):
            if subprocess.run(command, stdout=sys.stderr, check=False).returncode == 0 and (
                path := shutil.which("wrk")
            ):
                return path
    fail(
        "wrk is required but not installed. Install it with:  sudo apt-get install -y wrk",
        EXIT_NO_WRK,
    )


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
        latency=parse_wrk_latency(output),
    )


# wrk prints durations with the unit it finds readable: 812.00us, 2.61ms, 1.50s, 1.02m.
_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_WRK_TIME = r"([\d.]+)(us|ms|s|m|h)"


def _wrk_seconds(match: re.Match[str], group: int = 1) -> float:
    return float(match.group(group)) * _WRK_UNITS[match.group(group + 1)]


def parse_wrk_latency(output: str) -> WrkLatency | None:
    """The latency distribution of a `wrk --latency` run (None without --latency). Its
    percentiles count only the requests wrk sent: with a closed loop, a stalled server also
    stalls the sending, so they understate a stall (see bench/latency.py)."""
    stats = re.search(rf"Latency\s+{_WRK_TIME}\s+{_WRK_TIME}\s+{_WRK_TIME}", output)
    points = {
        int(m.group(1)): _wrk_seconds(m, 2)
        for m in re.finditer(rf"^\s+(50|75|90|99)%\s+{_WRK_TIME}", output, re.MULTILINE)
    }
    if stats is None or len(points) < 4:
        return None
    return WrkLatency(
        p50=points[50], p75=points[75], p90=points[90], p99=points[99], max=_wrk_seconds(stats, 5)
    )


def run_wrk(
    wrk: str,
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    latency: bool = False,
) -> WrkResult:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    if latency:
        command.append("--latency")
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InvalidMeasurementError(f"wrk exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


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


def http(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - always an http://127.0.0.1 URL built here
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
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


def wait_accepting(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    """Until a child process accepts connections on `port` of 127.0.0.1; SetupError if it
    exits or does not within READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SetupError(f"{what} did not start") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def server_env(db_url: str, workdir: Path, log_level: str, **extra: str) -> dict[str, str]:
    """The environment of the server (and of any `globeguard` CLI run against its database)."""
    return {
        **os.environ,
        "GLOBEGUARD_DB__URL": db_url,
        "GLOBEGUARD_DATA_DIR": str(workdir / "data"),
        "GLOBEGUARD_SECRET_KEY": secrets.token_urlsafe(32),
        # The access log at "info" writes one line per request: that would measure logging.
        "GLOBEGUARD_LOG_LEVEL": log_level,
        **extra,
    }


def globeguard_cli(args: list[str], env: dict[str, str], workdir: Path) -> str:
    """Run `python -m globeguard ARGS` with the server's environment; its stdout."""
    done = subprocess.run(
        [server_python(), "-m", "globeguard", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SetupError(
            f"globeguard {args[0]} {args[1] if len(args) > 1 else ''} exited "
            f"{done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


BENCH_ADMIN = "benchadmin"


def admin_api_key(base: str, env: dict[str, str], workdir: Path, scopes: list[str]) -> str:
    """Set-up shared by the benches: an admin made with the CLI, signed in, and an API key
    with `scopes`."""
    password = secrets.token_urlsafe(24)
    create = ["admin", "create", "--username", BENCH_ADMIN, "--password", password]
    globeguard_cli(create, env, workdir)
    credentials = {"username": BENCH_ADMIN, "password": password}
    status, body = http("POST", f"{base}/api/v1/auth/signin", credentials)
    if status != 200:
        raise SetupError(f"signin answered {status}: {body}")
    status, body = http(
        "POST",
        f"{base}/api/v1/api-keys",
        {"name": "bench", "scopes": scopes},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    if status != 201:
        raise SetupError(f"creating an API key answered {status}: {body}")
    return str(body["api_key"])


@contextmanager
def server(
    db_url: str, workdir: Path, log_level: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A `globeguard serve` subprocess, ready to answer; always stopped on the way out.
    `env` (from server_env) defaults to a fresh one for db_url."""
    port = free_port()
    if env is None:
        env = server_env(db_url, workdir, log_level)
    log = workdir / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                server_python(),
                "-m",
                "globeguard",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            # cwd=workdir: a developer's ./.env must not change what is measured.
            # New session: Ctrl-C reaches this script, which then stops the server in order.
            cwd=workdir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


# --------------------------------------------------------------------------------------------
# Measurement plan


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (fraction 0.99 = p99); 0.0 when empty.
    Nearest rank returns a measured value, never an interpolation between two."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


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
    baseline: Series,
    subject: Series,
    run_baseline: Runner,
    run_subject: Runner,
    *,
    rounds: int,
    duration: int,
    server_process: subprocess.Popen[bytes],
) -> None:
    for is_baseline in abba(rounds):
        series, run = (baseline, run_baseline) if is_baseline else (subject, run_subject)
        value = run(duration)
        # A crashed server answers nothing; wrk would then report 0 req/s or socket errors,
        # but say plainly why.
        if server_process.poll() is not None:
            raise InvalidMeasurementError(f"server exited with {server_process.returncode}")
        series.runs.append(value)
        say(f"  {series.name:<28} {value:10.1f} {series.unit}")


def check_wrk(url: str, result: WrkResult) -> float:
    """The result's req/s; an invalid run (errors, non-2xx) raises."""
    if result.problems:
        raise InvalidMeasurementError(
            f"{url}: {', '.join(result.problems)} — the measurement is invalid.\n{result.output}"
        )
    return result.requests_per_s


def http_runner(wrk: str, url: str, connections: int, **kw: Any) -> Runner:
    def run(seconds: int) -> float:
        return check_wrk(url, run_wrk(wrk, url, seconds=seconds, connections=connections, **kw))

    return run


# --------------------------------------------------------------------------------------------
# CPU time, read from /proc: thread by thread, in ns (schedstat), for any process on the host


def cpu_ns(pids: list[int]) -> dict[str, int]:
    """CPU time the threads of `pids` have run so far, in ns: "loop" (each process's main
    thread, which runs its event loop) and "threads" (all the others: the SQLite writer,
    executors)."""
    used: dict[str, int] = {}
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                ns = int((task / "schedstat").read_text().split()[0])
                name = "loop" if task.name == str(pid) else "threads"
            except (OSError, ValueError, IndexError):
                continue  # a thread that just ended
            used[name] = used.get(name, 0) + ns
    return used


def cpu_per_item(before: dict[str, int], after: dict[str, int], items: int) -> dict[str, float]:
    """us of CPU per item, by role, and "total"."""
    per = {
        name: (after[name] - before.get(name, 0)) / 1000 / items
        for name in after
        if after[name] - before.get(name, 0) > 0
    }
    per["total"] = sum(per.values())
    return per


def postgres_backends(db_url: str) -> list[int]:
    """The server processes of the bench database's connections (the pools of the server or
    of its workers)."""
    import asyncpg

    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def pids() -> list[int]:
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [int(row["pid"]) for row in rows]
        finally:
            await connection.close()

    return asyncio.run(pids())


class CpuTallies:
    """A process's CPU (its main thread, which runs its event loop, and its other threads)
    and, given a PostgreSQL URL, the bench database's server processes, per item (request,
    event, verify), summed over each side's measured runs (read from /proc: cpu_ns)."""

    def __init__(self, pid: int, db_url: str | None = None) -> None:
        self.pid = pid
        self.db_url = db_url if db_url and backend_of(db_url) == "postgresql" else None
        self.used: dict[str, dict[str, int]] = {}
        self.items: dict[str, int] = {}

    def clear(self) -> None:
        self.used.clear()
        self.items.clear()

    def _now(self, database_pids: list[int]) -> dict[str, int]:
        used = cpu_ns([self.pid])
        if database_pids:
            used["postgres"] = sum(cpu_ns(database_pids).values())
        return used

    @contextmanager
    def counting(self, side: str) -> Iterator[Callable[[int], None]]:
        """Counts the CPU used inside the block for the items the block reports."""
        database_pids = postgres_backends(self.db_url) if self.db_url else []
        before = self._now(database_pids)
        done: list[int] = []
        yield done.append
        after = self._now(database_pids)
        self.add(side, {role: ns - before.get(role, 0) for role, ns in after.items()}, sum(done))

    def add(self, side: str, spent_ns: dict[str, int], items: int) -> None:
        """CPU measured otherwise (by role, in ns) for `items` more items of `side`."""
        used = self.used.setdefault(side, {})
        for role, ns in spent_ns.items():
            used[role] = used.get(role, 0) + ns
        self.items[side] = self.items.get(side, 0) + items

    def per_item(self) -> dict[str, dict[str, float]]:
        """us per item, by side and role ("loop", "threads", "postgres")."""
        return {
            side: {role: ns / 1000 / self.items[side] for role, ns in used.items()}
            for side, used in self.used.items()
            if self.items.get(side)
        }


# --------------------------------------------------------------------------------------------
# Reporting


def table_lines(ratios: list[Ratio], width: int = 34) -> list[str]:
    """Measurements (each series once, baseline first) then ratios against their goals."""
    lines = [f"{'measurement':<{width}}{'mean':>11}  runs"]
    seen: set[str] = set()
    for ratio in ratios:
        for series in (ratio.baseline, ratio.subject):
            if series.name in seen:
                continue
            seen.add(series.name)
            runs = ", ".join(f"{r:.1f}" for r in series.runs)
            lines.append(f"{series.name:<{width}}{series.mean:>11.1f}  {series.unit}  [{runs}]")
    lines += ["", f"{'ratio':<{width}}{'value':>11}  {'goal':>6}  result"]
    for ratio in ratios:
        verdict = "PASS" if ratio.passed else "BELOW"
        lines.append(f"{ratio.name:<{width}}{ratio.value:>11.3f}  >={ratio.goal:<4}  {verdict}")
    return lines


def report_json(ratios: list[Ratio], config: dict[str, Any]) -> str:
    measurements = {}
    for ratio in ratios:
        for series in (ratio.baseline, ratio.subject):
            measurements[series.name] = {
                "unit": series.unit,
                "mean": series.mean,
                "runs": series.runs,
            }
    return json.dumps(
        {
            "config": config,
            "measurements": measurements,
            "ratios": [
                {
                    "name": r.name,
                    "value": r.value,
                    "goal": r.goal,
                    "passed": r.passed,
                    "subject": r.subject.name,
                    "baseline": r.baseline.name,
                }
                for r in ratios
            ],
        },
        indent=2,
    )
