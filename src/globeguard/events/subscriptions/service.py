"""Subscription rules: valid and safe targets, signing keys sealed at rest, rotation with
overlap, pausing and resuming. Never commits: the route's transaction does."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events import signing
from globeguard.events.models import Subscription, SubscriptionSecret
from globeguard.events.outbox import note_subscriptions_changed
from globeguard.events.sinks.guard import TargetGuard, UnsafeTarget
from globeguard.events.sinks.nats_streams import StreamUnavailable, ensure_stream
from globeguard.events.subscriptions.repository import SubscriptionRepository
from globeguard.events.subscriptions.schemas import (
    NewSecret,
    SecretRead,
    SecretRotate,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionUpdate,
)
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.crypto import Sealer
from globeguard.kit.errors import NotFound, Unprocessable
from globeguard.settings import DeliverySettings

SEAL_PURPOSE = "subscription-secret"
# NATS subject tokens: no wildcards (`*`, `>`) and no whitespace; we append `.<event type>`.
_SUBJECT_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
MAX_SUBJECT_PREFIX = 200
MAX_OPENED_KEYS = 10_000
# How long saving a `nats` subscription waits for the server to find or create its stream.
STREAM_CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    subscription: Subscription
    secrets: Sequence[SubscriptionSecret]


class SubscriptionService:
    def __init__(
        self,
        sealer: Sealer,
        guard: TargetGuard,
        settings: DeliverySettings,
        clock: Clock = utcnow,
    ) -> None:
        self.sealer = sealer
        self.guard = guard
        self.settings = settings
        self.clock = clock
        # Opened keys by their sealed text (unique: each sealing has a random nonce; row ids
        # are not, SQLite reuses them): the dispatcher needs every key every round.
        self._opened: dict[str, str] = {}

    # -- targets -----------------------------------------------------------------------------

    async def check_target(self, kind: str, target: str) -> None:
        if kind == "webhook":
            try:
                await self.guard.check(target)
            except UnsafeTarget as exc:
                raise Unprocessable(str(exc), code="unsafe_target") from exc
            return
        if len(target) > MAX_SUBJECT_PREFIX or not _SUBJECT_PREFIX.match(target):
            raise Unprocessable(
                "a NATS target is a subject prefix of dot-separated tokens without wildcards",
                code="invalid_subject",
            )
        if not self.settings.nats_url:
            raise Unprocessable(
                "no NATS server is configured (GLOBEGUARD_DELIVERY__NATS_URL)",
                code="nats_not_configured",
            )
        await self._ensure_stream(target)

    async def _ensure_stream(self, prefix: str) -> None:
        """A `nats` subscription is only saved with a stream to publish into."""
        assert self.settings.nats_url is not None
        timeout = min(STREAM_CHECK_TIMEOUT_S, self.settings.http_timeout.total_seconds())
        try:
            await ensure_stream(self.settings.nats_url, prefix, timeout_s=timeout)
        except StreamUnavailable as exc:
            raise Unprocessable(str(exc), code="nats_stream_unavailable") from exc

    # -- keys --------------------------------------------------------------------------------

    def _new_key(self, subscription_id: uuid.UUID, scheme: str) -> tuple[SubscriptionSecret, str]:
        value = signing.new_ed25519_key() if scheme == "v1a" else signing.new_hmac_secret()
        row = SubscriptionSecret(
            subscription_id=subscription_id,
            scheme=scheme,
            sealed=self.sealer.seal(value.encode(), SEAL_PURPOSE),
            created_at=self.clock(),
        )
        return row, value

    def reveal(self, secret: SubscriptionSecret) -> str:
        return self.reveal_sealed(secret.sealed)

    def reveal_sealed(self, sealed: str) -> str:
        value = self._opened.get(sealed)
        if value is None:
            if len(self._opened) >= MAX_OPENED_KEYS:
                self._opened.clear()
            opened = self.sealer.open(sealed, SEAL_PURPOSE).decode()
            value = self._opened[sealed] = opened
        return value

    def signing_keys(
        self, secrets: Sequence[SubscriptionSecret], now: datetime
    ) -> list[signing.SigningKey]:
        """The keys to sign with now: every key not yet expired (old and new while rotating)."""
        return [
            signing.SigningKey(self.reveal(s))
            for s in secrets
            if s.expires_at is None or s.expires_at > now
        ]

    # -- CRUD --------------------------------------------------------------------------------

    async def create(
        self, session: AsyncSession, data: SubscriptionCreate
    ) -> tuple[SubscriptionView, str, str | None]:
        """The new subscription, its `whsec_` secret and, with ed25519, its `whpk_` key."""
        await self.check_target(data.kind, data.target)
        now = self.clock()
        repo = SubscriptionRepository(session)
        subscription = Subscription(
            id=uuid.uuid4(),
            name=data.name,
            kind=data.kind,
            target=data.target,
            event_types=list(data.event_types),
            ordered=data.ordered,
            include_pii=data.include_pii,
            rate_limit_per_s=data.rate_limit_per_s,
            max_in_flight=data.max_in_flight or self.settings.default_max_in_flight,
            created_at=now,
            updated_at=now,
        )
        repo.add(subscription)
        await repo.flush()
        hmac_row, secret = self._new_key(subscription.id, "v1")
        repo.add(hmac_row)
        public = None
        if data.ed25519:
            ed_row, private = self._new_key(subscription.id, "v1a")
            repo.add(ed_row)
            public = signing.public_key(private)
        await repo.flush()
        note_subscriptions_changed(session)
        return await self.view(session, subscription.id), secret, public

    async def _get(self, session: AsyncSession, subscription_id: uuid.UUID) -> Subscription:
        subscription = await SubscriptionRepository(session).get(subscription_id)
        if subscription is None:
            raise NotFound("no such subscription", code="subscription_not_found")
        return subscription

    async def view(self, session: AsyncSession, subscription_id: uuid.UUID) -> SubscriptionView:
        subscription = await self._get(session, subscription_id)
        secrets = await SubscriptionRepository(session).secrets_of([subscription.id])
        return SubscriptionView(subscription, secrets)

    async def all(self, session: AsyncSession) -> list[SubscriptionView]:
        repo = SubscriptionRepository(session)
        subscriptions = await repo.all()
        secrets = await repo.secrets_of([s.id for s in subscriptions])
        by_owner: dict[uuid.UUID, list[SubscriptionSecret]] = {}
        for secret in secrets:
            by_owner.setdefault(secret.subscription_id, []).append(secret)
        return [SubscriptionView(s, by_owner.get(s.id, [])) for s in subscriptions]

    async def update(
        self, session: AsyncSession, subscription_id: uuid.UUID, data: SubscriptionUpdate
    ) -> SubscriptionView:
        subscription = await self._get(session, subscription_id)
        changes = data.model_dump(exclude_unset=True)
        if "target" in changes and changes["target"] is not None:
            await self.check_target(subscription.kind, changes["target"])
        elif subscription.kind == "nats" and changes.get("enabled") is True:
            # Resuming makes the stream again if it was deleted (pausing needs no server).
            await self.check_target(subscription.kind, subscription.target)
        now = self.clock()
        enabled = changes.pop("enabled", None)
        for field, value in changes.items():
            if value is None and field not in ("rate_limit_per_s",):
                continue  # explicit nulls clear only what may be empty
            setattr(subscription, field, value)
        if enabled is True:
            # Resuming forgives the past failures; held deliveries go out again.
            subscription.disabled_at = None
            subscription.disabled_reason = None
            subscription.failing_since = None
        elif enabled is False and subscription.disabled_at is None:
            subscription.disabled_at = now
            subscription.disabled_reason = "paused"
        subscription.updated_at = now
        await session.flush()
        note_subscriptions_changed(session)
        return await self.view(session, subscription_id)

    async def delete(self, session: AsyncSession, subscription_id: uuid.UUID) -> None:
        """Its deliveries and their attempts go with it (nothing more will be sent)."""
        await SubscriptionRepository(session).delete(await self._get(session, subscription_id))
        note_subscriptions_changed(session)

    async def rotate(
        self, session: AsyncSession, subscription_id: uuid.UUID, data: SecretRotate
    ) -> NewSecret:
        subscription = await self._get(session, subscription_id)
        now = self.clock()
        repo = SubscriptionRepository(session)
        await repo.drop_expired_secrets(subscription.id, now)
        await repo.retire_secrets(
            subscription.id, data.scheme, now + timedelta(seconds=data.overlap_seconds)
        )
        row, value = self._new_key(subscription.id, data.scheme)
        repo.add(row)
        subscription.updated_at = now
        await repo.flush()
        public = signing.public_key(value) if data.scheme == "v1a" else None
        return NewSecret(secret=value, public_key=public, scheme=data.scheme)

    # -- views -------------------------------------------------------------------------------

    def read_model(self, view: SubscriptionView) -> SubscriptionRead:
        s = view.subscription
        return SubscriptionRead(
            id=s.id,
            name=s.name,
            kind=s.kind,  # type: ignore[arg-type]
            target=s.target,
            event_types=list(s.event_types),
            ordered=s.ordered,
            include_pii=s.include_pii,
            rate_limit_per_s=s.rate_limit_per_s,
            max_in_flight=s.max_in_flight,
            enabled=s.disabled_at is None,
            disabled_at=s.disabled_at,
            disabled_reason=s.disabled_reason,
            failing_since=s.failing_since,
            created_at=s.created_at,
            updated_at=s.updated_at,
            secrets=[self._secret_read(x) for x in view.secrets],
        )

    def _secret_read(self, secret: SubscriptionSecret) -> SecretRead:
        public = signing.public_key(self.reveal(secret)) if secret.scheme == "v1a" else None
        return SecretRead(
            id=secret.id,
            scheme=secret.scheme,  # type: ignore[arg-type]
            created_at=secret.created_at,
            expires_at=secret.expires_at,
            public_key=public,
        )
