"""The closed catalogue of event types written to the outbox."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    USER_RESTORED = "user.restored"
    USER_ERASED = "user.erased"
    USER_BLOCKED = "user.blocked"
    USER_UNBLOCKED = "user.unblocked"
    SIGNIN_SUCCEEDED = "user.signin.succeeded"
    SIGNIN_FAILED = "user.signin.failed"
    SIGNIN_SUSPICIOUS = "user.signin.suspicious"
    LOGOUT = "user.logout"
    LOGOUT_ALL = "user.logout_all"
    REFRESH_REUSE_DETECTED = "user.refresh_token.reused"
    PASSWORD_CHANGED = "user.password_changed"  # noqa: S105 - an event name
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    ROLE_ASSIGNED = "role.assigned"
    ROLE_REMOVED = "role.removed"
    ROLE_CREATED = "role.created"
    ROLE_UPDATED = "role.updated"
    ROLE_DELETED = "role.deleted"
    CLIENT_CREATED = "client.created"
    CLIENT_REVOKED = "client.revoked"
    SIGNING_KEY_ROTATED = "signing_key.rotated"
    USER_INGESTED = "user.ingested"
    # A login graded suspicious or impossible, when it arrives or when a re-grade raises it,
    # whichever system reported it; and one whose flag a re-grade or a review lowered.
    LOGIN_FLAGGED = "login.flagged"
    LOGIN_CLEARED = "login.cleared"
    # An admin's review of a login ("safe" or "compromised"), whatever else it led to.
    LOGIN_REVIEWED = "login.reviewed"
    # An admin reviewed one of the user's logins as not theirs: access revoked, reset required.
    USER_COMPROMISED = "user.compromised"
    # Account security (second factors, step-up, email flows).
    MFA_ENROLLED = "user.mfa.enrolled"
    MFA_REMOVED = "user.mfa.removed"
    MFA_RECOVERY_CODES_REPLACED = "user.mfa.recovery_codes_replaced"
    # A sign-in (or grant, or refresh) asked for a second factor, passed it, or failed it.
    MFA_CHALLENGED = "user.mfa.challenged"
    MFA_SUCCEEDED = "user.mfa.succeeded"
    MFA_FAILED = "user.mfa.failed"
    EMAIL_VERIFIED = "user.email_verified"
    PASSWORD_RESET_REQUESTED = "user.password_reset_requested"  # noqa: S105 - an event name
    PASSWORD_RESET = "user.password_reset"  # noqa: S105 - an event name
    # The user answered a sign-in notice: "yes, this was me" or "no, secure my account".
    LOGIN_CONFIRMED = "login.confirmed"
    LOGIN_DISOWNED = "login.disowned"
