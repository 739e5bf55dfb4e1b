"""The risk policy: which action a sign-in gets, and what `mfa` becomes for an account with
no factor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from globeguard.account.stepup.policy import (
    SEVERITY,
    Action,
    Method,
    Plan,
    decide,
    methods_offered,
    plan,
    refusal_code,
)
from globeguard.settings import RiskSettings
from globeguard.travel.detect import Grade

ACTIONS = ["allow", "notify", "mfa", "deny"]


def risk(**values: str) -> RiskSettings:
    return RiskSettings(**values)


@pytest.mark.parametrize(
    ("grade", "new_country", "settings", "expected"),
    [
        # Defaults: suspicious → notify, impossible → mfa, new country → allow.
        (Grade.NONE, False, {}, Action.ALLOW),
        (Grade.PLAUSIBLE, False, {}, Action.ALLOW),
        (Grade.UNVERIFIABLE, False, {}, Action.ALLOW),
        (Grade.SUSPICIOUS, False, {}, Action.NOTIFY),
        (Grade.IMPOSSIBLE, False, {}, Action.MFA),
        (Grade.PLAUSIBLE, True, {}, Action.ALLOW),
        # The most severe of the risks that apply.
        (Grade.SUSPICIOUS, True, {"on_new_country": "mfa"}, Action.MFA),
        (Grade.IMPOSSIBLE, True, {"on_new_country": "deny"}, Action.DENY),
        (Grade.IMPOSSIBLE, True, {"on_new_country": "notify"}, Action.MFA),
        (Grade.PLAUSIBLE, True, {"on_new_country": "notify"}, Action.NOTIFY),
        (Grade.SUSPICIOUS, False, {"on_suspicious": "deny"}, Action.DENY),
        (Grade.IMPOSSIBLE, False, {"on_suspicious": "deny"}, Action.MFA),
        (Grade.IMPOSSIBLE, False, {"on_impossible": "allow"}, Action.ALLOW),
        # A risk that does not apply never counts, however severe its action.
        (Grade.PLAUSIBLE, False, {"on_new_country": "deny", "on_impossible": "deny"}, Action.ALLOW),
    ],
)
def test_decide(grade, new_country, settings, expected):
    assert decide(grade, new_country, risk(**settings)) is expected


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, Action.MFA),
        ({"impossible_travel": "deny"}, Action.DENY),
        ({"impossible_travel": "allow"}, Action.ALLOW),
        # The new setting wins over the one it replaces when both are set.
        ({"impossible_travel": "deny", "on_impossible": "notify"}, Action.NOTIFY),
    ],
)
def test_the_replaced_impossible_travel_setting_still_counts(settings, expected):
    assert decide(Grade.IMPOSSIBLE, False, risk(**settings)) is expected


@pytest.mark.parametrize(
    ("grade", "new_country", "settings", "code"),
    [
        (Grade.IMPOSSIBLE, False, {"on_impossible": "deny"}, "impossible_travel"),
        (Grade.SUSPICIOUS, False, {"on_suspicious": "deny"}, "suspicious_travel"),
        (Grade.PLAUSIBLE, True, {"on_new_country": "deny"}, "new_country"),
        (Grade.IMPOSSIBLE, True, {"on_new_country": "deny"}, "new_country"),
    ],
)
def test_refusal_code_names_the_risk_that_denied(grade, new_country, settings, code):
    assert refusal_code(grade, new_country, risk(**settings)) == code


@pytest.mark.parametrize(
    ("has_totp", "verified_email", "fallback", "expected"),
    [
        (True, True, "deny", Plan(Action.MFA, Method.TOTP)),
        (True, False, "deny", Plan(Action.MFA, Method.TOTP)),
        (False, True, "deny", Plan(Action.MFA, Method.EMAIL)),
        (False, False, "allow", Plan(Action.ALLOW)),
        (False, False, "notify", Plan(Action.NOTIFY)),
        (False, False, "deny", Plan(Action.DENY)),
    ],
)
def test_mfa_asks_for_the_factor_the_account_has_else_falls_back(
    has_totp, verified_email, fallback, expected
):
    assert plan(
        Action.MFA, has_totp=has_totp, verified_email=verified_email, fallback=fallback
    ) == (expected)


@pytest.mark.parametrize("action", [Action.ALLOW, Action.NOTIFY, Action.DENY])
def test_other_actions_need_no_factor(action):
    assert plan(action, has_totp=False, verified_email=False, fallback="deny") == Plan(action)


def test_methods_offered():
    assert methods_offered(Method.TOTP) == ["totp", "recovery_code"]
    assert methods_offered(Method.EMAIL) == ["email"]


@given(
    grade=st.sampled_from(list(Grade)),
    new_country=st.booleans(),
    suspicious=st.sampled_from(ACTIONS),
    impossible=st.sampled_from(ACTIONS),
    country=st.sampled_from(ACTIONS),
)
def test_the_result_is_never_weaker_than_any_action_that_applies(
    grade, new_country, suspicious, impossible, country
):
    settings = risk(on_suspicious=suspicious, on_impossible=impossible, on_new_country=country)
    applicable = [Action.ALLOW]
    if grade is Grade.SUSPICIOUS:
        applicable.append(Action(suspicious))
    if grade is Grade.IMPOSSIBLE:
        applicable.append(Action(impossible))
    if new_country:
        applicable.append(Action(country))
    result = decide(grade, new_country, settings)
    assert result in applicable
    assert all(SEVERITY[result] >= SEVERITY[action] for action in applicable)


def test_the_fallback_cannot_be_notify():
    # Whoever reaches the fallback has no verified address: a notice would go nowhere trusted.
    with pytest.raises(ValidationError):
        RiskSettings(mfa_fallback="notify")  # type: ignore[arg-type]
    assert RiskSettings(mfa_fallback="deny").mfa_fallback == "deny"
