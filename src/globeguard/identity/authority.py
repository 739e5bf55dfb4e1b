"""The one authorization rule, as pure functions over sets of scopes.

A request may do what its *effective permissions* allow: the owner's grants ∩ the presenting
credential's scopes (`Principal.scopes` already holds that intersection). Anything that hands
out permissions — an API key, a machine client, a role or a role assignment — may hand out only
a subset of the presenting credential's effective permissions, so no credential can grow."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol

from globeguard.identity.permissions import ALL_PERMISSIONS
from globeguard.kit.errors import Forbidden


class Presenter(Protocol):
    """The credential asking (a Principal): its effective permissions and its user, if any."""

    @property
    def scopes(self) -> frozenset[str]: ...

    @property
    def user_id(self) -> uuid.UUID | None: ...


def beyond(presenter: Iterable[str], requested: Iterable[str]) -> list[str]:
    """The requested scopes the presenter does not hold, sorted."""
    held = set(presenter)
    return sorted({s for s in requested if s not in held})


def ensure_grantable(presenter: Iterable[str], requested: Iterable[str], what: str) -> None:
    """Raises 403 `scope_not_allowed` when `requested` exceeds what the presenter holds."""
    missing = beyond(presenter, requested)
    if missing:
        raise Forbidden(
            f"cannot grant {what} beyond this credential's own permissions: {', '.join(missing)}",
            code="scope_not_allowed",
            scopes=missing,
        )


def acts_as_admin(presenter: Iterable[str]) -> bool:
    """Holding every permission is what the built-in `admin` role grants; only such a
    credential may change an admin's account, by any path."""
    return set(presenter) >= ALL_PERMISSIONS


def ensure_may_change(presenter: Iterable[str], target_is_admin: bool) -> None:
    if target_is_admin and not acts_as_admin(presenter):
        raise Forbidden(
            "changing an admin's account needs a credential holding every permission",
            code="admin_target",
        )
