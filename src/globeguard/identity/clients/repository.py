"""Every SQL statement about machine clients."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import MachineClient


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, client: MachineClient) -> None:
        self.session.add(client)

    async def by_client_id(self, client_id: str) -> MachineClient | None:
        return await self.session.scalar(
            select(MachineClient).where(MachineClient.client_id == client_id)
        )

    async def get(self, row_id: uuid.UUID) -> MachineClient | None:
        return await self.session.get(MachineClient, row_id)

    async def all(self) -> Sequence[MachineClient]:
        query = select(MachineClient).order_by(MachineClient.created_at)
        return (await self.session.scalars(query)).all()
