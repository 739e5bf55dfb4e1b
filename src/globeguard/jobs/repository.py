"""Every SQL statement about jobs and Auth0 tenants.

Claiming is a compare-and-set UPDATE (the row changes only if it is still claimable), which
is race-free on PostgreSQL and SQLite alike without SKIP LOCKED: two runners may pick the same
candidate, one UPDATE matches and the other finds nothing and tries the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.jobs.models import Auth0Tenant, Job

ACTIVE = ("pending", "processing")


def _claimable(now: datetime) -> Any:
    return or_(
        Job.status == "pending",
        and_(Job.status == "processing", Job.lease_expires_at < now),
    )


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, job: Job) -> None:
        self.session.add(job)

    async def get(self, job_id: uuid.UUID) -> Job | None:
        return await self.session.get(Job, job_id)

    async def claim(
        self,
        now: datetime,
        owner: str,
        until: datetime,
        max_attempts: int,
        job_id: uuid.UUID | None = None,
    ) -> Job | None:
        """Take the oldest claimable job (or `job_id`) under a lease; None if there is none.
        A job whose lease ran out on its last allowed attempt is failed with the reason on
        the way. An idle runner's round is this one SELECT: no write, no lock."""
        query = select(Job.id, Job.status, Job.attempts).where(_claimable(now))
        if job_id is not None:
            query = query.where(Job.id == job_id)
        candidates = (await self.session.execute(query.order_by(Job.created_at).limit(8))).all()
        for candidate, status, attempts in candidates:
            if status == "processing" and attempts >= max_attempts:
                await self._fail_interrupted(candidate, now, max_attempts)
            elif await self._take(candidate, now, owner, until):
                return await self.session.scalar(
                    select(Job).where(Job.id == candidate).execution_options(populate_existing=True)
                )
        return None

    async def _fail_interrupted(self, job_id: uuid.UUID, now: datetime, attempts: int) -> None:
        await self.session.execute(
            update(Job)
            .where(Job.id == job_id, _claimable(now))
            .values(
                status="failed",
                error=f"interrupted {attempts} times (its process stopped mid-run)",
                lease_owner=None,
                finished_at=now,
                updated_at=now,
            )
        )

    async def _take(self, job_id: uuid.UUID, now: datetime, owner: str, until: datetime) -> bool:
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, _claimable(now))
            .values(
                status="processing",
                lease_owner=owner,
                lease_expires_at=until,
                attempts=Job.attempts + 1,
                updated_at=now,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False  # another runner took it first
        await self.session.execute(
            update(Job).where(Job.id == job_id, Job.started_at.is_(None)).values(started_at=now)
        )
        return True

    def _held(self, job_id: uuid.UUID, owner: str) -> Any:
        return and_(Job.id == job_id, Job.lease_owner == owner, Job.status == "processing")

    async def renew(self, job_id: uuid.UUID, owner: str, now: datetime, until: datetime) -> bool:
        """Extend the lease; False when the job was cancelled or taken over meanwhile."""
        result = await self.session.execute(
            update(Job)
            .where(self._held(job_id, owner))
            .values(lease_expires_at=until, updated_at=now)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def checkpoint(
        self,
        job_id: uuid.UUID,
        owner: str,
        now: datetime,
        *,
        done: int,
        total: int | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> bool:
        values: dict[str, Any] = {"progress_done": done, "updated_at": now}
        if total is not None:
            values["progress_total"] = total
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
        result = await self.session.execute(
            update(Job).where(self._held(job_id, owner)).values(**values)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def finish(
        self,
        job_id: uuid.UUID,
        owner: str,
        now: datetime,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        outcome = await self.session.execute(
            update(Job)
            .where(self._held(job_id, owner))
            .values(
                status=status,
                result=result,
                error=error,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
            )
        )
        return outcome.rowcount == 1  # type: ignore[attr-defined]

    async def release(self, job_id: uuid.UUID, owner: str, now: datetime) -> None:
        """Hand a job back at shutdown: it resumes at once elsewhere, and a clean stop does
        not count as one of its attempts."""
        await self.session.execute(
            update(Job)
            .where(self._held(job_id, owner))
            .values(
                status="pending",
                lease_owner=None,
                lease_expires_at=None,
                attempts=Job.attempts - 1,
                updated_at=now,
            )
        )

    async def cancel(self, job_id: uuid.UUID, now: datetime) -> bool:
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(ACTIVE))
            .values(
                status="cancelled",
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
            )
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def finished_before(self, before: datetime, limit: int) -> Sequence[Job]:
        query = (
            select(Job)
            .where(Job.finished_at < before, Job.status.not_in(ACTIVE))
            .order_by(Job.finished_at)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def delete(self, job_ids: Sequence[uuid.UUID]) -> None:
        if job_ids:
            await self.session.execute(delete(Job).where(Job.id.in_(job_ids)))


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, domain: str) -> Auth0Tenant | None:
        return await self.session.get(Auth0Tenant, domain)

    async def only(self) -> Auth0Tenant | None:
        """The tenant when exactly one is stored (so a sync need not name it)."""
        rows = (await self.session.scalars(select(Auth0Tenant).limit(2))).all()
        return rows[0] if len(rows) == 1 else None

    def add(self, tenant: Auth0Tenant) -> None:
        self.session.add(tenant)
