"""/logins/flagged: the newest suspicious and impossible sign-ins, for the admins who review
them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from globeguard.identity.dependencies import ContainerDep, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.limits import INT64_MAX
from globeguard.travel.flagged import FlaggedPage, FlaggedService

router = APIRouter(prefix="/api/v1", tags=["login intelligence"])
flagged = FlaggedService()


@router.get("/logins/flagged", response_model=FlaggedPage)
async def flagged_logins(
    app: ContainerDep,
    _: Annotated[Principal, Depends(require(Permission.USERS_READ))],
    before: Annotated[
        int | None,
        Query(ge=1, le=INT64_MAX, description="Return logins older than this id (next_before)."),
    ] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> FlaggedPage:
    """Logins graded suspicious or impossible, newest first, each with the journey that
    earned the grade (both places, distance, time, speed) and any review. Page on with
    `before=next_before`."""
    size = min(limit or app.settings.limits.page_size_default, app.settings.limits.page_size_max)
    async with app.db.read() as session:
        return await flagged.page(session, before, size)
