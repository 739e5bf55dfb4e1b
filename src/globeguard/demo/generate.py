"""Demo users and their sign-ins, in the shape of AuthGlobeTrek's generator. Pure: every
choice comes from one seeded `random.Random`, and places from the `locate` function given, so
a seed gives the same users, addresses and journeys on every run (times are offsets from the
`until` instant).

Metadata follows AuthGlobeTrek's `make_users.py`: `user_metadata` with theme,
subscription_tier, referral_source, purchasing_behavior and last_login_ip (uniform choices),
`app_metadata` with roles (admin for even numbers, as there) and plan. Its addresses came from
ten random /24 prefixes 40 % of the time (hot spots) and fully random otherwise; so do these,
except that every address is one the GeoIP database places in a city, and private or reserved
ranges are never drawn.

Sign-ins: each user signs in from home a few times over the window, now and then from a
second city days later (a plausible trip), with one attempt in ten failing; a handful of users
(`impossible_journeys`) sign in from a city thousands of km away within the hour after a
sign-in at home, once they are past the learning period.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from globeguard.adapters.geoip.port import classify_ip
from globeguard.travel.geo_math import haversine_km

THEMES = ("light", "dark")
TIERS = ("free", "basic", "premium")
REFERRALS = ("social media", "word-of-mouth", "advertising")
BEHAVIOURS = ("frequent buyer", "one-time buyer", "window shopper")
HOT_PREFIXES = 10
HOT_SHARE = 0.4
FAILURE_SHARE = 0.1
TRIP_SHARE = 0.1
# Tries to draw a random address the database places in a city before settling for a hot spot.
DRAW_TRIES = 40
# Far enough that no accuracy radius excuses an hour's journey.
FAR_KM = 3000.0
LEARNED_AFTER = 4


@dataclass(frozen=True, slots=True)
class City:
    """Where an address is, as far as the generator cares."""

    geoname_id: int
    lat: float
    lon: float


Locate = Callable[[str], City | None]


@dataclass(slots=True)
class DemoUser:
    id: uuid.UUID
    number: int
    username: str
    email: str
    user_metadata: dict[str, Any]
    app_metadata: dict[str, Any]
    logins: list[DemoLogin] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DemoLogin:
    event_uuid: str
    occurred_at: datetime
    ip: str
    success: bool


def public(ip: str) -> bool:
    """A dotted quad the generator drew is a public unicast address (GeoIP's own test)."""
    return classify_ip(ip) is None


class Addresses:
    """Addresses the database places in cities: hot /24 prefixes and random draws."""

    def __init__(self, rng: random.Random, locate: Locate) -> None:
        self.rng = rng
        self.locate = locate
        self.hot: list[tuple[str, City]] = []
        while len(self.hot) < HOT_PREFIXES:
            prefix = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
            city = self._city(f"{prefix}.1")
            if city is not None:
                self.hot.append((prefix, city))

    def _city(self, ip: str) -> City | None:
        return self.locate(ip) if public(ip) else None

    def in_prefix(self, prefix: str) -> str:
        return f"{prefix}.{self.rng.randint(1, 254)}"

    def home(self) -> tuple[str, City]:
        if self.rng.random() < HOT_SHARE:
            prefix, city = self.rng.choice(self.hot)
            return self.in_prefix(prefix), city
        return self.anywhere()

    def anywhere(self) -> tuple[str, City]:
        for _ in range(DRAW_TRIES):
            ip = ".".join(
                str(self.rng.randint(a, b)) for a, b in ((1, 223), (0, 255), (0, 255), (1, 254))
            )
            city = self._city(ip)
            if city is not None:
                return ip, city
        prefix, city = self.rng.choice(self.hot)
        return self.in_prefix(prefix), city

    def far_from(self, home: City) -> tuple[str, City]:
        for _ in range(DRAW_TRIES):
            ip, city = self.anywhere()
            if _distance(home, city) >= FAR_KM:
                return ip, city
        prefix, city = max(self.hot, key=lambda hot: _distance(home, hot[1]))
        return self.in_prefix(prefix), city


def _distance(home: City, other: City) -> float:
    return haversine_km(home.lat, home.lon, other.lat, other.lon)


def users(
    count: int,
    seed: int,
    locate: Locate,
    until: datetime,
    days: int = 30,
    impossible_journeys: int = 8,
) -> Iterator[DemoUser]:
    """`count` users with their sign-ins, numbered from 1, in order."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    addresses = Addresses(rng, locate)
    start = until - timedelta(days=days)
    # Spread the impossible journeys over the population, deterministically.
    travellers = set(rng.sample(range(1, count + 1), min(impossible_journeys, count)))
    for number in range(1, count + 1):
        user = _user(rng, seed, number, start)
        home_ip, home = addresses.home()
        user.logins = _logins(
            rng, user, addresses, home_ip, home, start, until, number in travellers
        )
        successes = [login for login in user.logins if login.success]
        user.user_metadata["last_login_ip"] = successes[-1].ip if successes else home_ip
        yield user


def _user(rng: random.Random, seed: int, number: int, start: datetime) -> DemoUser:
    name = f"demo{seed}-{number}"
    return DemoUser(
        id=time_ordered_id(start + timedelta(milliseconds=number), rng),
        number=number,
        username=name,
        email=f"{name}@demo.example",
        user_metadata={
            "theme": rng.choice(THEMES),
            "subscription_tier": rng.choice(TIERS),
            "referral_source": rng.choice(REFERRALS),
            "purchasing_behavior": rng.choice(BEHAVIOURS),
        },
        app_metadata={"roles": ["admin"] if number % 2 == 0 else ["user"], "plan": "premium"},
    )


def time_ordered_id(at: datetime, rng: random.Random) -> uuid.UUID:
    """A version 7 UUID (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made
    in order sort in order, so a bulk load appends to the indexes keyed by user id or subject
    instead of writing pages all over them; one user's number of milliseconds after the
    window's start keeps a seed's ids the same on every run."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64)
    value |= (0b10 << 62) | rng.getrandbits(62)
    return uuid.UUID(int=value)


def _logins(
    rng: random.Random,
    user: DemoUser,
    addresses: Addresses,
    home_ip: str,
    home: City,
    start: datetime,
    until: datetime,
    traveller: bool,
) -> list[DemoLogin]:
    span = (until - start).total_seconds()
    n = LEARNED_AFTER + 1 if traveller else 1 + min(int(rng.expovariate(1 / 3)), 20)
    times = sorted(start + timedelta(seconds=rng.uniform(0, span * 0.9)) for _ in range(n))
    prefix = home_ip.rsplit(".", 1)[0]
    logins = []
    for i, at in enumerate(times):
        ip = addresses.in_prefix(prefix) if rng.random() < 0.7 else home_ip
        ok = traveller or rng.random() >= FAILURE_SHARE
        logins.append(DemoLogin(_event_uuid(user, i), at, ip, ok))
    if traveller:
        far_ip, _ = addresses.far_from(home)
        at = times[-1] + timedelta(minutes=rng.randint(20, 60))
        logins.append(DemoLogin(_event_uuid(user, n), at, far_ip, True))
    elif rng.random() < TRIP_SHARE:
        trip_ip, _ = addresses.anywhere()
        at = times[-1] + timedelta(days=rng.uniform(2, 3))
        if at < until:
            logins.append(DemoLogin(_event_uuid(user, n), at, trip_ip, True))
    return logins


def _event_uuid(user: DemoUser, index: int) -> str:
    return f"{user.username}-{index}"
