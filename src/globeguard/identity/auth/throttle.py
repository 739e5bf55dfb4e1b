"""Sign-in throttling: fair to the victim, costly to the guesser.

Failures are counted per (identifier, client address), per address and per account. Ten
failures for one account from one address lock that pair for 15 minutes (Auth0's default), so
an attacker elsewhere cannot lock the real user out (FusionAuth's per-identity lockout can); a
hundred failures from one address in an hour stop that address whatever it tries. Guessing
spread over many addresses (50 addresses, 10 guesses each, pass both) meets the account's
ceiling: a hundred failures an hour from addresses the account has never signed in from, after
which only its known addresses may try. The owner on a known address is never refused by it.

Each attempt takes its slots before the password is hashed, in one atomic step per counter,
so however many guesses arrive at once at most the limit reach the hash; a refused attempt
costs no argon2 time and counts for nothing. A failure keeps its slots; a success clears its
pair and gives the other slots back. Unknown usernames take slots and pay for a hash like
known ones, so spraying is throttled like guessing and nothing tells them apart.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from ipaddress import IPv6Address, IPv6Network, ip_address

from globeguard.adapters.kv.port import Counters
from globeguard.kit.errors import TooManyRequests
from globeguard.settings import AuthSettings


def _digest(text: str) -> str:
    # Hashed: the store (Redis) should not hold usernames and addresses in the clear.
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _pair_key(identifier: str, ip: str | None) -> str:
    return f"signin:pair:{_digest(f'{identifier.strip().lower()}|{ip}')}"


def _ip_key(ip: str | None) -> str:
    return f"signin:ip:{_digest(str(ip))}"


def _account_of(identifier: str, user_id: uuid.UUID | None) -> str:
    """Whom an attempt is against: the user when the identifier names one (so username and
    email share one ceiling), else the identifier as typed, normalised."""
    return f"user:{user_id}" if user_id else f"name:{identifier.strip().lower()}"


def _account_key(account: str) -> str:
    return f"signin:account:{_digest(account)}"


def _known_key(account: str) -> str:
    return f"signin:known:{_digest(account)}"


# Parsing an address costs ~10 us; a sign-in needs its network twice, and busy addresses recur.
@lru_cache(maxsize=4096)
def network_of(ip: str | None) -> str | None:
    """The network a known address stands for: an IPv4 address itself, an IPv6 address's /64
    (one home or phone line; its privacy addresses change daily inside it). None without an
    address, which is then never known."""
    if ip is None:
        return None
    try:
        address = ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, 64), strict=False))
    return str(address)


@lru_cache(maxsize=4096)
def _known_member(ip: str | None) -> str | None:
    # 64 bits of digest: an account keeps at most 100 members, so a collision is a 2^-57 event.
    network = network_of(ip)
    return None if network is None else _digest(network)[:16]


@dataclass(slots=True)
class Attempt:
    """One sign-in attempt and the counter slots it holds."""

    identifier: str
    ip: str | None
    account: str | None = None
    held: list[str] = field(default_factory=list)
    # Worked out once: admitting the attempt and settling it need the same keys.
    pair: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.pair = _pair_key(self.identifier, self.ip)


class SigninThrottle:
    def __init__(self, counters: Counters, settings: AuthSettings) -> None:
        self.counters = counters
        self.settings = settings

    async def admit(self, identifier: str, ip: str | None) -> Attempt:
        """Take a slot for the pair and one for the address, or refuse with 429 (Retry-After)."""
        attempt = Attempt(identifier, ip)
        s = self.settings
        await self._take(attempt, attempt.pair, s.lockout_threshold, s.lockout_window)
        await self._take(attempt, _ip_key(ip), s.ip_failure_limit, s.ip_failure_window)
        return attempt

    async def admit_account(self, attempt: Attempt, user_id: uuid.UUID | None) -> None:
        """From an address the account has never signed in from, also take a slot under the
        account's ceiling, or refuse with 429 (Retry-After). `user_id` is None when the
        identifier names nobody: such an attempt is counted against the identifier alike."""
        account = attempt.account = _account_of(attempt.identifier, user_id)
        ceiling = self.settings.account_failure_ceiling
        if not ceiling or await self._known(attempt):
            return
        await self._take(
            attempt, _account_key(account), ceiling, self.settings.account_failure_window
        )

    async def succeeded(self, attempt: Attempt) -> None:
        """The right password: its pair starts afresh and its other slots are given back."""
        pair = attempt.pair
        await self.counters.reset(pair)
        for key in attempt.held:
            if key != pair:
                await self.counters.refund(key)
        attempt.held.clear()

    async def signed_in(self, attempt: Attempt) -> None:
        """The sign-in went through: its address is known to the account from now on."""
        if attempt.account is not None:
            await self._remember(attempt.account, attempt.ip)

    async def signed_in_after_step_up(self, user_id: uuid.UUID, ip: str | None) -> None:
        """A sign-in held back for a second factor went through when it was proven: its
        address is known to the account from then on, as any sign-in's is."""
        await self._remember(_account_of("", user_id), ip)

    async def _remember(self, account: str, ip: str | None) -> None:
        member = _known_member(ip)
        if member is None:
            return
        await self.counters.remember(
            _known_key(account),
            member,
            self.settings.known_addresses_per_account,
            self.settings.known_address_ttl.total_seconds(),
        )

    async def _known(self, attempt: Attempt) -> bool:
        member = _known_member(attempt.ip)
        if attempt.account is None or member is None:
            return False
        return await self.counters.recalls(_known_key(attempt.account), member)

    async def _take(self, attempt: Attempt, key: str, limit: int, window: timedelta) -> None:
        if not limit:  # 0 disables this limit
            return
        reservation = await self.counters.reserve(key, limit, window.total_seconds())
        if not reservation.taken:
            # Refused before the hash: the attempt tried nothing, so it holds nothing.
            for held in attempt.held:
                await self.counters.refund(held)
            attempt.held.clear()
            raise TooManyRequests(
                int(reservation.left_s) + 1, "too many failed sign-ins; try again later"
            )
        attempt.held.append(key)
