"""`POST /api/v1/logins/{id}/review`: an admin's verdict on one login (see travel.review)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from globeguard.identity.dependencies import ContainerDep, DbSession, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.limits import INT64_MAX
from globeguard.travel.review import Verdict
from globeguard.travel.routes import LoginRead, login_read

router = APIRouter(prefix="/api/v1", tags=["login intelligence"])


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict


class ReviewedLogin(LoginRead):
    subject: str
    user_id: uuid.UUID | None
    review: str
    reviewed_at: datetime
    # False when the login already had this review: nothing was done again.
    changed: bool
    # Sessions a `compromised` review ended (null for `safe`, an unlinked login or a repeat).
    sessions_revoked: int | None


Reviewer = Annotated[Principal, Depends(require(Permission.USERS_WRITE))]


@router.post("/logins/{login_id}/review", response_model=ReviewedLogin)
async def review_login(
    login_id: Annotated[int, Path(ge=1, le=INT64_MAX, description="The login's `id`.")],
    body: ReviewBody,
    principal: Reviewer,
    app: ContainerDep,
    session: DbSession,
) -> ReviewedLogin:
    """Say whether a login was the user. `safe`: its place and network are trusted from now
    on, and a flagged login is announced `login.cleared`. `compromised`: the user's sessions,
    refresh tokens, access tokens and API keys end, the password must be set again before it
    signs in, and `user.compromised` is announced. `compromised` is final (409
    `login_compromised` for a later `safe`). Needs `users:write`; an admin's login, a
    credential holding every permission."""
    done = await app.reviews.review(session, login_id, body.verdict, principal)
    event = done.event
    assert event.review is not None and event.reviewed_at is not None
    return ReviewedLogin.model_validate(
        login_read(event).model_dump()
        | {
            "subject": event.subject,
            "user_id": event.user_id,
            "review": event.review,
            "reviewed_at": event.reviewed_at,
            "changed": done.changed,
            "sessions_revoked": done.sessions_revoked,
        }
    )
