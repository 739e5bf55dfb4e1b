"""Machine clients for the client_credentials grant; the secret is shown once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.identity.api_keys.service import new_key_id
from globeguard.identity.authority import beyond, ensure_grantable
from globeguard.identity.clients.repository import ClientRepository
from globeguard.identity.models import MachineClient
from globeguard.identity.permissions import ALL_PERMISSIONS
from globeguard.identity.revocation import announce
from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import random_token, sha256_hex
from globeguard.kit.errors import NotFound, Unprocessable


class ClientService:
    async def create(
        self,
        session: AsyncSession,
        name: str,
        scopes: Sequence[str],
        created_by: uuid.UUID | None,
        *,
        presenter_scopes: Iterable[str],
        actor: str,
    ) -> tuple[MachineClient, str]:
        """`clients:manage` manages clients; it does not confer the permissions a client
        carries: those must all be held by the credential creating it."""
        unknown = beyond(ALL_PERMISSIONS, scopes)
        if unknown:
            raise Unprocessable(f"unknown scopes: {', '.join(unknown)}", code="unknown_permission")
        ensure_grantable(presenter_scopes, scopes, "a machine client")
        secret = random_token(32)
        client = MachineClient(
            client_id=f"ggc_{new_key_id()}",
            secret_hash=sha256_hex(secret),
            name=name,
            scopes=sorted(set(scopes)),
            created_by=created_by,
        )
        ClientRepository(session).add(client)
        await session.flush()
        await record(
            session,
            EventType.CLIENT_CREATED,
            actor=actor,
            aggregate_type="client",
            aggregate_id=client.client_id,
            user_id=None,
            payload={"client_id": client.client_id, "name": name, "scopes": client.scopes},
        )
        return client, secret

    async def all(self, session: AsyncSession) -> Sequence[MachineClient]:
        return await ClientRepository(session).all()

    async def get(self, session: AsyncSession, row_id: uuid.UUID) -> MachineClient:
        client = await ClientRepository(session).get(row_id)
        if client is None:
            raise NotFound("no such client", code="client_not_found")
        return client

    async def revoke(self, session: AsyncSession, client: MachineClient, actor: str) -> None:
        if client.revoked_at is not None:
            return
        client.revoked_at = utcnow()
        client.token_version += 1
        await announce(session, client.client_id)
        await record(
            session,
            EventType.CLIENT_REVOKED,
            actor=actor,
            aggregate_type="client",
            aggregate_id=client.client_id,
            user_id=None,
            payload={"client_id": client.client_id},
        )
