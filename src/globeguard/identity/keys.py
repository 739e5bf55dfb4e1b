"""Signing-key lifecycle: next → current → retired, stored sealed, loaded into the key ring.

Rotation publishes the successor before it signs (verifiers fetch the JWKS ahead of time) and
keeps the predecessor published until every token it signed has expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import SigningKey
from globeguard.identity.tokens import (
    ALGORITHM,
    KeyMaterial,
    KeyRing,
    generate_key,
    load_private_pem,
    private_pem,
    public_jwk,
)
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import Sealer

SEAL_PURPOSE = "signing-key"


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def published(self) -> Sequence[SigningKey]:
        now = utcnow()
        rows = await self.session.scalars(select(SigningKey))
        return [
            k
            for k in rows
            if k.status in ("current", "next") or (k.unpublish_after and k.unpublish_after > now)
        ]

    async def by_status(self, status: str) -> SigningKey | None:
        return await self.session.scalar(select(SigningKey).where(SigningKey.status == status))

    def add(self, key: SigningKey) -> None:
        self.session.add(key)

    async def set_status(self, kid: str, **values: object) -> None:
        await self.session.execute(update(SigningKey).where(SigningKey.kid == kid).values(**values))


class SigningKeyService:
    def __init__(self, sealer: Sealer, max_token_ttl: timedelta, leeway: timedelta) -> None:
        self.sealer = sealer
        # A retired key must outlive the longest token it could have signed.
        self.retire_window = max_token_ttl + leeway

    def _new_row(self, status: str) -> SigningKey:
        kid, key = generate_key()
        now = utcnow()
        return SigningKey(
            kid=kid,
            alg=ALGORITHM,
            status=status,
            private_key_sealed=self.sealer.seal(private_pem(key), SEAL_PURPOSE),
            public_jwk=public_jwk(kid, key.public_key()),
            created_at=now,
            activated_at=now if status == "current" else None,
        )

    async def ensure(self, session: AsyncSession) -> None:
        """Create the current and next keys when missing (first start)."""
        repo = SigningKeyRepository(session)
        for status in ("current", "next"):
            if await repo.by_status(status) is None:
                repo.add(self._new_row(status))
                await session.flush()

    async def rotate(self, session: AsyncSession) -> tuple[str, str]:
        """Promote next → current, retire current; returns (retired kid, new current kid)."""
        await self.ensure(session)
        repo = SigningKeyRepository(session)
        current = await repo.by_status("current")
        successor = await repo.by_status("next")
        assert current is not None and successor is not None
        now = utcnow()
        await repo.set_status(
            current.kid,
            status="retired",
            retired_at=now,
            unpublish_after=now + self.retire_window,
        )
        await repo.set_status(successor.kid, status="current", activated_at=now)
        repo.add(self._new_row("next"))
        await session.flush()
        return current.kid, successor.kid

    async def load(self, session: AsyncSession, ring: KeyRing) -> None:
        rows = await SigningKeyRepository(session).published()
        materials = [self._material(row) for row in rows]
        current = next(
            (m for m, r in zip(materials, rows, strict=True) if r.status == "current"), None
        )
        ring.replace(current, materials)

    def _material(self, row: SigningKey) -> KeyMaterial:
        private = load_private_pem(self.sealer.open(row.private_key_sealed, SEAL_PURPOSE))
        return KeyMaterial(
            kid=row.kid,
            private_key=private if row.status == "current" else None,
            public_key=private.public_key(),
            public_jwk=row.public_jwk,
        )
