"""A month of logins for bench/detection.py, a pure function of (seed, users, start): nothing
here talks to a server or reads the clock.

The honest personas are in detection_people.py, the attacks in detection_attacks.py, the
cities, networks and address plan in detection_places.py. Shares of users: home/office 38 %,
mobile 22 %, corporate egress 18 %, travellers 12 %, VPN 10 %. Attacks: 1.5 % of users are
taken over at "fast" speed and 1.5 % at "slow" speed (a third of the attackers return two days
later); credential stuffing targets 10 % in three bursts, 3 % of the targets lose the account.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from detection_attacks import FAST_BAND, SLOW_BAND, THRESHOLD_MPH, Attack, stuffing, takeovers
from detection_people import (
    CRUISE_KMH,
    DAY,
    MONTH_DAYS,
    SHARES,
    Event,
    Flight,
    Person,
    User,
    World,
    timeline,
)
from detection_places import AddressPlan, mph_between

__all__ = [
    "CRUISE_KMH",
    "DAY",
    "FAST_BAND",
    "SHARES",
    "SLOW_BAND",
    "THRESHOLD_MPH",
    "Attack",
    "Dataset",
    "Event",
    "Flight",
    "User",
    "generate",
    "mph_between",
]

ATTACK_VICTIM_SHARE = 0.015  # of users, per band
STUFFING_TARGET_SHARE = 0.10


@dataclass(slots=True)
class Dataset:
    start: int
    users: list[User]
    events: list[Event]  # the month, in time order
    extra: list[Event]  # the week after, in time order
    flights: list[Flight]
    attacks: list[Attack]
    plan: AddressPlan


def _personas(rng: random.Random, users: int) -> list[str]:
    counts = {name: int(share * users) for name, share in SHARES.items()}
    for name in list(SHARES)[: users - sum(counts.values())]:
        counts[name] += 1
    personas = [name for name, count in counts.items() for _ in range(count)]
    rng.shuffle(personas)
    return personas


def generate(seed: int = 1, users: int = 3000, start: int = 1_700_438_400) -> Dataset:
    """The data set for (seed, users, start): identical on every call. `start` is a Monday
    0:00 UTC (the default one is 2023-11-20): days 5 and 6 of each week are the weekend."""
    w = World(seed)
    people: list[Person] = []
    timelines: list[list[Event]] = []
    flights: list[Flight] = []
    for index, persona in enumerate(_personas(w.rng, users)):
        person = w.person(index, persona)
        people.append(person)
        timelines.append(timeline(w, person, start, flights))
    order = list(range(users))
    w.rng.shuffle(order)
    per_band = max(2, round(users * ATTACK_VICTIM_SHARE))
    victims = [
        (people[i].user, timelines[i], "fast" if n < per_band else "slow")
        for n, i in enumerate(order[: 2 * per_band])
    ]
    attacks = takeovers(w, start, victims)
    stuffed = order[2 * per_band : 2 * per_band + max(3, round(users * STUFFING_TARGET_SHARE))]
    attacks += stuffing(w, start, [(people[i].user, timelines[i]) for i in stuffed])
    everything = sorted(
        (e for timeline in timelines for e in timeline), key=lambda e: (e.t, e.uuid)
    )
    end = start + MONTH_DAYS * DAY
    month = [e for e in everything if e.t < end]
    extra = [e for e in everything if e.t >= end]
    return Dataset(start, [p.user for p in people], month, extra, flights, attacks, w.plan)
