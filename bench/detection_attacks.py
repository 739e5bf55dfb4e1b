"""The attacks of bench/detection.py, injected into honest users' timelines.

Account takeovers: a success from a far city the user never used (a data centre or a
residential proxy there), timed so that the speed from the user's previous login is 2-5x the
threshold ("fast") or 1.25-1.95x ("slow"); about a third come back from the same city two days
later, again right after one of the user's sign-ins. Credential stuffing: bursts of failures
from proxies far from each target, and a few successes.
"""

from __future__ import annotations

from dataclasses import dataclass

from detection_people import DAY, MONTH_DAYS, Event, User, World
from detection_places import (
    CITIES,
    CITY_BY_NAME,
    HOSTING,
    KM_PER_MILE,
    PROXY_CITIES,
    City,
    Network,
    haversine_km,
    home_isps,
    km_between,
    mph_between,
)

THRESHOLD_MPH = 500.0
FAST_BAND = (2.05, 5.0)  # multiples of the threshold
SLOW_BAND = (1.25, 1.95)
RETURN_SHARE = 0.35
STUFFING_BURSTS = 3
STUFFING_SUCCESS_SHARE = 0.03


@dataclass(frozen=True, slots=True)
class Attack:
    uuid: str
    subject: str
    kind: str  # fast | slow | return | stuffing_success
    band: str  # fast | slow (a return visit keeps its first visit's band), or "-"
    city: str
    mph: float  # implied by the user's previous login, between geolocated centroids


def _attack_origin(w: World, user: User) -> tuple[City, Network]:
    """A city at least 2,000 km from every place the user signs in from (9,000 km at most
    from home, so that the speed bands fit between two of the user's sign-ins), reached
    through a data centre or a residential proxy there."""
    places = [CITIES[i] for i in user.places]
    far = [
        c
        for c in CITIES
        if km_between(c, user.home) <= 9000 and all(km_between(c, p) >= 2000 for p in places)
    ]
    city = w.rng.choice(far)
    network = (
        w.rng.choice(HOSTING) if w.rng.random() < 0.5 else w.rng.choice(home_isps(city.country))
    )
    return city, network


def _takeover(
    w: World, events: list[Event], after: int, ip: str, band: tuple[float, float]
) -> tuple[int, int, float] | None:
    """(insert position, time, implied mph) of a login from `ip` right after one of the user's
    sign-ins at or after `after`, timed to a speed drawn from `band` (x threshold)."""
    target = w.plan.block_of(ip)
    for i in range(len(events) - 1):
        prev, nxt = events[i], events[i + 1]
        if prev.t < after or not prev.success:
            continue
        mph = w.rng.uniform(*band) * THRESHOLD_MPH
        block = w.plan.block_of(prev.ip)
        km = haversine_km(block.lat, block.lon, target.lat, target.lon)
        t = prev.t + max(1, round(km / (mph * KM_PER_MILE) * 3600))
        if t + 300 < nxt.t:
            return i + 1, t, mph_between(block, target, t - prev.t)
    return None


def takeovers(w: World, start: int, victims: list[tuple[User, list[Event], str]]) -> list[Attack]:
    attacks = []
    for user, events, band_name in victims:
        band = FAST_BAND if band_name == "fast" else SLOW_BAND
        city, network = _attack_origin(w, user)
        ip = w.plan.address(city, network)
        after = start + w.rng.randint(1 * DAY, 24 * DAY)
        kinds = [band_name] + (["return"] if w.rng.random() < RETURN_SHARE else [])
        for kind in kinds:
            placed = _takeover(w, events, after, ip, band)
            if placed is None or placed[1] >= start + MONTH_DAYS * DAY:
                break
            index, t, mph = placed
            uuid = f"{user.subject}.a{kind}"
            events.insert(index, Event(t, user.subject, ip, True, uuid, kind))
            attacks.append(Attack(uuid, user.subject, kind, band_name, city.name, mph))
            user.compromised = True
            after = t + 2 * DAY - 3 * 3600  # "two days later", after the user's next sign-in
    return attacks


def stuffing(w: World, start: int, targets: list[tuple[User, list[Event]]]) -> list[Attack]:
    """Bursts of failures from proxies far from each target, a few successes."""
    proxies = [
        ip
        for name in PROXY_CITIES
        for operator in (HOSTING[PROXY_CITIES.index(name) % len(HOSTING)],)
        for ip in w.pool(CITY_BY_NAME[name], operator, 12)
    ]
    attacks = []
    per_burst = len(targets) // STUFFING_BURSTS
    for burst in range(STUFFING_BURSTS):
        began = start + w.rng.randint(2 * DAY, 27 * DAY)
        group = targets[burst * per_burst : (burst + 1) * per_burst]
        winners = max(1, round(len(group) * STUFFING_SUCCESS_SHARE))
        for n, (user, events) in enumerate(group):
            far = [ip for ip in proxies if km_between(w.plan.block_of(ip).city, user.home) >= 1500]
            times = sorted(began + w.rng.randint(0, 5400) for _ in range(w.rng.randint(1, 3)))
            for k, t in enumerate(times):
                success = n < winners and k == len(times) - 1
                kind = "stuffing_success" if success else "stuffing"
                uuid = f"{user.subject}.s{burst}.{k}"
                events.append(Event(t, user.subject, w.rng.choice(far), success, uuid, kind))
                if success:
                    user.compromised = True
                    events.sort(key=lambda e: e.t)
                    at = events.index(next(e for e in events if e.uuid == uuid))
                    prev = events[at - 1] if at else events[at]
                    mph = mph_between(
                        w.plan.block_of(prev.ip), w.plan.block_of(events[at].ip), t - prev.t
                    )
                    attacks.append(
                        Attack(
                            uuid,
                            user.subject,
                            kind,
                            "-",
                            w.plan.block_of(events[at].ip).city.name,
                            mph,
                        )
                    )
    return attacks
