"""The pure parts of the email flows: how a place and a duration are written, and what a
token's address binding accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from globeguard.account.links import email_binding, page, still_bound
from globeguard.account.notices import duration_words, place_of, utc_iso
from globeguard.adapters.geoip.port import GeoResult
from globeguard.travel.models import LoginEvent


def _login(**columns) -> LoginEvent:
    return LoginEvent(event_uuid="e", subject="s", source="globeguard", **columns)


@pytest.mark.parametrize(
    ("geo", "columns", "written"),
    [
        (
            GeoResult(
                "1.1.1.1",
                True,
                city_name="London",
                subdivision_name="England",
                country_name="United Kingdom",
            ),
            {},
            "London, England, United Kingdom",
        ),
        # A city-state: the same name once.
        (
            GeoResult("1.1.1.1", True, city_name="Singapore", country_name="Singapore"),
            {},
            "Singapore",
        ),
        (GeoResult("1.1.1.1", True, country_name="France"), {}, "France"),
        # No names from the database: what the login stored.
        (None, {"city_name": "Paris", "country_iso": "FR"}, "Paris, FR"),
        (GeoResult("10.0.0.1", False), {"country_iso": "DE"}, "DE"),
        (None, {}, "an unknown place"),
    ],
)
def test_place_in_words(geo, columns, written):
    assert place_of(_login(**columns), geo) == written


@pytest.mark.parametrize(
    ("ttl", "written"),
    [
        (timedelta(minutes=30), "30 minutes"),
        (timedelta(seconds=20), "1 minute"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(days=2), "2 days"),
        (timedelta(days=7), "7 days"),
    ],
)
def test_duration_in_words(ttl, written):
    assert duration_words(ttl) == written


def test_times_are_utc_iso():
    assert utc_iso(datetime(2026, 12, 3, 14, 5, 6, 789, tzinfo=UTC)) == "2026-12-03T14:05:06Z"
    assert utc_iso(datetime(2026, 12, 3, 14, 5, 6)) == "2026-12-03T14:05:06Z"  # SQLite's naive


def test_a_binding_holds_only_for_the_same_address():
    data = email_binding("ann@example.com")
    assert "ann@example.com" not in str(data)  # a digest, not the address
    assert still_bound(data, "ann@example.com")
    assert not still_bound(data, "ann@example.org")
    assert not still_bound(data, None)
    assert not still_bound({}, "ann@example.com")
    assert not still_bound({"email": 5}, "ann@example.com")


def test_page_links_carry_their_query_after_the_fragment():
    assert (
        page("/dashboard/#/x", token="a b", answer="yes") == "/dashboard/#/x?token=a+b&answer=yes"
    )
    assert page("/dashboard/#/x") == "/dashboard/#/x"
