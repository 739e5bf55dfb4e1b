"""What every browser test shares: Debian's `chromium` (never a downloaded browser), a real
`globeguard serve` on a temporary SQLite database with an admin, and the page's own report of
what its Content-Security-Policy blocked.

Without chromium or a built dashboard the tests skip, except with CI=true, where they fail."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLI = [sys.executable, "-c", "from globeguard.cli import main; main()"]
# Recorded by the page itself; Playwright's init scripts are exempt from the page's policy.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`);
});
"""


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {what}")
    pytest.skip(what)


def require(*built: Path) -> None:
    """Skip (fail in CI) unless chromium and these built files are there."""
    if not Path(CHROMIUM).exists():
        missing(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    for file in built:
        if not file.is_file():
            missing(f"{file.name} is not built (make ui)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(
    data: Path,
    admin_password: str,
    env: Mapping[str, str] | None = None,
    setup: Sequence[Sequence[str]] = (),
) -> Iterator[str]:
    """`globeguard serve` on loopback over a fresh SQLite database in `data`, with an admin
    (`admin` / `admin_password`) and after the CLI commands in `setup` (e.g. a demo seed);
    yields its base URL once `/healthz` answers."""
    environment = {
        **os.environ,
        "GLOBEGUARD_DATA_DIR": str(data),
        "GLOBEGUARD_DB__URL": f"sqlite+aiosqlite:///{data}/gg.db",
        "GLOBEGUARD_SECRET_KEY": "e2e-secret-key-not-for-production",
        **(env or {}),
    }
    run = {"env": environment, "check": True, "capture_output": True, "timeout": 300, "cwd": data}
    admin = ["admin", "create", "--username", "admin", "--password", admin_password]
    subprocess.run([*CLI, *admin], **run)  # type: ignore[call-overload]
    for command in setup:
        subprocess.run([*CLI, *command], **run)  # type: ignore[call-overload]
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        cwd=data,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_healthy(base: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)


@contextmanager
def launched_browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@contextmanager
def watched_page(browser, base: str, width: int, height: int) -> Iterator[object]:
    """A tab on `base` that fails the test on leaving it if the page's CSP had to block
    anything or a request went anywhere but the server (the machine is offline in use)."""
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base)
    page = context.new_page()
    page.add_init_script(WATCH_VIOLATIONS)
    outside: list[str] = []

    def note(request) -> None:
        if not request.url.startswith((base, "data:", "blob:")):
            outside.append(request.url)

    page.on("request", note)
    yield page
    assert page.evaluate("window.__violations") == []  # nothing the CSP had to block
    assert outside == []  # nothing fetched from anywhere but the server
    context.close()
