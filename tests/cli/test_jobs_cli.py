"""`globeguard users export|import` against a real SQLite file."""

from __future__ import annotations

import gzip

import orjson
import pytest
from typer.testing import CliRunner

from globeguard.cli import app as cli

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOBEGUARD_DB__URL", f"sqlite+aiosqlite:///{tmp_path}/gg.db")
    monkeypatch.setenv("GLOBEGUARD_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_import_reports_bad_records_and_export_writes_the_rest(env):
    source = env / "users.json"
    records = [{"email": f"u{i}@example.com", "user_metadata": {"n": i}} for i in range(5)]
    records.insert(2, {"email": "broken"})
    source.write_bytes(orjson.dumps(records))
    result = runner.invoke(cli, ["users", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "5 inserted, 0 updated, 1 failed" in result.output
    assert "index 2: email: not an email address" in result.output
    assert source.exists()  # a server-side path is read in place, not consumed

    target = env / "out.ndjson.gz"
    result = runner.invoke(cli, ["users", "export", str(target), "--fields", "email,user_metadata"])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in gzip.decompress(target.read_bytes()).splitlines()]
    assert sorted(line["user_metadata"]["n"] for line in lines) == [0, 1, 2, 3, 4]

    again = runner.invoke(cli, ["users", "import", str(target)])
    assert again.exit_code == 0
    assert "0 inserted, 0 updated, 5 failed" in again.output  # they exist; no --upsert
    upsert = runner.invoke(cli, ["users", "import", str(target), "--upsert"])
    assert "0 inserted, 5 updated, 0 failed" in upsert.output


def test_a_bad_query_is_an_error_not_a_crash(env):
    result = runner.invoke(cli, ["users", "export", str(env / "x.gz"), "-q", "a:("])
    assert result.exit_code == 1
    assert "invalid_query" in result.output
