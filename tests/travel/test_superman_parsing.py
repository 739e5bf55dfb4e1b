"""`POST /v1/` reads its body and its caller without FastAPI's machinery; what it accepts, how
it refuses and what the API documents must stay as they were."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from globeguard.kit.limits import LATEST_UNIX
from globeguard.travel.superman import _plain, _validated

texts = st.one_of(
    st.sampled_from(["bob", " bob", "bob ", "", "a\x00b", "\ud800", "ünï"]),
    st.text(max_size=6),
    st.text(min_size=63, max_size=66),
    st.text(min_size=319, max_size=322),
)
anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts, st.just([1])
)
stamps = st.one_of(
    st.integers(-2, 2), st.integers(LATEST_UNIX - 2, LATEST_UNIX + 2), st.just(1514764800)
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "username": st.one_of(texts, anything),
        "unix_timestamp": st.one_of(stamps, anything),
        "event_uuid": st.one_of(texts, anything),
        "ip_address": st.one_of(texts, st.just("206.81.252.200"), anything),
        "other": anything,
    },
)


@settings(max_examples=500)
@given(bodies)
def test_the_hand_check_takes_only_what_the_model_takes_unchanged(data: dict[str, Any]) -> None:
    plain = _plain(data)
    if plain is not None:
        assert plain == _validated(data)  # a BadRequest here fails the test too


def test_a_plain_body_is_read_by_hand() -> None:
    body = {
        "username": "bob",
        "unix_timestamp": 1514764800,
        "event_uuid": "85ad929a-db03-4bf4-9541-8f728fa12e42",
        "ip_address": "206.81.252.200",
    }
    assert _plain(body) == _validated(body)


async def test_the_api_documents_both_ways_to_authenticate(client: Any) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["paths"]["/v1/"]["post"]["security"] == [{"Bearer": []}, {"ApiKey": []}]
