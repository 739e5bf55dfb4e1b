"""Request and response bodies of the jobs API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

EXPORT = "users.export"
IMPORT = "users.import"
AUTH0_SYNC = "auth0.sync"
JobKind = Literal["users.export", "users.import", "auth0.sync"]


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["ndjson", "csv"] = "ndjson"
    fields: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Fields in order (default: every field but password_hash); "
        "user_metadata.<key> picks one key.",
    )
    q: str | None = Field(
        default=None, max_length=2048, description="The user search language, as GET /users."
    )


class Auth0SyncRequest(BaseModel):
    """Credentials of a Management API machine-to-machine application (scope `read:users`).
    Given once, they are stored sealed; later syncs of the same domain may omit them."""

    model_config = ConfigDict(extra="forbid")

    domain: str | None = Field(default=None, min_length=3, max_length=255)
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    client_secret: SecretStr | None = Field(default=None, min_length=1, max_length=512)
    connection_id: str | None = Field(
        default=None, pattern=r"^con_[A-Za-z0-9]{16}$", description="Export one connection."
    )


class JobProgress(BaseModel):
    done: int
    total: int | None


class JobRead(BaseModel):
    id: uuid.UUID
    kind: str
    status: str
    progress: JobProgress
    error: str | None = None
    result: dict[str, Any] | None = None
    created_by: str
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    location: str | None = Field(
        default=None, description="Signed download link of a completed export."
    )
    location_expires_at: datetime | None = None
