"""`globeguard subscriptions …` and `globeguard worker` against a real SQLite file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from globeguard.cli import app as cli

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOBEGUARD_DB__URL", f"sqlite+aiosqlite:///{tmp_path}/gg.db")
    monkeypatch.setenv("GLOBEGUARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GLOBEGUARD_DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _invoke(*args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_create_list_update_rotate_redrive_delete(env):
    out = _invoke("subscriptions", "create", "crm", "http://127.0.0.1:9/hook", "-e", "user.*")
    sub_id = out.split()[0]
    assert "signing secret: whsec_" in out
    assert "crm" in _invoke("subscriptions", "list")
    assert "disabled (paused)" in _invoke("subscriptions", "update", sub_id, "--disable")
    assert "new v1a secret: whsk_" in _invoke("subscriptions", "rotate", sub_id, "--scheme", "v1a")
    assert "redriven: 0" in _invoke("subscriptions", "redrive", "-s", sub_id)
    _invoke("subscriptions", "delete", sub_id)
    with sqlite3.connect(env / "gg.db") as conn:
        assert conn.execute("SELECT count(*) FROM subscription").fetchone()[0] == 0


def test_bad_input_is_an_error_message_not_a_traceback(env):
    result = runner.invoke(cli, ["subscriptions", "create", "x", "gopher://h/", "-e", "user.*"])
    assert result.exit_code == 1
    assert "error: URL scheme must be http or https" in result.output
    result = runner.invoke(cli, ["subscriptions", "create", "x", "http://h/", "-e", "a..b"])
    assert result.exit_code == 1 and "error:" in result.output


def test_worker_starts_and_stops_on_sigterm(env):
    process = subprocess.Popen(
        [sys.executable, "-m", "globeguard", "worker"],
        env={**os.environ, "GLOBEGUARD_DELIVERY__POLL_INTERVAL": "PT0.1S"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Started once it has migrated the database.
        for _ in range(300):
            with sqlite3.connect(env / "gg.db") as conn:
                if conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name='delivery'"
                ).fetchone()[0]:
                    break
            time.sleep(0.1)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "delivery worker" in output
    assert "started on uvloop's event loop" in output  # as `serve` runs: less CPU per send
