"""Identity tables: users, roles, sessions and refresh tokens, API keys, machine clients, keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from globeguard.db.base import Base, JsonDoc, UtcDateTime
from globeguard.kit.clock import utcnow
from globeguard.kit.ids import new_uuid


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class User(TimestampMixin, Base):
    __tablename__ = "user"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    # Lower-cased copies carry the uniqueness, so "Bob" and "bob" are one account. Soft-deleted
    # users keep theirs: a username is never silently handed to someone else.
    username_key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(128))
    family_name: Mapped[str | None] = mapped_column(String(128))
    user_metadata: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict, nullable=False)
    app_metadata: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="active", nullable=False)
    # Every access token carries the version it was minted under; bumping it (logout-all,
    # block, delete, role change) makes all of them fail at once.
    token_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    # Per-user change counter, published on lifecycle events so consumers can drop stale ones.
    revision: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    logins_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_login_ip: Mapped[str | None] = mapped_column(String(45))
    blocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set when one of the user's logins is reviewed "compromised": the password is presumed
    # known to someone else, so it no longer signs in until it is set again.
    password_reset_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), nullable=False
    )

    __table_args__ = (
        Index("ix_user_created_at_id", "created_at", "id"),
        Index("ix_user_status", "status"),
        Index(
            "ix_user_user_metadata_gin",
            "user_metadata",
            postgresql_using="gin",
            postgresql_ops={"user_metadata": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
        Index(
            "ix_user_app_metadata_gin",
            "app_metadata",
            postgresql_using="gin",
            postgresql_ops={"app_metadata": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class Role(TimestampMixin, Base):
    __tablename__ = "role"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("role.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)


class AuthSession(Base):
    """A sign-in: the family of refresh tokens it spawns shares its id (the JWT `sid`)."""

    __tablename__ = "auth_session"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    scope: Mapped[str] = mapped_column(String(1024), default="", nullable=False)


class RefreshToken(Base):
    __tablename__ = "refresh_token"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_session.id", ondelete="CASCADE"), nullable=False, index=True
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ApiKey(TimestampMixin, Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    # Public part of the key, shown in listings and logs; the secret part is only hashed.
    key_id: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MachineClient(TimestampMixin, Base):
    """An OAuth2 client for the client_credentials grant (Auth0's machine-to-machine app)."""

    __tablename__ = "machine_client"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    token_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SigningKey(Base):
    """JWT signing keys. `next` is published before it signs anything, so verifiers have it
    cached by the time it becomes `current`; `retired` stays published until tokens it signed
    have expired."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    # PEM sealed with the instance secret (AES-GCM); never stored in the clear.
    private_key_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unpublish_after: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        # At most one current and one next key (partial unique index on both dialects).
        Index(
            "uq_signing_key_one_per_live_status",
            "status",
            unique=True,
            sqlite_where=text("status IN ('current', 'next')"),
            postgresql_where=text("status IN ('current', 'next')"),
        ),
    )


class ExternalIdentity(Base):
    """An id another IdP knows a user by (an Auth0 `user_id`): logins that IdP reports
    under it are the user's."""

    __tablename__ = "external_identity"

    external_id: Mapped[str] = mapped_column(String(320), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, nullable=False)

    __table_args__ = (Index("ix_external_identity_user_id", "user_id"),)
