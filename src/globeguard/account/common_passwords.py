"""The most common passwords, refused offline (NIST SP 800-63B §3.1.1.2: compare new
passwords against a list of commonly used ones).

The list is the head of zxcvbn's own frequency-ranked "passwords" list, which ships with the
pinned package, so nothing is downloaded and the list changes only with the pin.
"""

from __future__ import annotations

from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

# The 10,000 most frequent of zxcvbn's 30,000: what online guessing tries first, and as
# many as the sign-in throttle lets through against one account in four days (at most 100
# failures an hour from addresses it never used, by default). Further down, the list is
# mostly ordinary words and names ("sobriety", "volodin"); with the decorations below a
# longer list would start refusing a plain word and a year, which zxcvbn's score judges on
# its own. zxcvbn already scores every entry of its list below the default minimum (its
# guesses are its rank); this list still holds when an operator lowers
# `min_password_score`, and it answers with a code of its own.
TOP = 10_000

# "monkey2024!", "dragon1", "letmein!!": a listed password with up to this many digits or
# symbols appended is what guessing rules try right after the list itself. Only trailing
# ones and only these characters, so a passphrase (several words) never matches: the part
# left must be one whole entry of the list.
MAX_DECORATION = 4
DECORATION = frozenset("0123456789!?.*#@$")


@cache
def common_passwords() -> frozenset[str]:
    """Built once, on first use (about 10,000 short strings)."""
    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"][:TOP])


def is_common(password: str) -> bool:
    """True for a listed password in any case, alone or with a short decoration appended."""
    words = common_passwords()
    folded = password.casefold()
    if folded in words:
        return True
    for cut in range(1, min(MAX_DECORATION, len(folded) - 1) + 1):
        if folded[-cut] not in DECORATION:
            return False
        if folded[:-cut] in words:
            return True
    return False
