"""The pure TOTP and recovery-code rules: tables of the edges, properties over all steps."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.account.mfa import recovery, totp

# RFC 6238 appendix B's SHA-1 key ("12345678901234567890"), and its 8-digit vectors' last six.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
SECRET = pyotp.random_base32()
steps = st.integers(min_value=2, max_value=2**40)


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")],
)
def test_codes_match_rfc_6238_vectors(unix_time, expected):
    assert totp.code_at(RFC_SECRET, totp.step_at(unix_time)) == expected


@pytest.mark.parametrize(
    ("unix_time", "step"),
    [(0, 0), (29.999, 0), (30, 1), (59, 1), (60, 2), (1_700_000_000, 56666666)],
)
def test_step_boundaries(unix_time, step):
    assert totp.step_at(unix_time) == step


@pytest.mark.parametrize(
    ("offset", "last_step", "accepted"),
    [
        (0, None, True),
        (-1, None, True),  # the phone is up to 30 s behind
        (1, None, True),  # or ahead
        (-2, None, False),
        (2, None, False),
        (0, -1, True),  # a later step than the last one used
        (0, 0, False),  # the same step again: a replay
        (-1, 0, False),  # an older code after a newer one was used
        (1, 0, True),
        (0, 5, False),  # a step used "in the future" (clock moved back) blocks older ones
    ],
)
def test_matching_step_table(offset, last_step, accepted):
    now = 1_000_000
    last = None if last_step is None else now + last_step
    code = totp.code_at(SECRET, now + offset)
    found = totp.matching_step(SECRET, code, now, last)
    assert (found == now + offset) if accepted else found is None


@given(now=steps, offset=st.integers(min_value=-1, max_value=1))
def test_a_code_within_the_window_is_found_at_its_step(now, offset):
    code = totp.code_at(SECRET, now + offset)
    found = totp.matching_step(SECRET, code, now, None)
    # Another step in the window may share the code (1 in a million); the later one wins.
    assert found is not None and found >= now + offset


@given(now=steps, offset=st.integers(min_value=-1, max_value=1))
def test_once_a_step_is_used_its_code_never_matches_again(now, offset):
    code = totp.code_at(SECRET, now + offset)
    used = totp.matching_step(SECRET, code, now, None)
    assert used is not None
    for later_now in (now, now + 1):
        again = totp.matching_step(SECRET, code, later_now, used)
        assert again is None or again > used


@given(now=steps, last=st.one_of(st.none(), steps))
def test_candidates_are_in_the_window_and_after_the_last_used(now, last):
    candidates = totp.candidate_steps(now, last)
    assert all(abs(step - now) <= totp.WINDOW for step in candidates)
    assert all(last is None or step > last for step in candidates)
    assert len(candidates) == len([s for s in range(now - 1, now + 2) if last is None or s > last])


@pytest.mark.parametrize(
    "text",
    ["12345", "1234567", "12345a", "١٢٣٤٥٦", "123\x00456", "", "      ", "+12345", "12 34 5"],
)
def test_what_is_not_six_ascii_digits_never_matches(text):
    assert totp.matching_step(SECRET, totp.normalise(text), 1000, None) is None


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("123 456", "123456"), (" 123-456 ", "123456"), ("ABCD-efgh-IJKL", "abcdefghijkl")],
)
def test_normalise_drops_spaces_dashes_and_case(typed, meant):
    assert totp.normalise(typed) == meant


def test_new_secret_is_160_bits_of_base32():
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20
    assert secret != totp.new_secret()


def test_otpauth_uri_spells_out_every_parameter():
    uri = totp.otpauth_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "ann.o-k_1")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/Globeguard:ann.o-k_1"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query == {
        "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "issuer": "Globeguard",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }
    # An authenticator library reads it back as the same key.
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" and parsed.issuer == "Globeguard"


def test_recovery_codes_are_grouped_base32_with_60_bits():
    codes = recovery.new_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(recovery.ALPHABET)
    assert recovery.LENGTH * 5 >= 60


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("abcd-efgh-ijkl", "abcdefghijkl"),
        ("ABCD EFGH IJKL", "abcdefghijkl"),
        ("abcdefghijkl", "abcdefghijkl"),
        (" abcd - efgh - ijkl ", "abcdefghijkl"),
        ("abcd-efgh-ijk", None),  # one short
        ("abcd-efgh-ijklm", None),  # one long
        ("abcd-efgh-ijk1", None),  # 1 is not base32
        ("abcd-efgh-ijk\x00", None),
        ("123456", None),  # a TOTP code
    ],
)
def test_recovery_code_canonical_form(typed, canonical):
    assert recovery.canonical(typed) == canonical


def test_recovery_digest_is_bound_to_the_account():
    code = "abcdefghijkl"
    one, other = uuid.uuid4(), uuid.uuid4()
    assert recovery.digest(one, code) != recovery.digest(other, code)
    assert len(recovery.digest(one, code)) == 64
