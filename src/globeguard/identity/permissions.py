"""The closed list of permissions. Roles grant permissions; tokens and API keys carry scopes,
which are permissions plus `profile` (act on one's own account)."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    USERS_READ = "users:read"
    USERS_WRITE = "users:write"
    USERS_DELETE = "users:delete"
    ROLES_MANAGE = "roles:manage"
    CLIENTS_MANAGE = "clients:manage"
    AUDIT_READ = "audit:read"
    LOGIN_EVENTS_WRITE = "login_events:write"
    ANALYTICS_READ = "analytics:read"
    INGEST = "ingest"
    METRICS_READ = "metrics:read"
    EVENTS_READ = "events:read"
    EVENTS_MANAGE = "events:manage"
    JOBS_MANAGE = "jobs:manage"
    # Reading (export) or writing (import) password hashes: a hash lets its holder sign in
    # as the user wherever the password is reused, or, written, sign in here.
    USERS_PASSWORD_HASHES = "users:password_hashes"  # noqa: S105 - a permission name


# Every signed-in user may read and change their own account.
PROFILE_SCOPE = "profile"

ADMIN_ROLE = "admin"
USER_ROLE = "user"
BUILTIN_ROLES: dict[str, tuple[str, frozenset[Permission]]] = {
    ADMIN_ROLE: ("Full access to every account and setting", frozenset(Permission)),
    USER_ROLE: ("Self-service on one's own account", frozenset()),
}

ALL_PERMISSIONS: frozenset[str] = frozenset(p.value for p in Permission)
ALL_SCOPES: frozenset[str] = frozenset({PROFILE_SCOPE, *ALL_PERMISSIONS})
