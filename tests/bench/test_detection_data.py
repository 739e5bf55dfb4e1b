"""Invariants of bench/detection_data.py, the month of logins bench/detection.py grades: the
same seed gives the same data, honest journeys are humanly possible, attacks sit in their
speed bands, and every address geolocates where the generator meant it to."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import maxminddb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import itertools

from detection import write_databases
from detection_data import (
    CRUISE_KMH,
    FAST_BAND,
    SLOW_BAND,
    THRESHOLD_MPH,
    Dataset,
    Event,
    generate,
    mph_between,
)
from detection_places import km_between

USERS = 300


@pytest.fixture(scope="module")
def data() -> Dataset:
    return generate(seed=3, users=USERS)


def _timelines(data: Dataset) -> dict[str, list[Event]]:
    timelines: dict[str, list[Event]] = defaultdict(list)
    for event in data.events + data.extra:
        timelines[event.subject].append(event)
    return timelines


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(data: Dataset) -> None:
    again = generate(seed=3, users=USERS)
    assert again.events == data.events and again.extra == data.extra
    assert again.attacks == data.attacks
    assert generate(seed=4, users=USERS).events != data.events


def test_events_are_in_time_order_with_unique_ids_and_the_month_before_the_extra_week(
    data: Dataset,
) -> None:
    times = [e.t for e in data.events]
    assert times == sorted(times)
    assert len({e.uuid for e in data.events + data.extra}) == len(data.events) + len(data.extra)
    assert data.events[-1].t < data.extra[0].t
    assert 80 <= len(data.events) / USERS <= 160  # about four sign-ins a day


def test_flights_are_never_faster_than_an_airliner_and_nobody_signs_in_while_flying(
    data: Dataset,
) -> None:
    timelines = _timelines(data)
    assert data.flights
    for flight in data.flights:
        assert flight.km >= 500
        assert flight.kmh < CRUISE_KMH[1]
        in_the_air = [
            e
            for e in timelines[flight.subject]
            if flight.left_at < e.t < flight.arrived_at - 60  # a typo just before landing's login
        ]
        assert in_the_air == []


def test_honest_journeys_other_than_network_hops_are_below_the_threshold(data: Dataset) -> None:
    """Home, office, branch, hotel: the centres of consecutive honest sign-ins are never
    further apart than a person can travel (carriers, VPNs and egresses are not journeys)."""
    personas = {u.subject: u.persona for u in data.users if not u.compromised}
    for subject, events in _timelines(data).items():
        if personas.get(subject) not in ("home_office", "traveller"):
            continue
        honest = [e for e in events if e.kind in ("honest", "typo")]
        for before, after in itertools.pairwise(honest):
            block_a, block_b = data.plan.block_of(before.ip), data.plan.block_of(after.ip)
            assert mph_between(block_a, block_b, after.t - before.t) < THRESHOLD_MPH


def test_takeovers_imply_a_speed_in_their_band_from_the_previous_login(data: Dataset) -> None:
    timelines = _timelines(data)
    kinds = {a.kind for a in data.attacks}
    assert {"fast", "slow", "return", "stuffing_success"} <= kinds
    for attack in data.attacks:
        if attack.kind == "stuffing_success":
            continue
        events = timelines[attack.subject]
        at = next(i for i, e in enumerate(events) if e.uuid == attack.uuid)
        prev, login = events[at - 1], events[at]
        mph = mph_between(
            data.plan.block_of(prev.ip), data.plan.block_of(login.ip), login.t - prev.t
        )
        low, high = FAST_BAND if attack.band == "fast" else SLOW_BAND
        assert low * THRESHOLD_MPH <= mph <= high * THRESHOLD_MPH
        assert login.success and prev.kind in ("honest", "typo")
        honest_cities = {data.plan.block_of(e.ip).city for e in events if e.kind == "honest"}
        attacker_city = data.plan.block_of(login.ip).city
        assert min(km_between(attacker_city, c) for c in honest_cities) >= 2000


def test_return_visits_come_from_the_first_visits_city_two_days_later(data: Dataset) -> None:
    first = {a.subject: a for a in data.attacks if a.kind in ("fast", "slow")}
    events = {e.uuid: e for e in data.events}
    for attack in (a for a in data.attacks if a.kind == "return"):
        earlier = first[attack.subject]
        assert attack.city == earlier.city
        assert events[attack.uuid].t - events[earlier.uuid].t >= 2 * 86_400 - 3 * 3600


def test_network_personas_hop_to_their_hub_exit_or_egress_on_one_asn(data: Dataset) -> None:
    for user in data.users:
        if user.persona not in ("mobile", "vpn", "corporate") or user.compromised:
            continue
        events = [e for e in data.events if e.subject == user.subject and e.kind == "honest"]
        away = [data.plan.block_of(e.ip) for e in events]
        away = [b for b in away if b.operator.kind not in ("broadband", "business")]
        assert away, user.subject
        assert len({b.operator.asn for b in away}) == 1
        for block in away:
            km = km_between(user.home, block.city)
            assert (km > 1000) if user.persona == "vpn" else (200 <= km <= 900)
            low, high = (100, 500) if user.persona == "mobile" else (20, 100)
            assert low <= block.radius_km <= high


def test_typos_are_a_failure_then_a_success_from_the_same_address(data: Dataset) -> None:
    for events in _timelines(data).values():
        for i, event in enumerate(events):
            if event.kind == "typo":
                success = events[i + 1]
                assert success.success and success.ip == event.ip
                assert 0 < success.t - event.t <= 60


def test_every_address_geolocates_to_its_intended_place_and_network(
    data: Dataset, tmp_path: Path
) -> None:
    city_db, asn_db = write_databases(data.plan, tmp_path)
    with (
        maxminddb.open_database(str(city_db)) as cities,
        maxminddb.open_database(str(asn_db)) as asns,
    ):
        for ip in {e.ip for e in data.events + data.extra}:
            block = data.plan.block_of(ip)
            record, network = cities.get(ip), asns.get(ip)
            assert record["city"]["names"]["en"] == block.city.name
            assert record["country"]["iso_code"] == block.city.country
            assert record["location"]["latitude"] == pytest.approx(block.lat)
            assert record["location"]["accuracy_radius"] == block.radius_km
            assert network["autonomous_system_number"] == block.operator.asn
