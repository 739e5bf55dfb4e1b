"""Every SQL statement of the email flows: finding the account a forgot-password request
names (by email or by username, regardless of case)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import User


class AccountMailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_by_email(self, email_key: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email_key == email_key))

    async def user_by_username(self, username_key: str) -> User | None:
        return await self.session.scalar(select(User).where(User.username_key == username_key))
