"""The command line against a real SQLite file: db upgrade, admin create, keys rotate."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from globeguard.cli import app as cli
from globeguard.db.migrate import alembic_config

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOBEGUARD_DB__URL", f"sqlite+aiosqlite:///{tmp_path}/gg.db")
    monkeypatch.setenv("GLOBEGUARD_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return tmp_path


def _keys(path) -> dict[str, str]:
    with sqlite3.connect(path / "gg.db") as conn:
        return dict(conn.execute("SELECT kid, status FROM signing_key").fetchall())


def test_db_upgrade_creates_the_schema(env):
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"at revision {head}" in result.output
    with sqlite3.connect(env / "gg.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"user", "api_key", "refresh_token", "signing_key", "event_outbox"} <= tables


def test_admin_create_prints_a_generated_password_that_works(env):
    result = runner.invoke(cli, ["admin", "create", "--username", "boss"])
    assert result.exit_code == 0, result.output
    password = next(
        line.split(": ", 1)[1] for line in result.output.splitlines() if line.startswith("password")
    )
    from globeguard.settings import Settings
    from globeguard.wiring import build

    async def sign_in() -> list[str]:
        container = build(Settings())
        try:
            async with container.db.transaction() as session:
                from globeguard.identity.auth.tokens_service import ClientContext

                _, grants = await container.auth.verify_password(
                    session, "boss", password, ClientContext(None, None)
                )
                return grants.roles
        finally:
            await container.db.dispose()

    assert sorted(asyncio.run(sign_in())) == ["admin", "user"]
    again = runner.invoke(cli, ["admin", "create", "--username", "BOSS"])
    assert again.exit_code == 1
    assert "username_taken" in again.output


def test_admin_create_rejects_a_weak_password(env):
    result = runner.invoke(cli, ["admin", "create", "--password", "password"])
    assert result.exit_code == 1
    assert "password_too_common" in result.output
    weak = runner.invoke(cli, ["admin", "create", "--password", "aaaaaaaaaa"])
    assert weak.exit_code == 1
    assert "weak_password" in weak.output


def test_keys_rotate_promotes_next_and_keeps_the_old_key_published(env):
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    first = runner.invoke(cli, ["keys", "rotate"])
    assert first.exit_code == 0, first.output
    before = _keys(env)
    second = runner.invoke(cli, ["keys", "rotate"])
    assert second.exit_code == 0
    after = _keys(env)
    old_current = next(k for k, s in before.items() if s == "current")
    old_next = next(k for k, s in before.items() if s == "next")
    assert after[old_current] == "retired"
    assert after[old_next] == "current"
    assert sorted(after.values()).count("next") == 1
    assert f"current key: {old_next}" in second.output
