from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from globeguard.kit.crypto import Sealer, random_token, same_digest, sha256_hex
from globeguard.kit.ids import event_id, ulid


def test_sealed_values_open_only_with_the_same_secret_and_purpose():
    sealer = Sealer(b"master")
    sealed = sealer.seal(b"private key", "signing-key")
    assert b"private key" not in sealed.encode()
    assert sealer.open(sealed, "signing-key") == b"private key"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, "other-purpose")
    with pytest.raises(InvalidTag):
        Sealer(b"another").open(sealed, "signing-key")


def test_tokens_are_random_and_digests_compare():
    a, b = random_token(), random_token()
    assert a != b and len(a) >= 43
    assert same_digest(a, sha256_hex(a)) and not same_digest(b, sha256_hex(a))


def test_ulids_sort_by_time_and_are_unique():
    first = ulid()
    ids = [ulid() for _ in range(1000)]
    assert len(set(ids)) == 1000 and len(first) == 26
    assert first[:10] <= ids[-1][:10]
    assert event_id().startswith("evt_")
