"""The offline list of the most common passwords."""

from __future__ import annotations

import pytest
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from globeguard.account.common_passwords import TOP, common_passwords, is_common
from tests.helpers import STRONG


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "123456",
        "12345678",
        "qwerty",
        "iloveyou",
        "PASSWORD",  # any case
        "Password1",  # listed as "password1"
        "QwErTy123",
        "password!",  # decorations appended to a listed one
        "monkey2024",
        "letmein!!",
        "baseball7461",  # ...four are within it
        "Football#1",
        "trustno1?",
    ],
)
def test_common_passwords_are_refused(password: str):
    assert is_common(password)


@pytest.mark.parametrize(
    "password",
    [
        STRONG,
        "correct horse battery staple",
        "monkey dragon shadow master",  # listed words, but several of them
        "Tr0ub4dor&3",
        "2024monkey",  # only trailing decorations are stripped
        "monkey-2024",  # "-" is no decoration: a separator makes a passphrase
        "baseball74615",  # five appended digits: past the decoration limit...
        "passwordpassword",
        "Pässwörd-Ünïcode-77",
    ],
)
def test_other_passwords_pass(password: str):
    assert not is_common(password)


def test_the_list_is_the_head_of_zxcvbns_ranking():
    ranked = FREQUENCY_LISTS["passwords"]
    assert len(common_passwords()) == TOP
    assert is_common(ranked[TOP - 1])
    # The next one down is not on the list (zxcvbn's score still judges it).
    assert ranked[TOP] not in common_passwords()
    assert common_passwords() is common_passwords()  # built once
