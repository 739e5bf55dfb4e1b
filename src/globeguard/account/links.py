"""What the account emails link to, and the one answer every single-use link gives when it
does not work.

Links point at the dashboard with the token after `#`, so it never reaches a server log, a
proxy or a Referer header; the page (or a client of the API) POSTs it:

    <public>/dashboard/#/verify-email?token=ggv_…              POST /api/v1/auth/verify-email
    <public>/dashboard/#/reset-password?token=ggr_…            POST /api/v1/auth/password/reset
    <public>/dashboard/#/login-feedback?token=ggf_…&answer=yes POST /api/v1/auth/login-feedback
    <public>/dashboard/#/login-feedback?token=ggf_…&answer=no

A token that is unknown, expired, used, replaced by a newer one, meant for another purpose
or bound to an email the account no longer has is refused alike: 400 `invalid_token`, with a
detail that does not say which.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from globeguard.kit.crypto import sha256_hex
from globeguard.kit.errors import BadRequest

INVALID_TOKEN = "invalid_token"  # noqa: S105 - a problem code

VERIFY_EMAIL_PAGE = "/dashboard/#/verify-email"
RESET_PASSWORD_PAGE = "/dashboard/#/reset-password"  # noqa: S105 - a path
FORGOT_PASSWORD_PAGE = "/dashboard/#/forgot-password"  # noqa: S105 - a path
LOGIN_FEEDBACK_PAGE = "/dashboard/#/login-feedback"


def page(path: str, **query: str) -> str:
    """`path` with its query (the part after `#`, which browsers do not send)."""
    return f"{path}?{urlencode(query)}" if query else path


class InvalidToken(BadRequest):
    code, title = INVALID_TOKEN, "Invalid token"

    def __init__(self, *, keep_changes: bool = False) -> None:
        # keep_changes: the token was used up by this request, and stays so.
        super().__init__(
            "this link does not work: it may have expired, been used or been replaced by a "
            "newer one; ask for a new one",
            keep_changes=keep_changes,
        )


def email_binding(email_key: str) -> dict[str, Any]:
    """What a token carries of the address it was mailed to: a digest, not the address."""
    return {"email": sha256_hex(email_key)}


def still_bound(data: dict[str, Any], email_key: str | None) -> bool:
    """The account still has the address the token was mailed to."""
    bound = data.get("email")
    if not isinstance(bound, str) or email_key is None:
        return False
    return hmac.compare_digest(bound, sha256_hex(email_key))
