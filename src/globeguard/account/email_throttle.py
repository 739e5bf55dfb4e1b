"""How many emails the account flows send: per account and per address, per hour
(`GLOBEGUARD_ACCOUNT__EMAIL_REQUESTS_PER_HOUR`), and how many forgot-password requests one
caller address makes. Counted in the one counter store (memory, or Redis shared by every
process), each check one atomic reservation, so a burst cannot pass the limit.

Only the caller's address is ever refused out loud (429): a refused address or account
would tell the caller that it exists. Past those limits, a request is answered as usual and
no mail goes out.
"""

from __future__ import annotations

import uuid

from globeguard.adapters.kv.port import Counters, Reservation
from globeguard.kit.crypto import sha256_hex
from globeguard.kit.errors import TooManyRequests
from globeguard.settings import AccountSettings

HOUR_S = 3600.0
# One caller address may ask for this many times an account's hourly emails: enough for a
# household or an office behind one address, far too few to spray an address book.
CALLER_FACTOR = 4


def _key(kind: str, scope: str, value: str) -> str:
    # Hashed: the counter store (Redis) should not hold addresses in the clear.
    return f"mail:{kind}:{scope}:{sha256_hex(value)[:32]}"


class EmailThrottle:
    def __init__(self, counters: Counters, settings: AccountSettings) -> None:
        self.counters = counters
        self.settings = settings

    async def _take(self, key: str, limit: int) -> Reservation:
        return await self.counters.reserve(key, limit, HOUR_S)

    async def account(self, kind: str, user_id: uuid.UUID) -> bool:
        """One more `kind` email for the account, if its hour allows."""
        per_hour = self.settings.email_requests_per_hour
        return (await self._take(_key(kind, "user", str(user_id)), per_hour)).taken

    async def address(self, kind: str, address: str) -> bool:
        """One more `kind` request naming `address` (an email or a username, as typed)."""
        per_hour = self.settings.email_requests_per_hour
        return (await self._take(_key(kind, "to", address.strip().lower()), per_hour)).taken

    async def caller(self, kind: str, ip: str | None) -> None:
        """One more request from the caller's address, or 429 with Retry-After."""
        limit = self.settings.email_requests_per_hour * CALLER_FACTOR
        _refuse(await self._take(_key(kind, "ip", str(ip)), limit), "from this address")

    async def account_or_429(self, kind: str, user_id: uuid.UUID) -> None:
        """For a signed-in caller, who may be told: one more email, or 429."""
        per_hour = self.settings.email_requests_per_hour
        _refuse(await self._take(_key(kind, "user", str(user_id)), per_hour), "for this account")


def _refuse(reservation: Reservation, what: str) -> None:
    if not reservation.taken:
        raise TooManyRequests(int(reservation.left_s) + 1, f"too many emails {what}; try later")
