"""The public envelope: thin, stable bytes, personal data only when allowed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from globeguard.events.envelope import PII_KEYS, body, envelope


@dataclass
class Row:
    payload: dict[str, Any]
    seq: int = 7
    event_id: str = "evt_01J"
    type: str = "user.signin.succeeded"
    aggregate_type: str = "user"
    aggregate_id: str | None = "u-1"
    aggregate_version: int | None = 3
    occurred_at: datetime = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)


PAYLOAD = {"user_id": "u-1", "ip": "203.0.113.9", "user_agent": "curl", "travel": "none"}


def test_envelope_fields_and_pii_stripped_by_default():
    assert envelope(Row(PAYLOAD), include_pii=False) == {
        "id": "evt_01J",
        "type": "user.signin.succeeded",
        "time": "2026-11-21T12:00:00.123456Z",
        "subject": "user/u-1",
        "version": 3,
        "data": {"user_id": "u-1", "travel": "none"},
    }
    assert envelope(Row(PAYLOAD), include_pii=True)["data"] == PAYLOAD


def test_subject_without_an_id():
    assert (
        envelope(Row({}, aggregate_type="signing_key", aggregate_id=None), include_pii=False)[
            "subject"
        ]
        == "signing_key"
    )


@given(st.dictionaries(st.sampled_from([*PII_KEYS, "user_id", "changed", "key_id"]), st.text()))
def test_no_pii_key_survives_and_bytes_are_stable(payload):
    sent = body(Row(payload), include_pii=False)
    assert not PII_KEYS & set(json.loads(sent)["data"])
    assert sent == body(Row(dict(reversed(list(payload.items())))), include_pii=False)
