"""When the range API is down, failing, answering garbage or hanging, sign-up still works:
the password is allowed (fail open), one warning is logged and the outage is counted. The
offline common-password list still holds."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import httpx
import pytest

from globeguard.wiring import Container
from tests.account.breached.conftest import BREACHED, TIMES_SEEN
from tests.account.breached.fake_range import Behaviour, FakeRange, sha1_hex
from tests.helpers import signin, signup

OUTAGES = ["down", "error", "garbage", "hang"]


@pytest.fixture(params=OUTAGES)
def outage(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def behaviour(outage: str) -> Behaviour:
    # Were it up, the fake would refuse BREACHED.
    mode = "serve" if outage == "down" else outage
    return Behaviour(breached={BREACHED: TIMES_SEEN}, mode=mode)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def range_url(fake_range: FakeRange, outage: str) -> str:
    return f"http://127.0.0.1:{_closed_port()}/range/" if outage == "down" else fake_range.url


@pytest.fixture
def range_timeout() -> timedelta:
    return timedelta(milliseconds=500)  # the hanging fake never answers


async def test_signup_succeeds_when_the_api_cannot_answer(
    client: httpx.AsyncClient, container: Container, fake_range: FakeRange, outage: str, caplog
):
    with caplog.at_level(logging.WARNING, logger="globeguard.account.breached"):
        made = await signup(client, "uma", password=BREACHED)
    assert made["username"] == "uma"
    assert (await signin(client, "uma", BREACHED))["username"] == "uma"
    lines = [r.getMessage() for r in caplog.records if r.name == "globeguard.account.breached"]
    assert len(lines) == 1, lines
    assert "allowed unchecked" in lines[0]
    digest = sha1_hex(BREACHED)
    for leak in (BREACHED, digest[:5], digest[5:]):
        assert leak not in lines[0]
    unavailable = container.metrics.registry.get_sample_value(
        "globeguard_breached_password_checks_total", {"outcome": "unavailable"}
    )
    assert unavailable == 1
    assert len(fake_range.requests) == (0 if outage == "down" else 1)


async def test_common_passwords_are_still_refused_during_an_outage(
    client: httpx.AsyncClient, fake_range: FakeRange
):
    refused = await client.post(
        "/api/v1/auth/signup", json={"username": "vic", "password": "letmein123"}
    )
    assert refused.status_code == 422 and refused.json()["code"] == "password_too_common"
    assert fake_range.requests == []
