"""The public shape of an outbox event, as subscribers and the pull stream see it.

    {"id": "evt_…", "type": "user.updated", "time": "2026-11-21T12:00:00.123456Z",
     "subject": "user/6f1c…", "version": 7, "data": {"user_id": "6f1c…", "changed": [...]}}

Thin on purpose: ids and what changed, never a secret, so a consumer fetches current state
instead of trusting a copy that may be stale (`version` orders a user's changes even when
deliveries arrive out of order). Personal data in a payload (username, email, address, user
agent, the typed identifier of a failed sign-in, the subject a login was reported under, the
places of a journey) reaches only subscribers allowed to see it: outbox rows are kept for
replay for weeks, and every copy sent out is one more to erase on request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

PII_KEYS = frozenset(
    {
        "username",
        "email",
        "ip",
        "user_agent",
        "identifier",
        "journey",
        "name",
        "given_name",
        # Who a reported login names: often an email or a username.
        "subject",
    }
)


class OutboxRow(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def aggregate_type(self) -> str: ...
    @property
    def aggregate_id(self) -> str | None: ...
    @property
    def aggregate_version(self) -> int | None: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def payload(self) -> dict[str, Any]: ...


def thin_data(payload: dict[str, Any], *, include_pii: bool) -> dict[str, Any]:
    if include_pii:
        return dict(payload)
    return {key: value for key, value in payload.items() if key not in PII_KEYS}


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(row: OutboxRow, *, include_pii: bool) -> dict[str, Any]:
    subject = row.aggregate_type if row.aggregate_id is None else f"{row.aggregate_type}/"
    return {
        "id": row.event_id,
        "type": row.type,
        "time": _time(row.occurred_at),
        "subject": subject + (row.aggregate_id or ""),
        "version": row.aggregate_version,
        "data": thin_data(row.payload, include_pii=include_pii),
    }


def body(row: OutboxRow, *, include_pii: bool) -> bytes:
    """The exact bytes sent and signed. Sorted keys: the same event always gives the same
    bytes, so a redelivery's body is identical to the first one's."""
    return orjson.dumps(envelope(row, include_pii=include_pii), option=orjson.OPT_SORT_KEYS)
