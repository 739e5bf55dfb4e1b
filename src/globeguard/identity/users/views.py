"""ORM → response model conversions shared by several routers."""

from __future__ import annotations

from collections.abc import Sequence

from globeguard.identity.models import User
from globeguard.identity.users.schemas import UserRead


def user_read(user: User, roles: Sequence[str]) -> UserRead:
    read = UserRead.model_validate(user)
    read.roles = list(roles)
    return read
