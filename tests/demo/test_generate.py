"""The demo generator: reproducible for a seed, AuthGlobeTrek-shaped, only located public
addresses, hot spots and a few impossible journeys."""

from __future__ import annotations

import ipaddress
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise

from globeguard.demo.generate import FAR_KM, TIERS, City, users
from globeguard.travel.geo_math import haversine_km

UNTIL = datetime(2026, 6, 1, tzinfo=UTC)


def locate(ip: str) -> City | None:
    """A stand-in world: the first octet picks one of 40 cities; a quarter of the space is
    unknown, as much of a real database's is for random addresses."""
    first = int(ip.split(".")[0])
    if first % 4 == 0:
        return None
    n = first % 40
    return City(1000 + n, -60 + 3 * n, -170 + 8.5 * n)


def test_a_seed_gives_the_same_users_and_sign_ins():
    one = [(u.id, u.user_metadata, u.logins) for u in users(200, 7, locate, UNTIL)]
    two = [(u.id, u.user_metadata, u.logins) for u in users(200, 7, locate, UNTIL)]
    other = [(u.id, u.user_metadata, u.logins) for u in users(200, 8, locate, UNTIL)]
    assert one == two
    assert one != other


def test_users_have_the_seed_project_metadata_and_located_public_addresses():
    generated = list(users(500, 3, locate, UNTIL))
    assert Counter(u.user_metadata["subscription_tier"] for u in generated).keys() == set(TIERS)
    for user in generated:
        assert set(user.user_metadata) == {
            "theme", "subscription_tier", "referral_source", "purchasing_behavior", "last_login_ip",
        }  # fmt: skip
        assert user.app_metadata["roles"] == (["admin"] if user.number % 2 == 0 else ["user"])
        for login in user.logins:
            assert ipaddress.ip_address(login.ip).is_global
            assert locate(login.ip) is not None
            assert login.occurred_at <= UNTIL
    homes = Counter(locate(u.logins[0].ip) for u in generated)
    assert homes.most_common(1)[0][1] > len(generated) / 40  # hot spots


def test_a_handful_of_users_make_an_impossible_journey():
    far = []
    for user in users(300, 5, locate, UNTIL, impossible_journeys=6):
        logins = sorted(user.logins, key=lambda x: x.occurred_at)
        for a, b in pairwise(logins):
            here, there = locate(a.ip), locate(b.ip)
            hours = (b.occurred_at - a.occurred_at).total_seconds() / 3600
            assert here and there
            if hours <= 1 and haversine_km(here.lat, here.lon, there.lat, there.lon) >= FAR_KM:
                far.append(user.number)
    assert len(far) == 6


def test_user_ids_are_version_7_and_sort_in_creation_order():
    made = list(users(50, 7, locate, UNTIL))
    assert {u.id.version for u in made} == {7}
    assert [u.id for u in made] == sorted(u.id for u in made)
    assert [str(u.id) for u in made] == sorted(str(u.id) for u in made)  # as subjects too
    assert len({u.id for u in made}) == 50
