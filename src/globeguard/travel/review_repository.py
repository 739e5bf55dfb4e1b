"""The SQL of reviewing a login: reading the one login an admin gives a verdict on."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.travel.models import LoginEvent


class LoginReviewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, login_id: int) -> LoginEvent | None:
        return await self.session.get(LoginEvent, login_id)

    async def reread(self, event: LoginEvent) -> None:
        """The row as it is now: read again once its subject's writers are locked out, so a
        review committed meanwhile is seen, not overwritten."""
        await self.session.refresh(event)
