"""Breached passwords, asked of a k-anonymity range API (the Have I Been Pwned "Pwned
Passwords" protocol). Off unless GLOBEGUARD_ACCOUNT__BREACHED_RANGE_URL is set.

The protocol: the SHA-1 of the password's UTF-8 bytes in uppercase hex; only its first 5
digits leave this server, as `GET <url><prefix>`. The answer lists every breached hash
sharing that prefix as `SUFFIX:COUNT` lines (the other 35 digits and how often it was seen),
hundreds of them, so the service never learns which one we meant. `Add-Padding: true` asks
it to add random suffixes with a count of 0, so that even the response's size says nothing
about the prefix; those lines are not breaches and are skipped.

When the API is down, slow or answers something that is not a range, the password is
allowed (fail open) with one warning logged and counted: sign-up, password change and reset
must not stop working because a third party did. The offline common-password list and the
zxcvbn score still apply, so the worst passwords are refused regardless.

The call is made before any write transaction begins, like the argon2 hash: on SQLite the
writer would otherwise wait up to the timeout for a remote server.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

import anyio
import httpx
from prometheus_client import Counter

from globeguard.kit.errors import Unprocessable
from globeguard.observability.metrics import Metrics

log = logging.getLogger(__name__)

PREFIX_LENGTH = 5
BREACHED_CODE = "password_breached"
CHECKS_TOTAL = "globeguard_breached_password_checks"  # exported with `_total` appended
# A real padded answer is 800-1,000 lines of about 40 bytes; anything far larger is not one
# (and is not read into memory).
MAX_BODY_BYTES = 1024 * 1024
# 35 hex digits, a colon and a count. A count is bounded so that a hostile answer cannot
# make int() work on a huge number.
_LINE = re.compile(r"([0-9A-Fa-f]{35}):([0-9]{1,12})")


class RangeError(ValueError):
    """The answer is not a range: a wrong status, too big, or a line that is no entry."""


@dataclass(frozen=True, slots=True)
class RangeQuery:
    prefix: str  # sent
    suffix: str  # kept here, looked up in the answer


def range_query(password: str) -> RangeQuery:
    # SHA-1 is what the protocol is keyed by; it is never stored or used to protect anything.
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
    return RangeQuery(digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:])


def times_seen_in(body: str, suffix: str) -> int:
    """How often `suffix` was seen according to a range answer (0 when it is absent or only
    a padding line). Raises RangeError on any line that is not an entry."""
    found = 0
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        entry = _LINE.fullmatch(line)
        if entry is None:
            raise RangeError("a line of the answer is not SUFFIX:COUNT")
        if entry[1].upper() == suffix:
            found = int(entry[2])
    return found


def breached_problem(count: int) -> Unprocessable:
    return Unprocessable(
        f"this password has appeared {count:,} times in data breaches, so attackers try it "
        "early; choose a different one",
        code=BREACHED_CODE,
        times_seen=count,
    )


class BreachedPasswords:
    """Asks the range API about one password at a time. `http` is for tests (a transport of
    their own); it is otherwise a pooled client made here."""

    def __init__(
        self,
        url: str,
        timeout: timedelta,
        *,
        metrics: Metrics | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout.total_seconds()
        self.http = http or httpx.AsyncClient(follow_redirects=False)
        self._checks = (
            Counter(
                CHECKS_TOTAL,
                "Breached-password lookups, by outcome (clean, breached, unavailable)",
                ["outcome"],
                registry=metrics.registry,
            )
            if metrics is not None
            else None
        )

    async def check(self, password: str) -> None:
        """Raises a 422 `password_breached` when the API knows the password; returns when it
        does not, or cannot be asked."""
        count = await self.times_seen(password)
        if count:
            raise breached_problem(count)

    async def times_seen(self, password: str) -> int | None:
        """How often the password was seen in breaches; None when the API could not tell."""
        query = range_query(password)
        try:
            # One deadline for the whole exchange: httpx's timeout is per read, and a server
            # trickling bytes would otherwise hold a sign-up for as long as it likes.
            with anyio.fail_after(self.timeout_s):
                body = await self._fetch(query.prefix)
            count = times_seen_in(body, query.suffix)
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            RangeError,
            UnicodeDecodeError,
            TimeoutError,
        ) as exc:
            log.warning(
                "breached-password lookup failed (%s); the password was allowed unchecked",
                _describe(exc),
            )
            self._count("unavailable")
            return None
        self._count("breached" if count else "clean")
        return count

    async def _fetch(self, prefix: str) -> str:
        headers = {"Add-Padding": "true", "User-Agent": "globeguard"}
        async with self.http.stream("GET", self.url + prefix, headers=headers) as response:
            if response.status_code != 200:
                raise RangeError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise RangeError(f"answer over {MAX_BODY_BYTES} bytes")
        return body.decode("utf-8")

    def _count(self, outcome: str) -> None:
        if self._checks is not None:
            self._checks.labels(outcome=outcome).inc()

    async def aclose(self) -> None:
        await self.http.aclose()


def _describe(exc: Exception) -> str:
    """What went wrong, without the request's URL (it ends with the hash prefix)."""
    if isinstance(exc, RangeError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return type(exc).__name__
