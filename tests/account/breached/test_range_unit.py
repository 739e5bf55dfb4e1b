"""The range protocol's pure parts and the client over an in-memory transport."""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio
import httpx
import pytest

from globeguard.account.breached import (
    MAX_BODY_BYTES,
    BreachedPasswords,
    RangeError,
    range_query,
    times_seen_in,
)
from globeguard.kit.errors import Unprocessable
from globeguard.observability.metrics import Metrics

URL = "https://range.example/range/"
SECRET = "P@ssw0rd-for-tests"


def test_the_query_is_the_uppercase_sha1_split_after_five_digits():
    # The protocol's own documented example: SHA-1("password").
    query = range_query("password")
    assert query.prefix == "5BAA6"
    assert query.suffix == "1E4C9B93F3F0682250B6CF8331B7EE68FD8"
    unicode = range_query("pässwörd")  # hashed as UTF-8
    assert len(unicode.prefix) == 5 and len(unicode.suffix) == 35
    assert unicode != range_query("passwort")


SUFFIX = "1E4C9B93F3F0682250B6CF8331B7EE68FD8"
OTHER = "0018A45C4D1DEF81644B54AB7F969B88D65"


@pytest.mark.parametrize(
    ("body", "seen"),
    [
        pytest.param(f"{OTHER}:1\r\n{SUFFIX}:3861493\r\n", 3_861_493, id="listed"),
        pytest.param(f"{OTHER}:1\r\n", 0, id="absent"),
        pytest.param(f"{OTHER}:1\r\n{SUFFIX}:0\r\n", 0, id="padding-line-is-no-breach"),
        pytest.param(f"{SUFFIX.lower()}:7", 7, id="lowercase-hex"),
        pytest.param(f"\n\n{SUFFIX}:2\n\n", 2, id="blank-lines-and-lf"),
        pytest.param("", 0, id="empty-range"),
    ],
)
def test_counts_are_read_from_the_range(body: str, seen: int):
    assert times_seen_in(body, SUFFIX) == seen


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<html><body>Sign in</body></html>", id="html"),
        pytest.param(f"{SUFFIX}\r\n", id="no-count"),
        pytest.param(f"{SUFFIX}:-1", id="negative"),
        pytest.param(f"{SUFFIX}:1e9", id="not-decimal"),
        pytest.param(f"{SUFFIX}:{'9' * 5000}", id="huge-count"),
        pytest.param(f"{SUFFIX[:-1]}:4", id="short-suffix"),
        pytest.param(f"Z{SUFFIX[1:]}:4", id="not-hex"),
        pytest.param(f"{OTHER}:1\r\ngarbage", id="one-bad-line-among-good"),
    ],
)
def test_an_answer_that_is_not_a_range_is_refused(body: str):
    with pytest.raises(RangeError):
        times_seen_in(body, SUFFIX)


def _client(handler, metrics: Metrics | None = None, timeout_s: float = 5) -> BreachedPasswords:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return BreachedPasswords(URL, timedelta(seconds=timeout_s), metrics=metrics, http=http)


def _count(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "globeguard_breached_password_checks_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_a_listed_password_is_refused_with_how_often_it_was_seen():
    query = range_query(SECRET)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, text=f"{OTHER}:1\r\n{query.suffix}:12345\r\n")

    metrics = Metrics()
    client = _client(handler, metrics)
    with pytest.raises(Unprocessable) as refused:
        await client.check(SECRET)
    assert refused.value.code == "password_breached"
    assert refused.value.extra == {"times_seen": 12345}
    assert "12,345 times" in refused.value.detail
    (request,) = sent
    assert str(request.url) == URL + query.prefix
    assert request.headers["Add-Padding"] == "true"
    assert _count(metrics, "breached") == 1 and _count(metrics, "clean") == 0


async def test_an_unlisted_password_passes_and_is_counted_clean():
    metrics = Metrics()
    client = _client(lambda request: httpx.Response(200, text=f"{OTHER}:9\r\n"), metrics)
    await client.check(SECRET)
    assert await client.times_seen(SECRET) == 0
    assert _count(metrics, "clean") == 2 and _count(metrics, "unavailable") == 0


def _refused_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(_refused_connection, id="down"),
        pytest.param(lambda request: httpx.Response(503, text="busy"), id="http-503"),
        pytest.param(lambda request: httpx.Response(404, text="no"), id="http-404"),
        pytest.param(lambda request: httpx.Response(200, text="<html>hi</html>"), id="garbage"),
        pytest.param(
            lambda request: httpx.Response(200, content=b"\xff\xfe" + b"A" * 40), id="not-utf8"
        ),
        pytest.param(
            lambda request: httpx.Response(200, text=f"{OTHER}:1\r\n" * 30_000),
            id="oversized",
        ),
    ],
)
async def test_an_unusable_api_lets_the_password_through_and_says_so(handler, caplog):
    metrics = Metrics()
    client = _client(handler, metrics)
    with caplog.at_level(logging.WARNING, logger="globeguard.account.breached"):
        await client.check(SECRET)  # fail open: no exception
        assert await client.times_seen(SECRET) is None
    assert _count(metrics, "unavailable") == 2
    assert _count(metrics, "clean") == 0 and _count(metrics, "breached") == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "globeguard.account.breached"]
    assert len(lines) == 2
    query = range_query(SECRET)
    for line in lines:
        assert "allowed unchecked" in line
        for leak in (SECRET, query.prefix, query.suffix, URL):
            assert leak not in line


def test_the_oversized_case_is_really_over_the_limit():
    assert len(f"{OTHER}:1\r\n" * 30_000) > MAX_BODY_BYTES


async def test_a_server_that_never_answers_is_given_up_on():
    async def handler(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    metrics = Metrics()
    client = _client(handler, metrics, timeout_s=0.05)
    assert await client.times_seen(SECRET) is None
    assert _count(metrics, "unavailable") == 1


async def test_without_metrics_the_client_still_works():
    client = _client(lambda request: httpx.Response(200, text=""))
    assert await client.times_seen(SECRET) == 0
