"""A flagged journey keeps the names of both its places, as the verdict's reasons spell them:
they name an arc whose logins are no longer stored."""

from __future__ import annotations

from datetime import UTC, datetime

from globeguard.analytics.rollups import RollupObserver
from globeguard.travel.detect import Grade, Reasons, measure
from globeguard.travel.timeline import Place

PARIS = Place(48.8566, 2.3522, radius_km=5, country="FR", city="Paris")
TOKYO = Place(35.6895, 139.6917, radius_km=5, country="JP", city="Tokyo")


def flagged_login(reasons: dict) -> dict:
    return {
        "event_uuid": "tokyo-1",
        "subject": "alice@idp",
        "user_id": None,
        "occurred_at": datetime(2026, 6, 1, 13, tzinfo=UTC),
        "success": True,
        "located": True,
        "latitude": TOKYO.lat,
        "longitude": TOKYO.lon,
        "country_iso": "JP",
        "country_geoname_id": 1861060,
        "subdivision_iso": "13",
        "subdivision_geoname_id": 1850144,
        "city_name": "Tokyo",
        "city_geoname_id": 1850147,
        "verdict": "impossible",
        "verdict_reasons": {"earlier": "paris-1", "later": "tokyo-1", **reasons},
    }


def test_a_flagged_journey_stores_both_places_names():
    measured = measure(PARIS, TOKYO, 3600.0)
    reasons = Reasons(3600.0, 500.0, PARIS, TOKYO, measured, Grade.IMPOSSIBLE, None).as_dict()
    (journey,) = RollupObserver().summarise([flagged_login(reasons)], {}).flagged
    assert (journey["from_city"], journey["from_country"]) == ("Paris", "FR")
    assert (journey["to_city"], journey["to_country"]) == ("Tokyo", "JP")
    assert journey["speed_mph"] == measured.speed_mph > 5000
