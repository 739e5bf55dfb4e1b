"""API keys: `ggk_<key id>_<secret>`; the key id is public, the secret (32 random bytes) is
kept only as SHA-256 and compared in constant time."""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.api_keys.repository import ApiKeyRepository
from globeguard.identity.authority import beyond, ensure_grantable
from globeguard.identity.grants import grants_of
from globeguard.identity.models import ApiKey
from globeguard.identity.permissions import ALL_SCOPES
from globeguard.identity.revocation import announce
from globeguard.kit.clock import as_utc, utcnow
from globeguard.kit.crypto import random_token, same_digest, sha256_hex
from globeguard.kit.errors import NotFound, Unauthorized, Unprocessable

PREFIX = "ggk_"
KEY_PATTERN = re.compile(r"^ggk_([a-z2-7]{16})_([A-Za-z0-9_-]{43})$")
# Resolutions remembered per process; beyond this the oldest is dropped.
MAX_RESOLVED_KEYS = 10_000


def new_key_id() -> str:
    return base64.b32encode(os.urandom(10)).decode().lower()


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    key_id: str
    user_id: uuid.UUID
    scopes: frozenset[str]
    roles: tuple[str, ...]


class ApiKeyService:
    async def create(
        self,
        session: AsyncSession,
        owner_id: uuid.UUID,
        name: str,
        scopes: Iterable[str],
        expires_at: datetime | None,
        *,
        presenter_scopes: Iterable[str],
        actor: str,
    ) -> tuple[ApiKey, str]:
        """`presenter_scopes`: the effective permissions of the credential asking. A new key
        never holds more than they do (a `profile`-only key cannot mint a `users:delete` key),
        nor more than the owner's roles grant right now."""
        requested = sorted(set(scopes))
        unknown = beyond(ALL_SCOPES, requested)
        if unknown:
            raise Unprocessable(
                f"unknown scopes: {', '.join(unknown)}", code="unknown_scope", scopes=unknown
            )
        ensure_grantable(presenter_scopes, requested, "an API key")
        ensure_grantable((await grants_of(session, owner_id)).scopes, requested, "an API key")
        if expires_at is not None and as_utc(expires_at) <= utcnow():
            raise Unprocessable("expires_at must be in the future", code="invalid_expiry")
        secret = random_token(32)
        key = ApiKey(
            key_id=new_key_id(),
            secret_hash=sha256_hex(secret),
            user_id=owner_id,
            name=name,
            scopes=requested,
            expires_at=expires_at,
        )
        ApiKeyRepository(session).add(key)
        await session.flush()
        await record(
            session,
            EventType.API_KEY_CREATED,
            actor=actor,
            aggregate_type="api_key",
            aggregate_id=key.key_id,
            user_id=owner_id,
            payload={"key_id": key.key_id, "name": name, "scopes": requested},
        )
        return key, f"{PREFIX}{key.key_id}_{secret}"

    async def of_user(self, session: AsyncSession, owner_id: uuid.UUID) -> Sequence[ApiKey]:
        return await ApiKeyRepository(session).of_user(owner_id)

    async def get(
        self, session: AsyncSession, key_uuid: uuid.UUID, owner_id: uuid.UUID | None
    ) -> ApiKey:
        """`owner_id` None means an admin looking at anyone's key."""
        key = await ApiKeyRepository(session).get(key_uuid)
        if key is None or (owner_id is not None and key.user_id != owner_id):
            raise NotFound("no such API key", code="api_key_not_found")
        return key

    async def revoke(self, session: AsyncSession, key: ApiKey, actor: str) -> ApiKey:
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await announce(session, api_key_cache_key(key.key_id))
            await record(
                session,
                EventType.API_KEY_REVOKED,
                actor=actor,
                aggregate_type="api_key",
                aggregate_id=key.key_id,
                user_id=key.user_id,
                payload={"key_id": key.key_id},
            )
        return key


def api_key_cache_key(key_id: str) -> str:
    """The revocation announcement for one key (see identity.revocation.announce)."""
    return f"api_key:{key_id}"


@dataclass(frozen=True, slots=True)
class _Resolved:
    """What a key resolved to, kept for `ttl_s`: everything but the secret's check."""

    at: float
    secret_hash: str
    expires_at: datetime | None
    key: AuthenticatedKey


class ApiKeyAuthenticator:
    """Resolves presented keys. A resolution (key, owner status, grants) is remembered per
    process for `ttl_s`, like access-token state: revoking the key, or blocking, deleting or
    changing the roles of its owner, evicts it on commit (and on PostgreSQL in every process
    through NOTIFY); `ttl_s` bounds staleness if a notification is lost. The secret is still
    compared with the stored hash on every request."""

    def __init__(self, last_used_resolution: timedelta, ttl_s: float = 0.0) -> None:
        self.resolution = last_used_resolution
        self.ttl_s = ttl_s
        # Per-process memo of the last write, so a hot key costs no UPDATE most of the time.
        self._touched: dict[str, float] = {}
        self._resolved: dict[str, _Resolved] = {}
        # Owner id → their remembered key ids: a sign-in announces its user, and must not
        # scan every remembered key to find none.
        self._by_owner: dict[str, set[str]] = {}

    def evict(self, key: str) -> None:
        """`key` is an announced change: `api_key:<id>` for one key, or an owner's user id."""
        if key.startswith("api_key:"):
            self._forget(key.removeprefix("api_key:"))
            return
        for key_id in self._by_owner.pop(key, set()):
            self._resolved.pop(key_id, None)

    def clear(self) -> None:
        self._resolved.clear()
        self._by_owner.clear()

    def _remember(self, key_id: str, resolved: _Resolved) -> None:
        if key_id not in self._resolved and len(self._resolved) >= MAX_RESOLVED_KEYS:
            self._forget(next(iter(self._resolved)))
        self._resolved[key_id] = resolved
        self._by_owner.setdefault(str(resolved.key.user_id), set()).add(key_id)

    def _forget(self, key_id: str) -> None:
        resolved = self._resolved.pop(key_id, None)
        if resolved is not None:
            owner = str(resolved.key.user_id)
            self._by_owner.get(owner, set()).discard(key_id)

    async def authenticate(self, db: Database, presented: str) -> AuthenticatedKey:
        match = KEY_PATTERN.match(presented.strip())
        if match is None:
            raise Unauthorized("malformed API key", code="invalid_api_key")
        key_id, secret = match.groups()
        resolved = self._resolved.get(key_id)
        if resolved is None or time.monotonic() - resolved.at > self.ttl_s:
            resolved = await self._resolve(db, key_id, secret)
        if not same_digest(secret, resolved.secret_hash):
            raise Unauthorized("invalid API key", code="invalid_api_key")
        if resolved.expires_at is not None and resolved.expires_at <= utcnow():
            raise Unauthorized("API key expired", code="invalid_api_key")
        await self._touch(db, key_id)
        return resolved.key

    async def _resolve(self, db: Database, key_id: str, secret: str) -> _Resolved:
        async with db.read() as session:
            found = await ApiKeyRepository(session).with_owner(key_id)
            if found is None or not same_digest(secret, found[0].secret_hash):
                raise Unauthorized("invalid API key", code="invalid_api_key")
            key, owner = found
            self._check_usable(key, owner.status)
            grants = await grants_of(session, owner.id)
        authenticated = AuthenticatedKey(
            key.key_id,
            owner.id,
            frozenset(grants.scopes.intersection(key.scopes)),
            tuple(grants.roles),
        )
        resolved = _Resolved(time.monotonic(), key.secret_hash, key.expires_at, authenticated)
        # Only a key whose secret matched is remembered, so guessing fills nothing.
        if self.ttl_s > 0:
            self._remember(key_id, resolved)
        return resolved

    @staticmethod
    def _check_usable(key: ApiKey, owner_status: str) -> None:
        if key.revoked_at is not None:
            raise Unauthorized("API key revoked", code="invalid_api_key")
        if key.expires_at is not None and key.expires_at <= utcnow():
            raise Unauthorized("API key expired", code="invalid_api_key")
        if owner_status != "active":
            raise Unauthorized("account is not active", code="invalid_api_key")

    async def _touch(self, db: Database, key_id: str) -> None:
        """Its own small transaction, at most once per resolution per key and process: the
        stamp should land even when the request itself fails."""
        memo = self._touched.get(key_id, 0.0)
        if time.monotonic() - memo < self.resolution.total_seconds():
            return
        self._touched[key_id] = time.monotonic()
        now = utcnow()
        async with db.transaction() as session:
            await ApiKeyRepository(session).touch(key_id, now, now - self.resolution)
