"""Request and response bodies of /subscriptions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from globeguard.events.filters import InvalidPattern, validate

Kind = Literal["webhook", "nats"]
Scheme = Literal["v1", "v1a"]


def _patterns(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    try:
        return list(dict.fromkeys(validate(p) for p in value))
    except InvalidPattern as exc:
        raise ValueError(str(exc)) from exc


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: Kind = "webhook"
    target: str = Field(
        min_length=1,
        max_length=2048,
        description="webhook: an http(s) URL; nats: a JetStream subject prefix (a.b.c)",
    )
    event_types: list[str] = Field(
        default_factory=lambda: ["**"],
        min_length=1,
        max_length=50,
        description="Patterns: `user.created`, `user.*` (one segment), `user.**`, `**`",
    )
    ordered: bool = Field(False, description="Deliver each user's events one at a time, in order")
    include_pii: bool = Field(False, description="Send personal data (username, email, IP)")
    rate_limit_per_s: float | None = Field(None, gt=0, le=100_000)
    max_in_flight: int | None = Field(None, ge=1, le=1000)
    ed25519: bool = Field(False, description="Also sign with an ed25519 key (v1a)")

    _check_patterns = field_validator("event_types")(_patterns)


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    target: str | None = Field(None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(None, min_length=1, max_length=50)
    ordered: bool | None = None
    include_pii: bool | None = None
    rate_limit_per_s: float | None = Field(None, gt=0, le=100_000)
    max_in_flight: int | None = Field(None, ge=1, le=1000)
    enabled: bool | None = Field(None, description="false pauses delivery; true resumes it")

    _check_patterns = field_validator("event_types")(_patterns)


class SecretRead(BaseModel):
    id: int
    scheme: Scheme
    created_at: datetime
    expires_at: datetime | None
    public_key: str | None = Field(None, description="v1a: the whpk_ key receivers verify with")


class SubscriptionRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: Kind
    target: str
    event_types: list[str]
    ordered: bool
    include_pii: bool
    rate_limit_per_s: float | None
    max_in_flight: int
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secrets: list[SecretRead]


class NewSecret(BaseModel):
    """Shown once: store it with the receiver."""

    secret: str = Field(description="whsec_… (v1) or whsk_… (v1a private key, keep to sign)")
    public_key: str | None = Field(None, description="v1a: whpk_… for receivers")
    scheme: Scheme


class SubscriptionCreated(SubscriptionRead):
    signing_secret: str = Field(description="whsec_…: shown once, verify v1 signatures with it")
    public_key: str | None = Field(None, description="whpk_…: verify v1a signatures with it")


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheme: Scheme = "v1"
    overlap_seconds: int = Field(
        86_400,
        ge=0,
        le=30 * 86_400,
        description="The replaced keys keep signing this long, so receivers can switch over",
    )


class SubscriptionPage(BaseModel):
    items: list[SubscriptionRead]
