"""Password hashing rules."""

from __future__ import annotations

import asyncio
import threading

import bcrypt
import pytest

from globeguard.identity.passwords import PasswordHasher, Verification


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(concurrency=2)


async def test_argon2id_with_owasp_parameters(hasher):
    stored = await hasher.hash("s3cret-passphrase")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await hasher.verify(stored, "s3cret-passphrase")).ok
    assert not (await hasher.verify(stored, "wrong")).ok


@pytest.mark.parametrize("prefix", ["2a", "2b", "2y"])
async def test_bcrypt_is_accepted_and_upgraded(hasher, prefix):
    legacy = bcrypt.hashpw(b"imported-pass", bcrypt.gensalt(rounds=4)).decode()
    legacy = f"${prefix}${legacy[4:]}"
    verdict = await hasher.verify(legacy, "imported-pass")
    assert verdict.ok and verdict.upgraded_hash and verdict.upgraded_hash.startswith("$argon2id$")
    assert not (await hasher.verify(legacy, "other")).ok


async def test_bcrypt_compares_only_the_first_72_bytes_as_legacy_systems_did(hasher):
    long = "x" * 80
    legacy = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    assert (await hasher.verify(legacy, long)).ok


async def test_unknown_user_costs_a_real_verify(hasher, monkeypatch):
    calls = []
    original = hasher._verify_argon2
    monkeypatch.setattr(hasher, "_verify_argon2", lambda h, p: calls.append(h) or original(h, p))
    assert not (await hasher.verify(None, "anything")).ok
    assert calls == [hasher._dummy_hash]


async def test_outdated_argon2_parameters_are_upgraded(hasher):
    weak = PasswordHasher(concurrency=1, memory_kib=8192, time_cost=1)
    stored = await weak.hash("passphrase-x")
    verdict = await hasher.verify(stored, "passphrase-x")
    assert verdict.ok and verdict.upgraded_hash and "m=19456" in verdict.upgraded_hash


@pytest.mark.parametrize("garbage", ["", "plaintext", "$argon2id$broken", "$2b$bad"])
async def test_corrupt_stored_hash_never_verifies(hasher, garbage):
    assert not (await hasher.verify(garbage, "plaintext")).ok


async def test_a_waiting_verify_starts_while_the_event_loop_is_busy():
    """A hash thread that finishes takes the next waiting verify itself, so the cores keep
    hashing while the event loop is busy with other requests."""
    hasher = PasswordHasher(concurrency=1)
    first_running, release_first, second_running = (threading.Event() for _ in range(3))

    def verify_sync(stored_hash, password):
        if password == "first":
            first_running.set()
            release_first.wait(timeout=10)
        else:
            second_running.set()
        return Verification(ok=True)

    hasher.verify_sync = verify_sync
    first = asyncio.create_task(hasher.verify(None, "first"))
    second = asyncio.create_task(hasher.verify(None, "second"))
    await asyncio.to_thread(first_running.wait, 10)
    # The loop is blocked from here on, as by a long stretch of other requests' work.
    release_first.set()
    started_meanwhile = second_running.wait(timeout=5)
    assert [v.ok for v in await asyncio.gather(first, second)] == [True, True]
    assert started_meanwhile, "the second verify waited for the event loop to start it"
