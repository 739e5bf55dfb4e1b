"""Every SQL statement of second factors. Whatever must happen once (a step's code, a
recovery code, a confirmation) is one conditional UPDATE … RETURNING, so two concurrent
requests cannot both get through, on SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.account.models import RecoveryCode, TotpFactor
from globeguard.kit.clock import as_utc

_FACTOR = cast(Table, TotpFactor.__table__)
_CODES = cast(Table, RecoveryCode.__table__)


@dataclass(frozen=True, slots=True)
class FactorRow:
    secret_sealed: str
    confirmed_at: datetime | None
    last_step: int | None


class MfaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def factor(self, user_id: uuid.UUID) -> FactorRow | None:
        row = (
            await self.session.execute(
                select(_FACTOR.c.secret_sealed, _FACTOR.c.confirmed_at, _FACTOR.c.last_step).where(
                    _FACTOR.c.user_id == user_id
                )
            )
        ).first()
        if row is None:
            return None
        confirmed = as_utc(row.confirmed_at) if row.confirmed_at is not None else None
        return FactorRow(row.secret_sealed, confirmed, row.last_step)

    async def has_confirmed(self, user_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(_FACTOR.c.user_id).where(
                _FACTOR.c.user_id == user_id, _FACTOR.c.confirmed_at.is_not(None)
            )
        )
        return found is not None

    async def confirmed_among(self, user_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if not user_ids:
            return set()
        rows = await self.session.scalars(
            select(_FACTOR.c.user_id).where(
                _FACTOR.c.user_id.in_(list(user_ids)), _FACTOR.c.confirmed_at.is_not(None)
            )
        )
        return set(rows)

    async def put_pending(self, user_id: uuid.UUID, secret_sealed: str, now: datetime) -> bool:
        """Store an unconfirmed factor, replacing an unconfirmed one; False (nothing written)
        when the user has a confirmed factor. One statement: a confirmation racing it either
        lands first (and this writes nothing) or confirms the secret it read, not this one."""
        dialect = self.session.get_bind().dialect.name
        insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert_(_FACTOR).values(
            user_id=user_id,
            secret_sealed=secret_sealed,
            created_at=now,
            confirmed_at=None,
            last_step=None,
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[_FACTOR.c.user_id],
            set_={
                "secret_sealed": statement.excluded.secret_sealed,
                "created_at": statement.excluded.created_at,
                "last_step": None,
            },
            where=_FACTOR.c.confirmed_at.is_(None),
        ).returning(_FACTOR.c.user_id)
        return (await self.session.execute(upsert)).first() is not None

    async def confirm(
        self, user_id: uuid.UUID, secret_sealed: str, step: int, now: datetime
    ) -> bool:
        """Confirm the pending factor whose secret is still `secret_sealed` (not replaced by
        a newer enrolment meanwhile), using up `step`. False when it is not there any more."""
        result = await self.session.execute(
            update(_FACTOR)
            .where(
                _FACTOR.c.user_id == user_id,
                _FACTOR.c.confirmed_at.is_(None),
                _FACTOR.c.secret_sealed == secret_sealed,
            )
            .values(confirmed_at=now, last_step=step)
            .returning(_FACTOR.c.user_id)
        )
        return result.first() is not None

    async def use_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record `step` as used unless it (or a later one) already was; False if it was."""
        result = await self.session.execute(
            update(_FACTOR)
            .where(
                _FACTOR.c.user_id == user_id,
                _FACTOR.c.confirmed_at.is_not(None),
                _FACTOR.c.last_step.is_(None) | (_FACTOR.c.last_step < step),
            )
            .values(last_step=step)
            .returning(_FACTOR.c.user_id)
        )
        return result.first() is not None

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: str, now: datetime) -> bool:
        result = await self.session.execute(
            update(_CODES)
            .where(
                _CODES.c.user_id == user_id,
                _CODES.c.code_hash == code_hash,
                _CODES.c.used_at.is_(None),
            )
            .values(used_at=now)
            .returning(_CODES.c.id)
        )
        return result.first() is not None

    async def replace_recovery_codes(
        self, user_id: uuid.UUID, code_hashes: Sequence[str], now: datetime
    ) -> None:
        await self.session.execute(delete(_CODES).where(_CODES.c.user_id == user_id))
        await self.session.execute(
            insert(_CODES),
            [
                {"id": uuid.uuid4(), "user_id": user_id, "code_hash": h, "created_at": now}
                for h in code_hashes
            ],
        )

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(_CODES)
            .where(_CODES.c.user_id == user_id, _CODES.c.used_at.is_(None))
        )
        return int(count or 0)

    async def remove(self, user_id: uuid.UUID) -> FactorRow | None:
        """Delete the factor and every recovery code; the factor as it was, or None."""
        removed = (
            await self.session.execute(
                delete(_FACTOR)
                .where(_FACTOR.c.user_id == user_id)
                .returning(_FACTOR.c.secret_sealed, _FACTOR.c.confirmed_at, _FACTOR.c.last_step)
            )
        ).first()
        await self.session.execute(delete(_CODES).where(_CODES.c.user_id == user_id))
        if removed is None:
            return None
        confirmed = as_utc(removed.confirmed_at) if removed.confirmed_at is not None else None
        return FactorRow(removed.secret_sealed, confirmed, removed.last_step)
