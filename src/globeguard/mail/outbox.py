"""Queueing a message: rendered now, written to the mail outbox in the caller's transaction,
sent by the mail sender after the commit. The body is sealed at rest: it carries single-use
links."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from globeguard.kit.clock import utcnow
from globeguard.kit.crypto import Sealer
from globeguard.mail.render import render
from globeguard.mail.repository import MailRepository

SEAL_PURPOSE = "mail-body"
# Set on a session that queued mail, so its commit can wake the sender.
WROTE_MAIL = "globeguard.wrote_mail"


class MailOutbox:
    def __init__(self, sealer: Sealer, public_url: str) -> None:
        self.sealer = sealer
        # Where links in messages point, without a trailing slash.
        self.public_url = public_url.rstrip("/")

    def link(self, path: str) -> str:
        """An absolute link to one of our pages, e.g. link("/dashboard/verify-email#t=…")."""
        return f"{self.public_url}{path}"

    async def send(
        self, session: AsyncSession, *, to: str, template: str, values: dict[str, Any]
    ) -> uuid.UUID:
        """Queue template `template` rendered with `values` for `to`; returns the message id."""
        rendered = render(template, values)
        # The subject too is sealed (a sign-in code may be in it); the column keeps the
        # template's, placeholders unfilled, for an operator looking at the table.
        body = orjson.dumps(
            {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}
        )
        message_id = uuid.uuid4()
        now = utcnow()
        await MailRepository(session).add(
            {
                "id": message_id,
                "kind": template[:32],
                "to_address": to,
                "subject": rendered.subject_template[:255],
                "body_sealed": self.sealer.seal(body, SEAL_PURPOSE),
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            }
        )
        session.info[WROTE_MAIL] = True
        return message_id

    def open_body(self, sealed: str) -> dict[str, str]:
        """The subject, text and HTML of a queued message (the sender's side)."""
        return dict(orjson.loads(self.sealer.open(sealed, SEAL_PURPOSE)))


def install_mail_wakeup(session_class: type[Session], wake: Callable[[], None]) -> None:
    """Call `wake` after each commit that queued mail, so this process's sender sends at once
    instead of at its next poll; a rollback forgets the flag (and its rows)."""

    @event.listens_for(session_class, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.pop(WROTE_MAIL, False):
            wake()

    @event.listens_for(session_class, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(WROTE_MAIL, None)
