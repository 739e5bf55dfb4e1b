"""The event pipeline's tests drive the dispatcher themselves, with a controllable clock: the
embedded dispatcher is off, webhook targets on loopback are allowed (tests only ever send to
loopback or to in-memory receivers), and the stream shows events at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from globeguard.settings import Settings
from tests.conftest import make_settings

NATS_ENV = "GLOBEGUARD_TEST_NATS_URL"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        delivery={
            "embedded": False,
            "allow_private_targets": True,
            "stream_settle": "PT0S",
            "nats_url": os.environ.get(NATS_ENV),
        },
    )
