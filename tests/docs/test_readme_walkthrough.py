"""The README's walk-through, run as a newcomer runs it: every ```bash block marked
`<!-- walkthrough -->`, in document order, in one `bash -euo pipefail` session, against a
fresh server.

The server is what `make run` starts (`.venv/bin/globeguard serve --host 127.0.0.1 --port
PORT`, see the Makefile), without the venv and dashboard build around it, in an empty directory
holding only `.venv/bin/globeguard` (this interpreter's command line) and the `./var/` data
that serve creates, with no `GLOBEGUARD_` variable but the one the README says to start it
with. Two lines are changed before running: `API=` names that server's port and `HOOK_PORT=`
a free one; everything else runs as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import CLI, ROOT, free_port, missing

README = ROOT / "README.md"
MARKED_BLOCK = re.compile(r"^<!-- walkthrough -->\n```bash\n(.*?)^```$", re.M | re.S)
MAKE_RUN_SERVE = "$(BIN)/globeguard serve --host $(HOST) --port $(PORT)"
SERVER_START = "GLOBEGUARD_DELIVERY__ALLOW_PRIVATE_TARGETS=true make run"
API_LINE = re.compile(r"^API=http://127\.0\.0\.1:8000\b", re.M)
HOOK_LINE = re.compile(r"^HOOK_PORT=9000$", re.M)
SEPARATOR = "@@ walkthrough block {}"


def walkthrough_blocks(text: str) -> list[str]:
    return MARKED_BLOCK.findall(text)


def clean_environment() -> dict[str, str]:
    """The caller's environment without any Globeguard setting (a newcomer has none)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GLOBEGUARD_")}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty checkout stand-in: `.venv/bin/globeguard` runs this interpreter's CLI."""
    command = tmp_path / ".venv" / "bin" / "globeguard"
    command.parent.mkdir(parents=True)
    command.write_text(f'#!/bin/sh\nexec {shlex.join(CLI)} "$@"\n')
    command.chmod(0o755)
    return tmp_path


@pytest.fixture
def make_run_server(workdir: Path) -> Iterator[str]:
    """`make run`'s server command, started as the README says, on a free port."""
    port = free_port()
    environment = {**clean_environment(), "GLOBEGUARD_DELIVERY__ALLOW_PRIVATE_TARGETS": "true"}
    command = [".venv/bin/globeguard", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            if not _healthy(base, process):
                pytest.fail(f"the server did not come up:\n{log_path.read_text()}")
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)


def _healthy(base: str, process: subprocess.Popen[bytes]) -> bool:
    """Whether /healthz answers before the server exits (or a generous start-up allowance,
    which only bounds a hung start, passes)."""
    give_up = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < give_up:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False


def session_script(blocks: list[str], api: str, hook_port: int) -> str:
    """The blocks as one script: a separator line before each, the two addresses swapped in,
    and any background job left (the webhook receiver) ended with the session."""
    parts = ["trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for index, block in enumerate(blocks):
        parts.append(f"printf '\\n%s\\n' '{SEPARATOR.format(index)}'")
        parts.append(block)
    script = "\n".join(parts)
    assert len(API_LINE.findall(script)) == 1, "the walk-through sets API once, to port 8000"
    assert len(HOOK_LINE.findall(script)) == 1, "the webhook example sets HOOK_PORT=9000 once"
    script = API_LINE.sub(f"API={api}", script)
    return HOOK_LINE.sub(f"HOOK_PORT={hook_port}", script)


def run_session(script: str, workdir: Path) -> tuple[int, str, str]:
    """One `bash -euo pipefail` session in its own process group, so that a session that
    hangs (a webhook never delivered) is ended with everything it started."""
    session = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=workdir,
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = session.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(session.pid, signal.SIGKILL)
        stdout, stderr = session.communicate()
        pytest.fail(f"the walk-through did not finish; it printed:\n{stdout}\n{stderr}")
    return session.returncode, stdout, stderr


def split_output(stdout: str, count: int) -> list[str]:
    pieces = re.split(r"^@@ walkthrough block \d+$", stdout, flags=re.M)
    assert len(pieces) == count + 1, stdout
    return pieces[1:]


def json_values(text: str) -> list[Any]:
    """Every JSON value printed one after another (curl prints bodies without newlines)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(text, at)) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def test_the_readme_marks_the_walkthrough_and_how_to_start_its_server() -> None:
    text = README.read_text()
    # The server the walk-through test starts is this recipe's command.
    assert MAKE_RUN_SERVE in (ROOT / "Makefile").read_text()
    blocks = walkthrough_blocks(text)
    assert len(blocks) >= 5
    assert SERVER_START in text
    walk = text.index("## A walk through the API with curl")
    assert text.index(SERVER_START) > walk
    assert text.index("<!-- walkthrough -->") > walk
    assert all("<ID>" not in b.upper() and "…" not in b for b in blocks), "no placeholders"


def test_the_walkthrough_runs_as_written_against_a_fresh_server(
    workdir: Path, make_run_server: str
) -> None:
    if shutil.which("curl") is None or shutil.which("python3") is None:
        missing("the walk-through needs curl and python3 on PATH")
    blocks = walkthrough_blocks(README.read_text())
    script = session_script(blocks, make_run_server, free_port())
    returncode, stdout, stderr = run_session(script, workdir)
    assert returncode == 0, f"{stdout}\n--- stderr ---\n{stderr}"
    users, admin, search, superman, webhook = split_output(stdout, len(blocks))

    # Sign-up, /users/me by token and by API key, refresh, logout-all, then the 401.
    signup, me, me_by_key, refreshed, logged_out, status = json_values(users)
    assert signup["user"]["username"] == "paul"
    assert signup["user"]["user_metadata"] == {"subscription_tier": "premium"}
    assert me["username"] == me_by_key["username"] == "paul"
    assert refreshed["refresh_token"].startswith("ggr_")
    assert logged_out["sessions_revoked"] == 2  # the sign-up's and the sign-in's
    assert status == 401

    assert re.search(r"created admin 'admin' \(id [0-9a-f-]{36}\)", admin)

    found, audit = json_values(search)
    assert [u["username"] for u in found["items"]] == ["paul"]
    paul = found["items"][0]["id"]
    types = [e["type"] for e in audit["items"]]
    assert "user.created" in types
    assert {e["user_id"] for e in audit["items"]} == {paul}

    before, after = json_values(superman)
    assert before["travelToCurrentGeoSuspicious"] is False
    assert after["travelToCurrentGeoSuspicious"] is True
    assert after["precedingIpAccess"]["ip"] == "206.81.252.200"

    subscription, delivered = json_values(webhook)
    assert subscription["signing_secret"].startswith("whsec_")
    assert delivered["type"] == "user.updated"
    assert delivered["subject"] == f"user/{paul}"
    assert delivered["data"]["changed"] == ["family_name"]
