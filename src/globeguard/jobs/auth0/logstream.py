"""Auth0 log-stream events (custom webhook) → login events.

Auth0 sends batches in one of three shapes, chosen in its dashboard: a JSON array, JSON
lines, or one JSON object; each item is `{"log_id": …, "data": {type, date, ip, user_id,
user_name, user_agent, …}}`. Only sign-ins become login events: `s` (success) and `f`, `fp`,
`fu` (failed, wrong password, unknown user); every other type is counted and ignored.

Subjects are our user ids for Auth0 users (the same derivation as the import), so a sign-in
streamed from Auth0 lands on the timeline of the user a sync imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from globeguard.jobs.records import user_id_of
from globeguard.travel.ingest import IncomingEvent

SUCCESS_TYPES = {"s": None}
FAILURE_TYPES = {"f": "failed", "fp": "wrong_password", "fu": "unknown_user"}
MAX_USER_AGENT = 512


class BatchError(ValueError):
    pass


@dataclass(slots=True)
class Parsed:
    events: list[tuple[int, IncomingEvent]] = field(default_factory=list)
    ignored: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def items_of(body: bytes) -> list[Any]:
    """The log items of a batch in any of Auth0's three shapes."""
    text = body.strip()
    if not text:
        return []
    try:
        whole = orjson.loads(text)
    except orjson.JSONDecodeError:
        whole = None
    if isinstance(whole, list):
        return whole
    if isinstance(whole, dict):
        return [whole]
    items = []
    for number, line in enumerate(text.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise BatchError(f"line {number} is not JSON: {exc}") from exc
    return items


def parse_batch(items: list[Any]) -> Parsed:
    parsed = Parsed()
    for index, item in enumerate(items):
        try:
            event = to_event(item)
        except ValueError as exc:
            parsed.errors.append((index, str(exc)))
            continue
        if event is None:
            parsed.ignored += 1
        else:
            parsed.events.append((index, event))
    return parsed


def to_event(item: Any) -> IncomingEvent | None:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    data = item.get("data", item)
    if not isinstance(data, dict):
        raise ValueError("data: not a JSON object")
    kind = data.get("type")
    if kind not in SUCCESS_TYPES and kind not in FAILURE_TYPES:
        return None
    subject = _subject(data)
    agent = data.get("user_agent")
    try:
        return IncomingEvent.model_validate(
            {
                "subject": subject,
                "occurred_at": data.get("date"),
                "ip": data.get("ip"),
                "success": kind in SUCCESS_TYPES,
                "event_uuid": item.get("log_id") or data.get("log_id") or data.get("_id"),
                "user_agent": agent[:MAX_USER_AGENT] if isinstance(agent, str) else None,
                "failure_reason": FAILURE_TYPES.get(kind),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        raise ValueError(f"{where}: {first['msg']}") from exc


def _subject(data: dict[str, Any]) -> str:
    user_id = data.get("user_id")
    if isinstance(user_id, str) and user_id:
        return str(user_id_of(user_id))
    name = data.get("user_name")
    if isinstance(name, str) and name.strip():
        # A failed sign-in for an unknown user has only the name typed, as ours record it.
        return name.strip().lower()[:320]
    raise ValueError("user_id: neither user_id nor user_name is given")
