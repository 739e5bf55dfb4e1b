"""Storing an ingested user and announcing it, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.ingest.models import ExternalUser
from globeguard.ingest.repository import ExternalUserRepository
from globeguard.ingest.schemas import UserMessage
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.errors import BadRequest, Conflict, NotFound
from globeguard.settings import IngestSettings

AGGREGATE = "external_user"
COMPARED_FIELDS = ("email", "username")


@dataclass(frozen=True, slots=True)
class Ingested:
    user_id: str
    created: bool
    created_at: datetime


class IngestService:
    def __init__(self, settings: IngestSettings, clock: Clock = utcnow) -> None:
        self.topics = tuple(settings.topics)
        self.clock = clock

    def topic(self, requested: str | None) -> str:
        """The configured topic a caller named, or the default one."""
        if requested is None or requested == "":
            return self.topics[0]
        if requested not in self.topics:
            raise BadRequest(
                "topic is not one of this service's ingestion topics",
                code="unknown_topic",
                topics=list(self.topics),
            )
        return requested

    async def ingest(
        self, session: AsyncSession, message: UserMessage, topic: str, actor: str
    ) -> Ingested:
        """Store the user once. A replay (same user_id, same fields) changes nothing and keeps
        the first `created_at`; a message that contradicts the stored one is refused (409)
        rather than overwriting it, because the producer sends no order to tell which of the
        two is newer."""
        repo = ExternalUserRepository(session)
        now = self.clock()
        row_id = await repo.insert_new(message.user_id, message.username, message.email, topic, now)
        if row_id is not None:
            await record(
                session,
                EventType.USER_INGESTED,
                actor=actor,
                aggregate_type=AGGREGATE,
                aggregate_id=str(row_id),
                aggregate_version=1,
                user_id=None,
                # Thin: ids only. Subscribers read the email via GET /api/v1/external-users/….
                payload={"user_id": message.user_id, "topic": topic},
            )
            return Ingested(message.user_id, True, now)
        existing = await repo.get(message.user_id)
        if existing is None:  # inserted and deleted between our two statements
            raise Conflict("a concurrent change conflicted with this one; retry")
        differing = [f for f in COMPARED_FIELDS if getattr(existing, f) != getattr(message, f)]
        if differing:
            raise Conflict(
                "this user_id is already stored with different values",
                code="user_id_conflict",
                fields=differing,
            )
        return Ingested(message.user_id, False, existing.created_at)

    async def get(self, session: AsyncSession, user_id: str) -> ExternalUser:
        user = await ExternalUserRepository(session).get(user_id)
        if user is None:
            raise NotFound("no external user with this user_id", code="external_user_not_found")
        return user
