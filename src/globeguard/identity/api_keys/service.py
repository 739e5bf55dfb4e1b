"""API keys: `ggk_<key id>_<secret>`; the key id is public, the secret (32 random bytes) is
kept only as SHA-256 and compared in constant time."""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
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
from globeguard.kit.ttl_cache import TtlCache

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
    """What a key id resolved to, shared by every request presenting it: everything but the
    check of the presented secret, which each request makes itself. `problem` is why the key
    cannot be used whatever the secret (revoked, expired, owner not active)."""

    secret_hash: str
    expires_at: datetime | None
    key: AuthenticatedKey
    problem: str | None


def _resolution_tags(key_id: str, resolved: _Resolved) -> tuple[str, str]:
    return api_key_cache_key(key_id), str(resolved.key.user_id)


def _problem(key: ApiKey, owner_status: str) -> str | None:
    if key.revoked_at is not None:
        return "API key revoked"
    if key.expires_at is not None and key.expires_at <= utcnow():
        return "API key expired"
    if owner_status != "active":
        return "account is not active"
    return None


class ApiKeyAuthenticator:
    """Resolves presented keys. A resolution (key, owner status, grants) is remembered per
    process for `ttl_s`, like access-token state, and refreshed ahead by one background load
    (kit.ttl_cache): revoking the key, or blocking, deleting or changing the roles of its
    owner, evicts it on commit (and on PostgreSQL in every process through NOTIFY); `ttl_s`
    bounds staleness if a notification is lost. The secret is compared with the stored hash
    on every request, before anything about the key is told: an unknown id is remembered
    nowhere, so guessing ids fills nothing."""

    def __init__(
        self,
        last_used_resolution: timedelta,
        ttl_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolution = last_used_resolution
        # Per-process memo of the last write, so a hot key costs no UPDATE most of the time.
        self._touched: dict[str, float] = {}
        self._resolved: TtlCache[str, _Resolved] = TtlCache(
            ttl_s, MAX_RESOLVED_KEYS, _resolution_tags, clock
        )

    @property
    def ttl_s(self) -> float:
        return self._resolved.ttl_s

    def evict(self, key: str) -> None:
        """`key` is an announced change: `api_key:<id>` for one key, or an owner's user id."""
        self._resolved.evict(key)

    def clear(self) -> None:
        self._resolved.clear()

    async def close(self) -> None:
        await self._resolved.close()

    async def authenticate(self, db: Database, presented: str) -> AuthenticatedKey:
        match = KEY_PATTERN.match(presented.strip())
        if match is None:
            raise Unauthorized("malformed API key", code="invalid_api_key")
        key_id, secret = match.groups()
        resolved = await self._resolved.get_or_load(key_id, lambda: self._resolve(db, key_id))
        if resolved is None or not same_digest(secret, resolved.secret_hash):
            raise Unauthorized("invalid API key", code="invalid_api_key")
        if resolved.problem is not None:
            raise Unauthorized(resolved.problem, code="invalid_api_key")
        if resolved.expires_at is not None and resolved.expires_at <= utcnow():
            raise Unauthorized("API key expired", code="invalid_api_key")
        await self._touch(db, key_id)
        return resolved.key

    async def _resolve(self, db: Database, key_id: str) -> _Resolved | None:
        async with db.read() as session:
            found = await ApiKeyRepository(session).with_owner(key_id)
            if found is None:
                return None
            key, owner = found
            problem = _problem(key, owner.status)
            if problem is not None:
                nothing = AuthenticatedKey(key.key_id, owner.id, frozenset(), ())
                return _Resolved(key.secret_hash, key.expires_at, nothing, problem)
            grants = await grants_of(session, owner.id)
        authenticated = AuthenticatedKey(
            key.key_id,
            owner.id,
            frozenset(grants.scopes.intersection(key.scopes)),
            tuple(grants.roles),
        )
        return _Resolved(key.secret_hash, key.expires_at, authenticated, None)

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
