"""The range API is off unless its URL is set."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from globeguard.account.breached import BreachedPasswords
from globeguard.observability.metrics import Metrics
from globeguard.wiring import breached_check
from tests.conftest import make_settings

DB = "sqlite+aiosqlite:///unused.db"


def test_off_by_default(tmp_path: Path):
    assert breached_check(make_settings(DB, tmp_path), Metrics()) is None


def test_on_with_a_url_and_its_timeout(tmp_path: Path):
    settings = make_settings(
        DB,
        tmp_path,
        account={
            "breached_range_url": "https://range.example/range/",
            "breached_timeout": timedelta(seconds=2),
        },
    )
    client = breached_check(settings, Metrics())
    assert isinstance(client, BreachedPasswords)
    assert client.url == "https://range.example/range/" and client.timeout_s == 2
