"""The rules of a login review as tables: what a review does given the one the login has,
and what a compromise and a new password do to an account (identity.users.lifecycle)."""

from __future__ import annotations

import uuid

import pytest

from globeguard.identity.users.lifecycle import AccountChange, consequences
from globeguard.travel.review import Step, Verdict, next_step


@pytest.mark.parametrize(
    ("current", "verdict", "step"),
    [
        (None, Verdict.SAFE, Step.APPLY),
        (None, Verdict.COMPROMISED, Step.APPLY),
        ("safe", Verdict.SAFE, Step.SAME),
        ("safe", Verdict.COMPROMISED, Step.APPLY),
        ("compromised", Verdict.COMPROMISED, Step.SAME),
        ("compromised", Verdict.SAFE, Step.REFUSE),
    ],
)
def test_a_review_applies_repeats_or_is_refused(current, verdict, step):
    assert next_step(current, verdict) is step


def test_a_compromise_ends_sessions_keys_and_tokens_and_a_new_password_lifts_the_reset():
    taken, reset = uuid.uuid4(), uuid.uuid4()
    plan = consequences(
        [AccountChange(taken, 2, compromised=True), AccountChange(reset, 3, password=True)]
    )
    assert plan.end_sessions == {"compromised": [taken], "password_changed": [reset]}
    assert plan.bump_versions == [taken, reset]
    assert plan.revoke_api_keys == [taken]
    assert plan.clear_password_reset == [reset]
    # The caller records user.compromised with its evidence; a new password its own event.
    assert [type_ for type_, *_ in plan.events] == ["user.password_changed"]


def test_a_password_written_with_a_compromise_keeps_the_reset_required():
    user = uuid.uuid4()
    plan = consequences([AccountChange(user, 2, password=True, compromised=True)])
    assert plan.clear_password_reset == []
    assert plan.end_sessions == {"compromised": [user]}
