"""What a risky sign-in does, from its travel verdict and the account's factors. Pure.

Each risk that applies to a sign-in (a suspicious or impossible journey, a country none of the
account's known places are in) names an action in `RiskSettings`; the sign-in gets the most
severe of them: deny > mfa > notify > allow. A sign-in no risk applies to is allowed.

`mfa` needs a factor to ask for: the authenticator app when the user has one (its recovery
codes work too), else a 6-digit code emailed to a verified address, else none, and then
`mfa_fallback` decides (allow or deny), so an account with no factor is never locked
out by a policy it cannot satisfy unless the operator chose that.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from globeguard.settings import RiskSettings
from globeguard.travel.detect import Grade


class Action(StrEnum):
    ALLOW = "allow"
    NOTIFY = "notify"
    MFA = "mfa"
    DENY = "deny"


class Method(StrEnum):
    """How a step-up is answered."""

    TOTP = "totp"
    EMAIL = "email"


SEVERITY = {Action.ALLOW: 0, Action.NOTIFY: 1, Action.MFA: 2, Action.DENY: 3}
# What a refused sign-in's problem is called, by the risk that refused it.
IMPOSSIBLE_TRAVEL = "impossible_travel"
SUSPICIOUS_TRAVEL = "suspicious_travel"
NEW_COUNTRY = "new_country"


def risks(grade: Grade, new_country: bool, settings: RiskSettings) -> list[tuple[str, Action]]:
    """Each risk that applies, with the action the settings give it."""
    found = []
    if grade is Grade.IMPOSSIBLE:
        found.append((IMPOSSIBLE_TRAVEL, Action(settings.on_impossible)))
    elif grade is Grade.SUSPICIOUS:
        found.append((SUSPICIOUS_TRAVEL, Action(settings.on_suspicious)))
    if new_country:
        found.append((NEW_COUNTRY, Action(settings.on_new_country)))
    return found


def decide(grade: Grade, new_country: bool, settings: RiskSettings) -> Action:
    """The most severe action of the risks that apply; allow when none does."""
    return max(
        (action for _, action in risks(grade, new_country, settings)),
        default=Action.ALLOW,
        key=SEVERITY.__getitem__,
    )


def refusal_code(grade: Grade, new_country: bool, settings: RiskSettings) -> str:
    """The problem code of a denied sign-in: the first risk whose action is deny."""
    for name, action in risks(grade, new_country, settings):
        if action is Action.DENY:
            return name
    return IMPOSSIBLE_TRAVEL


@dataclass(frozen=True, slots=True)
class Plan:
    """What happens to the sign-in: the action, and for `mfa` the factor asked for."""

    action: Action
    method: Method | None = None


def plan(action: Action, *, has_totp: bool, verified_email: bool, fallback: str) -> Plan:
    """`action` once the account's factors are known: `mfa` with the authenticator when there
    is one, else an emailed code to a verified address, else the fallback action."""
    if action is not Action.MFA:
        return Plan(action)
    if has_totp:
        return Plan(Action.MFA, Method.TOTP)
    if verified_email:
        return Plan(Action.MFA, Method.EMAIL)
    return Plan(Action(fallback))


def methods_offered(method: Method) -> list[str]:
    """What the client may present for a step-up by `method` (the problem's `mfa_methods`)."""
    return ["totp", "recovery_code"] if method is Method.TOTP else ["email"]
