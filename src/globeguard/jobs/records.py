"""One imported user record (Auth0's bulk-import JSON, Auth0's export NDJSON lines, or our
own export) → the columns of a `user` row, or a readable reason it cannot be one.

Pure: no I/O, so the rules are tested by tables and hypothesis. Field names follow Auth0's
import schema; our own export uses the same names, so an export re-imports unchanged.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from globeguard.adapters.geoip.port import normalise_ip
from globeguard.kit.limits import MAX_BODY_DEPTH, LimitError, check_json, parse_time

# Auth0 user ids ("auth0|64f1…", "google-oauth2|1082…") become stable UUIDs, so a second
# import or sync of the same tenant updates the same rows, and log-stream events name them.
AUTH0_NAMESPACE = uuid.UUID("6c1f7b3e-2d4a-5b8e-9f10-a1b2c3d4e5f6")
USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{2,63}")
_USERNAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
# Deliberately loose: one @, something on both sides, a dot in the domain. Deliverability is
# the source system's business; what we must refuse is text that is not an address at all.
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
# A bcrypt hash in modular crypt format: $2a$/$2b$/$2y$, two-digit cost, 53 characters of
# salt and digest. Auth0 exports and imports these.
BCRYPT_RE = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Our own argon2id hashes, so that an export with `password_hash` re-imports.
ARGON2_RE = re.compile(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")
STATUSES = ("active", "blocked", "deleted")
MAX_NAME = 128
MAX_EMAIL = 320
MAX_COUNT = 2**31 - 1


class RecordError(ValueError):
    """Why one record cannot be imported; the message goes into the job's error report."""


@dataclass(frozen=True, slots=True)
class LastLogin:
    """Where and when the user last signed in at the source, for a login event."""

    ip: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class ImportedUser:
    row: dict[str, Any]
    # Which columns the record actually carried: an upsert changes only those.
    given: frozenset[str]
    last_login: LastLogin | None
    # The record's `user_id` when it is another IdP's id (an Auth0 "auth0|…"), not ours.
    external_id: str | None = None


def user_id_of(external: str) -> uuid.UUID:
    """Our id for a record's `user_id`: the UUID itself when it is one (our own export),
    else a UUID derived from it (an Auth0 id)."""
    try:
        return uuid.UUID(external)
    except ValueError:
        return uuid.uuid5(AUTH0_NAMESPACE, external)


def to_user(record: Any, *, metadata_max_bytes: int, now: datetime) -> ImportedUser:
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    try:  # the same limits as a request body: text, numbers and depth other readers can take
        check_json(record, max_depth=MAX_BODY_DEPTH)
    except LimitError as exc:
        raise RecordError(str(exc)) from None
    row: dict[str, Any] = {}
    given: set[str] = set()
    email = _email(record.get("email"))
    external = _text(record, "user_id", 255)
    if external is None and email is None and record.get("username") is None:
        raise RecordError("a user needs at least one of user_id, email or username")
    username = _username(record.get("username"), email, external)
    if external:
        row["id"] = user_id_of(external)
    else:  # stable across re-imports of the same file, so `upsert` finds the row again
        row["id"] = uuid.uuid5(AUTH0_NAMESPACE, f"email:{email}" if email else f"u:{username}")
    row.update(username=username, username_key=username.lower())
    row.update(email=email, email_key=email.lower() if email else None)
    if "email" in record:
        given.update(("email", "email_key"))
    for field in ("username", "given_name", "family_name", "email_verified", "user_metadata",
                  "app_metadata", "logins_count"):  # fmt: skip
        if field in record:
            given.add(field)
    if "username" in record:
        given.add("username_key")
    row["email_verified"] = _bool(record, "email_verified", default=False)
    row["given_name"] = _text(record, "given_name", MAX_NAME)
    row["family_name"] = _text(record, "family_name", MAX_NAME)
    for field in ("user_metadata", "app_metadata"):
        row[field] = _metadata(record, field, metadata_max_bytes)
    row["password_hash"] = _password_hash(record)
    if row["password_hash"] is not None:
        given.add("password_hash")
    row["status"], row["blocked_at"], row["deleted_at"] = _status(record, now)
    if "status" in record or "blocked" in record:
        given.update(("status", "blocked_at", "deleted_at"))
    row["logins_count"] = _count(record.get("logins_count"))
    row["created_at"] = _time(record, "created_at") or now
    row["updated_at"] = _time(record, "updated_at") or row["created_at"]
    row["last_login_at"] = _time(record, "last_login")
    row["last_login_ip"] = _ip(record.get("last_ip"), "last_ip")
    for field, source in (("last_login_at", "last_login"), ("last_login_ip", "last_ip")):
        if source in record:
            given.add(field)
    foreign = external if external and _foreign(external) else None
    return ImportedUser(row, frozenset(given), _last_login(record, row), foreign)


def _foreign(external: str) -> bool:
    """Whether a record's `user_id` is another IdP's id rather than one of ours."""
    try:
        uuid.UUID(external)
    except ValueError:
        return True
    return False


def _text(record: dict[str, Any], field: str, limit: int) -> str | None:
    value = record.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field}: must be a string")
    if len(value) > limit:
        raise RecordError(f"{field}: longer than {limit} characters")
    return value or None


def _email(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not EMAIL_RE.fullmatch(value):
        raise RecordError("email: not an email address")
    return value


def _username(value: Any, email: str | None, external: str | None) -> str:
    """The record's username, or one made from the email's local part (users sign in by
    email; the username only has to be valid and unique): `ana.lima-3f9a1c2e`, the suffix
    from the user id or email so two `ana.lima`s at different domains stay apart."""
    if value is not None:
        if not isinstance(value, str) or not USERNAME_RE.fullmatch(value):
            raise RecordError("username: 3-64 letters, digits, '.', '_' or '-'")
        return value
    seed = external or email or ""
    local = (email or external or "user").split("@")[0]
    stem = _USERNAME_UNSAFE.sub("-", local).strip("-._")[:48] or "user"
    if not stem[0].isalnum():
        stem = "u" + stem
    return f"{stem}-{hashlib.sha256(seed.encode()).hexdigest()[:8]}"


def _bool(record: dict[str, Any], field: str, *, default: bool) -> bool:
    value = record.get(field, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RecordError(f"{field}: must be true or false")
    return value


def _metadata(record: dict[str, Any], field: str, limit: int) -> dict[str, Any]:
    value = record.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{field}: must be a JSON object")
    size = len(orjson.dumps(value))
    if size > limit:
        raise RecordError(f"{field}: {size} bytes; the limit is {limit}")
    return value


def _password_hash(record: dict[str, Any]) -> str | None:
    custom = record.get("custom_password_hash")
    if custom is not None:
        if not isinstance(custom, dict):
            raise RecordError("custom_password_hash: must be an object")
        algorithm = custom.get("algorithm")
        if algorithm != "bcrypt":
            raise RecordError(
                f"custom_password_hash.algorithm: '{algorithm}' is not supported (only bcrypt)"
            )
        inner = custom.get("hash")
        value = inner.get("value") if isinstance(inner, dict) else None
        return _known_hash(value, "custom_password_hash.hash.value")
    if record.get("password_hash") is None:
        return None
    return _known_hash(record["password_hash"], "password_hash")


def _known_hash(value: Any, field: str) -> str:
    if isinstance(value, str) and (BCRYPT_RE.fullmatch(value) or ARGON2_RE.fullmatch(value)):
        return value
    raise RecordError(f"{field}: not a bcrypt ($2a$/$2b$/$2y$) or argon2id hash")


def _status(record: dict[str, Any], now: datetime) -> tuple[str, datetime | None, None]:
    status = record.get("status")
    if status is None:
        status = "blocked" if _bool(record, "blocked", default=False) else "active"
    if status not in STATUSES:
        raise RecordError(f"status: one of {', '.join(STATUSES)}")
    if status == "deleted":
        raise RecordError("status: deleted users are not imported")
    return status, now if status == "blocked" else None, None


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise RecordError("logins_count: a whole number of at least 0")
    return value


def _time(record: dict[str, Any], field: str) -> datetime | None:
    value = record.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field}: an ISO 8601 time")
    try:
        return parse_time(value)
    except LimitError as exc:
        reason = "an ISO 8601 time" if exc.code == "invalid_time" else str(exc)
        raise RecordError(f"{field}: {reason}") from None


def _ip(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    normalised = normalise_ip(value)
    if normalised is None:
        raise RecordError(f"{field}: not an IP address")
    return normalised


def _last_login(record: dict[str, Any], row: dict[str, Any]) -> LastLogin | None:
    """Where the user last signed in: Auth0's own `last_ip` (set by Auth0, trustworthy), else
    `user_metadata.last_login_ip` as AuthGlobeTrek reads it — a flat dotted key in Auth0's
    export when that field is asked for by name, or nested in `user_metadata`."""
    ip = row["last_login_ip"]
    if ip is None:
        flat = record.get("user_metadata.last_login_ip")
        nested = row["user_metadata"].get("last_login_ip")
        candidate = flat if flat is not None else nested
        ip = normalise_ip(candidate) if candidate is not None else None
    if ip is None:
        return None
    return LastLogin(ip, row["last_login_at"])
