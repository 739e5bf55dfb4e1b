"""The app wired to a fake range API on loopback (see fake_range.py). A test changes what the
fake does through `behaviour`, or the timeout through `range_timeout`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from globeguard.settings import Settings
from tests.account.breached.fake_range import Behaviour, FakeRange
from tests.conftest import make_settings

# Strong enough for zxcvbn and not on the common list, so only the range API can refuse it.
BREACHED = "purple-otter-canoe-41"
TIMES_SEEN = 52_579
# Listed by the fake with a count of 0, as a padding line: not a breach.
PADDED = "summer-garden-lantern-12"


@pytest.fixture
def behaviour() -> Behaviour:
    return Behaviour(breached={BREACHED: TIMES_SEEN}, padded_with={PADDED})


@pytest.fixture
def fake_range(behaviour: Behaviour) -> Iterator[FakeRange]:
    with FakeRange(behaviour) as fake:
        yield fake


@pytest.fixture
def range_url(fake_range: FakeRange) -> str:
    return fake_range.url


@pytest.fixture
def range_timeout() -> timedelta:
    return timedelta(seconds=10)


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, range_url: str, range_timeout: timedelta
) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        account={"breached_range_url": range_url, "breached_timeout": range_timeout},
    )
