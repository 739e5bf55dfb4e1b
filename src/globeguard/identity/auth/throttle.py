"""Sign-in throttling: fair to the victim, costly to the guesser.

Failures are counted per (identifier, client address) and per address. Ten failures for one
account from one address lock that pair for 15 minutes (Auth0's default), so an attacker
elsewhere cannot lock the real user out (FusionAuth's per-identity lockout can); a hundred
failures from one address in an hour stop that address whatever it tries. Unknown usernames
count too, so spraying is throttled like guessing. A locked attempt is refused before the
password is hashed, so it costs no argon2 time. A success clears its pair.
"""

from __future__ import annotations

import hashlib

from globeguard.adapters.kv.port import Counters
from globeguard.kit.errors import TooManyRequests
from globeguard.settings import AuthSettings


def _pair_key(identifier: str, ip: str | None) -> str:
    # Hashed: the store (Redis) should not hold usernames and addresses in the clear.
    digest = hashlib.sha256(f"{identifier.strip().lower()}|{ip}".encode()).hexdigest()[:32]
    return f"signin:pair:{digest}"


def _ip_key(ip: str | None) -> str:
    return f"signin:ip:{hashlib.sha256(str(ip).encode()).hexdigest()[:32]}"


class SigninThrottle:
    def __init__(self, counters: Counters, settings: AuthSettings) -> None:
        self.counters = counters
        self.settings = settings

    async def check(self, identifier: str, ip: str | None) -> None:
        """Refuse (429 with Retry-After) while the pair or the address is locked."""
        limits = (
            (_pair_key(identifier, ip), self.settings.lockout_threshold),
            (_ip_key(ip), self.settings.ip_failure_limit),
        )
        for key, limit in limits:
            count, left = await self.counters.peek(key)
            if limit and count >= limit:
                raise TooManyRequests(int(left) + 1, "too many failed sign-ins; try again later")

    async def failed(self, identifier: str, ip: str | None) -> None:
        await self.counters.hit(
            _pair_key(identifier, ip), self.settings.lockout_window.total_seconds()
        )
        await self.counters.hit(_ip_key(ip), self.settings.ip_failure_window.total_seconds())

    async def succeeded(self, identifier: str, ip: str | None) -> None:
        await self.counters.reset(_pair_key(identifier, ip))
