"""The ingestion contract: the seed's message `{username, email, user_id}`, checked whole.

The seed's consumers threw on a missing field after the API had already answered 200, and the
record was lost. Here every check happens before anything is stored, and a failure is a 400
naming each bad field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError
from pydantic_core import ErrorDetails

# Printable text only: a control character in an id is a broken producer, not a user.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class InvalidMessage(ValueError):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class UserMessage(BaseModel):
    # Unknown keys are ignored, not stored: only the three identifiers are kept.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    user_id: str = Field(min_length=1, max_length=255, pattern=PRINTABLE)
    email: EmailStr = Field(max_length=320)
    # Optional: Auth0 database connections without usernames send none, and the seed, which
    # required it, dropped every such user.
    username: str | None = Field(default=None, min_length=1, max_length=320, pattern=PRINTABLE)


class ExternalUserRead(BaseModel):
    user_id: str
    username: str | None
    email: str
    topic: str
    created_at: datetime


class IngestAccepted(BaseModel):
    # `OK` as the seed answered, so its callers keep working.
    status: str = "OK"
    user_id: str
    # False for a replay of a message already stored.
    created: bool
    created_at: datetime


def _reason(err: ErrorDetails) -> str:
    if err["type"] == "string_pattern_mismatch":
        return "must not contain control characters"
    return err["msg"]


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    # Never echo the input: it is personal data.
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "message", "reason": _reason(err)}
        for err in exc.errors()
    ]


def parse_message(value: Any) -> UserMessage:
    """A message given as an object or as JSON text (the seed's query form)."""
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidMessage([{"field": "message", "reason": "not valid JSON"}]) from exc
    if not isinstance(value, dict):
        raise InvalidMessage([{"field": "message", "reason": "must be a JSON object"}])
    try:
        return UserMessage.model_validate(value)
    except ValidationError as exc:
        raise InvalidMessage(_field_errors(exc)) from exc
