"""Reading a peer's `Retry-After` (RFC 9110 §10.2.3), for every client we have: webhook
delivery and the Auth0 connector. A peer's number is hostile input: it is clamped before it
reaches a timedelta, a float sum or a sleep."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A Retry-After is honoured up to this: a day is more than any caller waits for (webhook
# throttling keeps at most 2 x 12 h; an Auth0 job has its own, shorter deadline), and it keeps
# a peer's number, however large, far from what a timedelta or a date can hold.
RETRY_AFTER_MAX_S = 86_400.0
# delay-seconds is digits only; more than this many cannot be a sane delay.
_MAX_DIGITS = 9


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header, within [0, RETRY_AFTER_MAX_S]: delay-seconds, or an
    HTTP-date taken relative to `now` (aware). None when absent or unreadable (a sign, a
    fraction, "inf", "nan", garbage): the caller's own schedule then decides alone."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        if len(text.lstrip("0")) > _MAX_DIGITS:
            return RETRY_AFTER_MAX_S
        return min(float(text), RETRY_AFTER_MAX_S)
    when = _http_date(text)
    if when is None:
        return None
    seconds = (when - now).total_seconds()
    return min(max(0.0, seconds), RETRY_AFTER_MAX_S)


def seconds_until(reset: str | None, now_epoch: float) -> float | None:
    """Seconds until an epoch-seconds reset time (`X-RateLimit-Reset`), clamped like
    parse_retry_after; None when absent or not digits."""
    if not reset or not (reset.isascii() and reset.isdigit()):
        return None
    if len(reset.lstrip("0")) > _MAX_DIGITS + 2:  # beyond year 5138: the clamp decides
        return RETRY_AFTER_MAX_S
    return min(max(0.0, int(reset) - now_epoch), RETRY_AFTER_MAX_S)


def _http_date(text: str) -> datetime | None:
    if len(text) > 64 or not text.isascii():  # an IMF-fixdate is 29 characters
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
