"""/api/v1/users/{user_id}/mfa: an administrator sees whether a user has a second factor and
removes it for one who lost their device.

Reading needs `users:read`; removing needs `users:write`, and another admin's account needs a
credential acting as admin (as blocking does), so `users:write` alone cannot strip every
admin's second factor. An admin's own factor is not removed here: that is the self-service
`DELETE /api/v1/mfa/totp`, which asks for a current code or the password, so a stolen access
token cannot switch it off.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from globeguard.account.mfa.schemas import MfaRead, TotpRead
from globeguard.identity.dependencies import ContainerDep, DbSession, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.errors import Forbidden

router = APIRouter(prefix="/api/v1/users", tags=["mfa"])

Reader = Annotated[Principal, Depends(require(Permission.USERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.USERS_WRITE))]


@router.get("/{user_id}/mfa", response_model=MfaRead)
async def read_user_mfa(
    user_id: uuid.UUID, principal: Reader, app: ContainerDep, session: DbSession
) -> MfaRead:
    """Whether the user has an authenticator (confirmed or pending) and how many recovery
    codes are left. Never a secret. 404 for an unknown user."""
    user = await app.users.get(session, user_id, include_deleted=True)
    found = await app.mfa.status(session, user.id)
    totp = TotpRead(enrolled=found.enrolled, pending=found.pending, confirmed_at=found.confirmed_at)
    return MfaRead(totp=totp, recovery_codes_left=found.recovery_codes_left)


@router.delete("/{user_id}/mfa", status_code=status.HTTP_204_NO_CONTENT)
async def remove_user_mfa(
    user_id: uuid.UUID, principal: Writer, app: ContainerDep, session: DbSession
) -> Response:
    """Remove the user's authenticator and recovery codes (`user.mfa.removed`, the admin as
    actor). 404 `mfa_not_enrolled` when there is none; 403 `admin_target` for another admin's
    account without a credential acting as admin; 403 `own_mfa` for the caller's own."""
    if principal.user_id == user_id:
        raise Forbidden(
            "remove your own authenticator with DELETE /api/v1/mfa/totp and a code or your"
            " password",
            code="own_mfa",
        )
    user = await app.users.get(session, user_id, include_deleted=False)
    await app.roles.ensure_may_change(session, user.id, principal)
    await app.mfa.remove_for_user(session, user.id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
