"""Event-type filters with wildcards, matched segment by segment on the dots of a type.

    user.created        that type only
    user.*              one segment: user.created, user.deleted — not user.signin.failed
    user.**             one or more segments: every user.… type
    **                  everything
    *.created           user.created, client.created

`**` may only end a pattern: a middle `**` would make matching a search, for no use we know.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEGMENT = re.compile(r"^(\*\*|\*|[a-z0-9_]+)$")
MAX_PATTERN_LENGTH = 128


class InvalidPattern(ValueError):
    pass


def validate(pattern: str) -> str:
    if not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"pattern must be 1-{MAX_PATTERN_LENGTH} characters")
    segments = pattern.split(".")
    for index, segment in enumerate(segments):
        if not _SEGMENT.match(segment):
            raise InvalidPattern(f"bad segment {segment!r} in {pattern!r}")
        if segment == "**" and index != len(segments) - 1:
            raise InvalidPattern(f"'**' may only end a pattern: {pattern!r}")
    return pattern


def matches(pattern: str, event_type: str) -> bool:
    wanted = pattern.split(".")
    actual = event_type.split(".")
    for index, segment in enumerate(wanted):
        if segment == "**":
            return len(actual) > index
        if index >= len(actual):
            return False
        if segment != "*" and segment != actual[index]:
            return False
    return len(actual) == len(wanted)


def matches_any(patterns: Iterable[str], event_type: str) -> bool:
    return any(matches(p, event_type) for p in patterns)
