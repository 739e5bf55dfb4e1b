"""The master secret: placeholders and short values are refused at start, PostgreSQL needs one
configured, a generated `secret.key` is the same for every process that races to create it,
and the secret file and the SQLite database are private to their owner."""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from typer.testing import CliRunner

from globeguard.app import create_app
from globeguard.cli import app as cli
from globeguard.db.migrate import upgrade
from globeguard.db.session import Database
from globeguard.settings import DatabaseSettings, Settings, secret_key_problem
from globeguard.wiring import master_secret

GOOD = "k3Qv9rXo2L7wYbN4pT8zHf6uJc1sDe5aGm0iRq"  # 38 bytes, no placeholder words
PG_URL = "postgresql+asyncpg://globeguard@db.internal/globeguard"

PLACEHOLDERS = [
    # The values shipped in deploy/ and the README, in every case and spelling.
    "change-me-to-a-long-random-string",
    "CHANGE-ME-to-a-long-random-string",
    "REPLACE-ME-with-the-output-of-openssl-rand-base64-48",
    "changeme-changeme-changeme-changeme",
    "please_change_me_before_deploying_this_app",
    "replace_me_replace_me_replace_me_replace_me",
    "this-is-a-placeholder-value-not-a-secret-at-all",
    "your-secret-key-goes-here-and-it-is-long-enough",
]


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_a_placeholder_is_refused_however_long(value):
    assert "placeholder" in (secret_key_problem(value) or "")


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("", True),
        ("same-secret-for-both", True),  # 20 bytes
        ("x" * 31 + "y" * 0, True),
        ("a1" * 15 + "b", True),  # 31 bytes
        ("a1" * 16, False),  # 32 bytes
        ("é" * 16, False),  # 16 characters but 32 bytes of UTF-8: bytes are what count
        ("é" * 15 + "a", True),  # 31 bytes
        (GOOD, False),
        ("test-secret-key-not-for-production", False),  # the test suite's own, 34 bytes
    ],
)
def test_a_secret_needs_32_bytes(value, refused):
    problem = secret_key_problem(value)
    assert (problem is not None) is refused
    if refused:
        assert "32 bytes" in problem


def _settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_settings_refuse_the_deploy_placeholder_without_echoing_it():
    with pytest.raises(ValidationError) as caught:
        _settings(secret_key="change-me-to-a-long-random-string")
    assert "placeholder" in str(caught.value)
    assert "change-me-to-a-long-random-string" not in str(caught.value)


def test_settings_refuse_a_short_secret():
    with pytest.raises(ValidationError, match="32 bytes"):
        _settings(secret_key="too-short-secret")


def test_postgresql_requires_a_configured_secret():
    with pytest.raises(ValidationError, match="GLOBEGUARD_SECRET_KEY is required"):
        _settings(db={"url": PG_URL})
    assert _settings(db={"url": PG_URL}, secret_key=GOOD).secret_key is not None


def test_sqlite_without_a_secret_is_allowed():
    assert _settings(db={"url": "sqlite+aiosqlite:///x.db"}).secret_key is None


def test_the_app_factory_refuses_a_placeholder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLOBEGUARD_SECRET_KEY", "CHANGE-ME-to-a-long-random-string")
    with pytest.raises(ValidationError, match="placeholder"):
        create_app()


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOBEGUARD_DB__URL", f"sqlite+aiosqlite:///{tmp_path}/gg.db")
    monkeypatch.setenv("GLOBEGUARD_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_exit_with_a_clear_message(cli_env, command):
    secret = "change-me-to-a-long-random-string"
    cli_env.setenv("GLOBEGUARD_SECRET_KEY", secret)
    result = CliRunner().invoke(cli, [command])
    assert result.exit_code == 2
    assert "GLOBEGUARD_SECRET_KEY" in result.output and "placeholder" in result.output
    assert secret not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_on_postgresql_need_a_secret(cli_env, command):
    cli_env.setenv("GLOBEGUARD_DB__URL", PG_URL)
    cli_env.delenv("GLOBEGUARD_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, [command])
    assert result.exit_code == 2
    assert "GLOBEGUARD_SECRET_KEY is required" in result.output


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """A umask that lets group and others read new files, as on most servers."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _start_at_once(settings: Settings, processes: int) -> tuple[list[bytes], list[BaseException]]:
    start = threading.Barrier(processes)
    keys: list[bytes] = []
    errors: list[BaseException] = []

    def boot() -> None:
        start.wait()
        try:
            keys.append(master_secret(settings))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=boot) for _ in range(processes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys, errors


def test_processes_racing_to_create_the_key_file_agree(tmp_path, open_umask):
    """Eight starts at once, 25 times: each must get the same key, none an error. (Before
    the fix about a third of the rounds failed: an empty key read, or FileExistsError.)"""
    for round_ in range(25):
        keys, errors = _start_at_once(_settings(data_dir=tmp_path / str(round_)), 8)
        assert errors == []
        assert len(set(keys)) == 1 and len(keys[0]) >= 32
        key_file = tmp_path / str(round_) / "secret.key"
        assert _mode(key_file) == 0o600
        assert [p.name for p in key_file.parent.iterdir()] == ["secret.key"]  # no temp left


def test_a_generated_key_survives_restarts(tmp_path):
    settings = _settings(data_dir=tmp_path)
    assert master_secret(settings) == master_secret(settings)


async def test_the_sqlite_database_and_its_journals_are_private(tmp_path, open_umask):
    db_file = tmp_path / "private" / "gg.db"
    database = Database(DatabaseSettings(url=f"sqlite+aiosqlite:///{db_file}"))
    try:
        await upgrade(database.engine)
        async with database.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM user"))).scalar() == 0
        files = {p.name: _mode(p) for p in db_file.parent.iterdir()}
    finally:
        await database.dispose()
    assert {"gg.db", "gg.db-wal", "gg.db-shm"} <= set(files)
    assert set(files.values()) == {0o600}, files


ROOT = Path(__file__).parents[1]
SAMPLE_VALUE = re.compile(r"GLOBEGUARD_SECRET_KEY\s*[:=]\s*[\"']?([^\s\"'`|]+)")


def _sample_secrets() -> list[tuple[str, str]]:
    files = [p for p in (ROOT / "deploy").rglob("*") if p.is_file()] + [ROOT / "README.md"]
    return [
        (path.name, value)
        for path in files
        for value in SAMPLE_VALUE.findall(path.read_text())
        if not value.startswith("$")  # taken from the environment, not a sample
    ]


def test_every_sample_secret_in_deploy_and_the_readme_is_refused():
    samples = _sample_secrets()
    assert any(name == "secret.yaml" for name, _ in samples)
    assert [(name, v) for name, v in samples if secret_key_problem(v) is None] == []


def test_compose_will_not_start_without_a_secret():
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    assert "GLOBEGUARD_SECRET_KEY: ${GLOBEGUARD_SECRET_KEY:?" in compose
