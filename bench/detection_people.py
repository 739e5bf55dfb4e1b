"""The honest people of bench/detection.py: where they live, which networks they sign in
through, and a month (plus a week) of their sign-ins.

Personas: home/office (some with a branch office in another city, reached by train or car),
travellers (real flights: great-circle distance at 800-900 km/h plus 2-3 h at the airports;
they sign in at the destination after landing), mobile (home Wi-Fi and a carrier whose
addresses geolocate to a hub 200-900 km away, switching within minutes), corporate egress
(home and a head-office egress hundreds of km away, the same day), VPN (an exit in a far city,
switched on and off within minutes). Anyone mistypes a password now and then: a failure, then
the success from the same address seconds later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from detection_places import (
    CITIES,
    CITY_BY_NAME,
    VPN_EXITS,
    VPN_PROVIDER,
    AddressPlan,
    City,
    Network,
    business_isp,
    carriers,
    cities_between,
    corporate,
    home_isps,
    km_between,
)

DAY = 86_400
MONTH_DAYS = 30
EXTRA_DAYS = 7  # the week after the month, streamed for VPN users by --review-vpn
CRUISE_KMH = (800.0, 900.0)
AIRPORT_H = (2.0, 3.0)
SURFACE_KMH = (90.0, 150.0)  # train or car to a branch office
TYPO_SHARE = 0.04
SHARES = {"home_office": 0.38, "traveller": 0.12, "mobile": 0.22, "corporate": 0.18, "vpn": 0.10}


@dataclass(frozen=True, slots=True)
class Event:
    t: int
    subject: str
    ip: str
    success: bool
    uuid: str
    kind: str  # honest | typo | stuffing | stuffing_success | fast | slow | return


@dataclass(slots=True)
class User:
    subject: str
    persona: str
    home: City
    places: set[int] = field(default_factory=set)  # indices of cities the user signs in from
    compromised: bool = False


@dataclass(frozen=True, slots=True)
class Flight:
    subject: str
    origin: str
    destination: str
    km: float
    left_at: int  # the last login at the origin
    arrived_at: int  # the first login at the destination

    @property
    def kmh(self) -> float:
        return self.km / ((self.arrived_at - self.left_at) / 3600)


# --------------------------------------------------------------------------------------------
# People: where they live and which networks they use


@dataclass(slots=True)
class Person:
    user: User
    home_ip: str
    office_ip: str
    branch: City | None = None
    branch_ip: str = ""
    network_city: City | None = None  # the mobile hub, the VPN exit or the head office
    network: Network | None = None
    second_exit: City | None = None


class World:
    """The generator's state: one RNG, the address plan and the shared address pools."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.plan = AddressPlan(random.Random(seed * 7919 + 1))
        self._pools: dict[tuple[int, int], list[str]] = {}
        self.heads = self._head_offices()

    def pool(self, city: City, operator: Network, size: int) -> list[str]:
        key = (city.index, operator.asn)
        if key not in self._pools:
            self._pools[key] = self.plan.pool(city, operator, size)
        return self._pools[key]

    def pick(self, cities: list[City]) -> City:
        return self.rng.choices(cities, weights=[c.population for c in cities])[0]

    def _head_offices(self) -> list[City]:
        with_commuters = [
            c for c in CITIES if c.population >= 2 and cities_between(c, 200, 900, True)
        ]
        return self.rng.sample(with_commuters, 12)

    def person(self, index: int, persona: str) -> Person:
        subject = f"user{index:05d}"
        rng = self.rng
        if persona == "mobile":
            home = self.pick([c for c in CITIES if cities_between(c, 200, 900, True)])
        elif persona == "corporate":
            head = rng.choice(self.heads)
            home = self.pick(cities_between(head, 200, 900, True))
        else:
            home = self.pick(list(CITIES))
        user = User(subject, persona, home, {home.index})
        isp = rng.choice(home_isps(home.country))
        office = rng.choice(self.pool(home, business_isp(home.country), 32))
        person = Person(user, self.plan.address(home, isp), office)
        if persona == "home_office" and rng.random() < 0.2:
            if branches := cities_between(home, 150, 600, True):
                person.branch = self.pick(branches)
                person.branch_ip = rng.choice(
                    self.pool(person.branch, business_isp(home.country), 32)
                )
        elif persona == "mobile":
            person.network = rng.choice(carriers(home.country))
            person.network_city = self.pick(cities_between(home, 200, 900, True))
        elif persona == "corporate":
            person.network = corporate(self.heads.index(head))
            person.network_city = head
        elif persona == "vpn":
            exits = [CITY_BY_NAME[n] for n in VPN_EXITS if km_between(home, CITY_BY_NAME[n]) > 1000]
            person.network, person.network_city = VPN_PROVIDER, rng.choice(exits)
            if rng.random() < 0.2:
                person.second_exit = rng.choice(exits)
        for city in (person.branch, person.network_city, person.second_exit):
            if city is not None:
                user.places.add(city.index)
        return person

    def network_ip(self, person: Person) -> str:
        assert person.network_city is not None and person.network is not None
        city = person.network_city
        if person.second_exit is not None and self.rng.random() < 0.3:
            city = person.second_exit
        size = {"mobile": 508, "vpn": 254, "corporate": 4}[person.network.kind]
        return self.rng.choice(self.pool(city, person.network, size))


# --------------------------------------------------------------------------------------------
# A day of sign-ins: (unix time, address) pairs


def _at(start: int, day: int, city: City, local_h: float) -> int:
    return int(start + day * DAY + (local_h - city.utc_offset_h) * 3600)


def _hours(rng: random.Random, count: int, low: float, high: float) -> list[float]:
    return sorted(rng.uniform(low, high) for _ in range(count))


def _switching(
    rng: random.Random, t: int, first: str, other: str, share: float
) -> list[tuple[int, str]]:
    """A sign-in, and sometimes another a few minutes later on the other network."""
    logins = [(t, first)]
    if rng.random() < share:
        logins.append((t + rng.randint(60, 600), other))
    return logins


def _usual_day(w: World, p: Person, start: int, day: int) -> list[tuple[int, str]]:
    """Home and office, on weekdays; home at weekends. VPN users tunnel some of them."""
    rng, home = w.rng, p.user.home
    if day % 7 >= 5:
        slots = [(h, p.home_ip) for h in _hours(rng, rng.randint(1, 4), 9, 23.5)]
    else:
        slots = [(h, p.home_ip) for h in _hours(rng, 1 if rng.random() < 0.6 else 0, 6.5, 8.5)]
        slots += [(h, p.office_ip) for h in _hours(rng, rng.randint(1, 3), 9, 18)]
        slots += [(h, p.home_ip) for h in _hours(rng, rng.randint(1, 2), 19, 23.5)]
    logins: list[tuple[int, str]] = []
    for hour, ip in slots:
        t = _at(start, day, home, hour)
        if p.user.persona == "vpn":
            tunnel = w.network_ip(p)
            first, other = (tunnel, ip) if rng.random() < 0.45 else (ip, tunnel)
            logins += _switching(rng, t, first, other, 0.3)
        else:
            logins.append((t, ip))
    return logins


def _branch_day(w: World, p: Person, start: int, day: int) -> list[tuple[int, str]]:
    assert p.branch is not None
    rng, home = w.rng, p.user.home
    travel = km_between(home, p.branch) / rng.uniform(*SURFACE_KMH) * 3600 + 1800
    left = _at(start, day, home, rng.uniform(6, 7))
    arrived = int(left + travel)
    logins = [(left, p.home_ip)] + [
        (arrived + int(h * 3600), p.branch_ip) for h in _hours(rng, 2, 0, 4)
    ]
    back = int(logins[-1][0] + travel + rng.uniform(600, 3600))
    return [*logins, (back, p.home_ip)]


def _mixed_day(w: World, p: Person, start: int, day: int) -> list[tuple[int, str]]:
    """Mobile users (home Wi-Fi / carrier) and corporate employees (home / head-office egress)."""
    rng, home = w.rng, p.user.home
    corp = p.user.persona == "corporate"
    if corp and day % 7 >= 5:
        return [
            (_at(start, day, home, h), p.home_ip) for h in _hours(rng, rng.randint(1, 3), 9, 23)
        ]
    hours = (
        _hours(rng, rng.randint(2, 5), 8, 18.5)
        if corp
        else _hours(rng, rng.randint(2, 5), 7.5, 23.5)
    )
    logins: list[tuple[int, str]] = []
    for hour in hours:
        away = w.network_ip(p)
        first, other = (away, p.home_ip) if rng.random() < 0.5 else (p.home_ip, away)
        logins += _switching(rng, _at(start, day, home, hour), first, other, 0.3)
    if corp:
        logins += [
            (_at(start, day, home, h), p.home_ip) for h in _hours(rng, rng.randint(0, 1), 19, 23)
        ]
    return logins


# --------------------------------------------------------------------------------------------
# Travellers


def _trips(rng: random.Random, days: int) -> list[tuple[int, int]]:
    """(departure day, return day) pairs, apart from each other and inside the month."""
    trips: list[tuple[int, int]] = []
    for _ in range(rng.randint(1, 3)):
        leave = rng.randint(1, days - 8)
        back = leave + rng.randint(2, 6)
        if all(back + 2 < a or leave > b + 2 for a, b in trips):
            trips.append((leave, back))
    return sorted(trips)


def _fly(w: World, p: Person, src: City, dst: City, left: int, flights: list[Flight]) -> int:
    km = km_between(src, dst)
    arrived = int(left + (km / w.rng.uniform(*CRUISE_KMH) + w.rng.uniform(*AIRPORT_H)) * 3600)
    flights.append(Flight(p.user.subject, src.name, dst.name, km, left, arrived))
    return arrived


def _traveller_logins(
    w: World, p: Person, start: int, days: int, flights: list[Flight]
) -> list[tuple[int, str]]:
    rng, home = w.rng, p.user.home
    logins: list[tuple[int, str]] = []
    trips = {leave: back for leave, back in _trips(rng, MONTH_DAYS)}
    day, not_before = 0, 0  # no sign-in while in the air
    while day < days:
        if day not in trips:
            logins += [(t, ip) for t, ip in _usual_day(w, p, start, day) if t > not_before]
            day += 1
            continue
        back = trips[day]
        dest = w.pick([c for c in CITIES if km_between(home, c) >= 500])
        p.user.places.add(dest.index)
        hotel = w.plan.address(dest, rng.choice(home_isps(dest.country)))
        left = _at(start, day, home, rng.uniform(5, 8))
        arrived = _fly(w, p, home, dest, left, flights)
        logins += [(left, p.home_ip), (arrived, hotel)]
        for stay in range(day + 1, back):
            hours = _hours(rng, rng.randint(3, 5), 7, 23.5)
            logins += [
                (t, hotel) for t in (_at(start, stay, dest, h) for h in hours) if t > arrived + 600
            ]
        left = max(_at(start, back, dest, rng.uniform(6, 9)), arrived + 3600)
        home_again = _fly(w, p, dest, home, left, flights)
        logins += [(left, hotel), (home_again, p.home_ip)]
        day, not_before = back + 1, home_again + 600
    return logins


# --------------------------------------------------------------------------------------------
# One user's month, with typos


def timeline(w: World, p: Person, start: int, flights: list[Flight]) -> list[Event]:
    days = MONTH_DAYS + EXTRA_DAYS
    if p.user.persona == "traveller":
        raw = _traveller_logins(w, p, start, days, flights)
    else:
        raw = []
        for day in range(days):
            if p.user.persona in ("mobile", "corporate"):
                raw += _mixed_day(w, p, start, day)
            elif p.branch is not None and day % 7 < 5 and w.rng.random() < 0.1:
                raw += _branch_day(w, p, start, day)
            else:
                raw += _usual_day(w, p, start, day)
    events: list[Event] = []
    last = 0
    for t, ip in sorted(raw):
        if t <= last + 30:
            continue  # nobody signs in twice in half a minute
        typo_at = t - w.rng.randint(5, 60)
        if w.rng.random() < TYPO_SHARE and typo_at > last + 60:
            events.append(Event(typo_at, p.user.subject, ip, False, _uuid(p.user, events), "typo"))
        events.append(Event(t, p.user.subject, ip, True, _uuid(p.user, events), "honest"))
        last = t
    return events


def _uuid(user: User, events: list[Event]) -> str:
    return f"{user.subject}.{len(events)}"
