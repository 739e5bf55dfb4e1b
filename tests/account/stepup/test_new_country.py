"""Which sign-ins come from a new country: one none of the account's known places are in."""

from __future__ import annotations

import pytest

from globeguard.travel.profile import is_new_country
from globeguard.travel.timeline import History, Place

PARIS = Place(48.8566, 2.3522, 5.0, "FR", "Paris")
LYON = Place(45.764, 4.8357, 5.0, "FR", "Lyon")
BERLIN = Place(52.52, 13.405, 5.0, "DE", "Berlin")
NOWHERE = Place(10.0, 10.0, 1000.0, None, None)


@pytest.mark.parametrize(
    ("place", "known", "expected"),
    [
        (BERLIN, (PARIS,), True),
        (BERLIN, (PARIS, LYON), True),
        (LYON, (PARIS,), False),
        (BERLIN, (PARIS, BERLIN), False),
        # Nothing known yet: no home country to leave.
        (BERLIN, (), False),
        # A place without a country, or an unlocated login, proves nothing.
        (NOWHERE, (PARIS,), False),
        (None, (PARIS,), False),
        # A known place whose country is unknown might be anywhere, this country included.
        (BERLIN, (PARIS, NOWHERE), False),
    ],
)
def test_is_new_country(place, known, expected):
    assert is_new_country(place, History(known_places=known)) is expected
