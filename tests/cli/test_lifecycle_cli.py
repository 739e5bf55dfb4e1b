"""`globeguard users import --upsert` changes accounts through the same lifecycle as the API:
run against the database a live server uses, a block ends the user's sessions at once, an
unblock revives none, and a new password hash ends every session."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from typer.testing import CliRunner

from globeguard.cli import app as cli
from tests.helpers import signin, signup
from tests.jobs.test_import_lifecycle import (
    NEW_PASSWORD,
    assert_signed_out,
    bcrypt_of,
    event_types,
)

runner = CliRunner()


@pytest.fixture
def cli_env(settings, tmp_path, monkeypatch):
    """The command line's environment: the same database, data directory and secret as the
    server under test."""
    monkeypatch.setenv("GLOBEGUARD_DB__URL", settings.db.url)
    monkeypatch.setenv("GLOBEGUARD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GLOBEGUARD_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return tmp_path


async def cli_import(directory, records: list[dict]) -> str:
    source = directory / "users.json"
    source.write_bytes(orjson.dumps(records))
    # The command runs its own event loop: give it a thread, as a shell would a process.
    result = await asyncio.to_thread(
        runner.invoke, cli, ["users", "import", str(source), "--upsert"]
    )
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_block_and_a_new_hash_from_the_command_line_end_sessions(
    client, container, cli_env
):
    fay = await signup(client, "fay")
    tablet = await signin(client, "fay")
    output = await cli_import(cli_env, [{"user_id": fay["user_id"], "blocked": True}])
    assert "0 inserted, 1 updated, 0 failed" in output
    await assert_signed_out(client, fay)
    await assert_signed_out(client, tablet)

    record = {"user_id": fay["user_id"], "blocked": False, "password_hash": bcrypt_of(NEW_PASSWORD)}
    output = await cli_import(cli_env, [record])
    assert "0 inserted, 1 updated, 0 failed" in output
    await assert_signed_out(client, fay)  # unblocking revived nothing
    assert (await signin(client, "fay", NEW_PASSWORD))["username"] == "fay"
    types = await event_types(container, fay["user_id"])
    assert types.index("user.blocked") < types.index("user.unblocked")
    assert "user.password_changed" in types
