"""Password hashing: argon2id (OWASP m=19 MiB, t=2, p=1) with bcrypt accepted for imports.

Hashing is CPU-bound (~17 ms per verify here), so it runs on a pool of `concurrency` threads
of its own: each argon2 verify holds 19 MiB, and more threads than cores only queue inside the
CPU. Work waits in the pool's own queue, so a thread that finishes a hash starts the next
waiting one at once. A limiter acquired on the event loop (anyio's to_thread) left the thread
idle until the loop had resumed the finished request, released the slot and resumed the next
one: under sign-in load here the hash threads were busy 91-93% of the time that way, 95-99%
with the pool's queue.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import bcrypt
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
# bcrypt only ever looked at the first 72 bytes; legacy hashes were made that way.
BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    # A new hash to store: set when the stored one is bcrypt or outdated argon2 parameters.
    upgraded_hash: str | None = None


@cache
def _timing_equaliser(time_cost: int, memory_kib: int) -> str:
    """A hash with these parameters, made once per process (a hash costs ~17-40 ms; a
    process that builds its services again, as the tests do for each app, need not pay it
    again). It verifies nothing: only its cost matters."""
    hasher = Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID)
    return hasher.hash("globeguard-timing-equaliser")


class PasswordHasher:
    def __init__(self, concurrency: int, *, memory_kib: int = 19 * 1024, time_cost: int = 2):
        self._argon2 = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        # Unknown users are verified against this, so they cost as long as known ones and
        # response time does not reveal which usernames exist.
        self._dummy_hash = _timing_equaliser(time_cost, memory_kib)

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._argon2.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> Verification:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.verify_sync, stored_hash, password)

    def verify_sync(self, stored_hash: str | None, password: str) -> Verification:
        if stored_hash is None:
            self._verify_argon2(self._dummy_hash, password)
            return Verification(ok=False)
        if stored_hash.startswith(BCRYPT_PREFIXES):
            ok = self._verify_bcrypt(stored_hash, password)
            return Verification(ok=ok, upgraded_hash=self._argon2.hash(password) if ok else None)
        if not self._verify_argon2(stored_hash, password):
            return Verification(ok=False)
        upgraded = (
            self._argon2.hash(password) if self._argon2.check_needs_rehash(stored_hash) else None
        )
        return Verification(ok=True, upgraded_hash=upgraded)

    def _verify_argon2(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    @staticmethod
    def _verify_bcrypt(stored_hash: str, password: str) -> bool:
        candidate = password.encode()[:BCRYPT_MAX_BYTES]
        try:
            return bcrypt.checkpw(candidate, stored_hash.encode())
        except ValueError:
            return False
