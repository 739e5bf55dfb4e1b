"""What each policy action does to a risky sign-in: deny, notify, allow; the fallback for an
account with no factor; the new-country risk; the setting `on_impossible` replaced."""

from __future__ import annotations

from tests.account.stepup.conftest import BERLIN_IP, LYON_IP, PARIS_IP, TOKYO_IP


async def test_deny_refuses_even_a_user_with_an_authenticator(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "deny"})
    user = await gw.signup("gaston")
    await gw.enrol_totp(user)
    await gw.signin("gaston", PARIS_IP)
    clock.advance(hours=1)
    refused = await gw.signin("gaston", TOKYO_IP, status=403)
    assert refused["code"] == "impossible_travel"
    assert "mfa_token" not in refused
    _, tokyo = await gw.logins(user["user_id"])
    assert (tokyo.success, tokyo.failure_reason) == (False, "impossible_travel")
    assert await gw.audit("user.mfa.challenged", user["user_id"]) == []


async def test_the_replaced_impossible_travel_setting_still_denies(
    open_gateway, clock, monkeypatch
):
    monkeypatch.setenv("GLOBEGUARD_RISK__IMPOSSIBLE_TRAVEL", "deny")
    gw = await open_gateway()
    assert gw.container.settings.risk.on_impossible == "deny"
    user = await gw.signup("hector")
    await gw.enrol_totp(user)
    await gw.signin("hector", PARIS_IP)
    clock.advance(hours=1)
    assert (await gw.signin("hector", TOKYO_IP, status=403))["code"] == "impossible_travel"


async def test_allow_lets_it_through(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "allow"})
    user = await gw.signup("ines")
    await gw.enrol_totp(user)
    await gw.signin("ines", PARIS_IP)
    clock.advance(hours=1)
    assert (await gw.signin("ines", TOKYO_IP))["access_token"]
    _, tokyo = await gw.logins(user["user_id"])
    assert (tokyo.success, tokyo.verdict, tokyo.review) == (True, "impossible", None)


async def test_notify_lets_it_through_and_queues_was_this_you(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "notify"})
    user = await gw.signup("jules", email="jules@example.com")
    await gw.verify_email(user["user_id"])
    await gw.signin("jules", PARIS_IP)
    assert await gw.mails("jules@example.com") == []
    clock.advance(hours=1)
    assert (await gw.signin("jules", TOKYO_IP))["access_token"]
    (notice,) = await gw.mails("jules@example.com")
    assert notice.kind == "signin_notice"


async def test_an_account_with_no_factor_falls_back_to_allow_by_default(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("karim", email="karim@example.com")  # not verified: no factor
    await gw.signin("karim", PARIS_IP)
    clock.advance(hours=1)
    assert (await gw.signin("karim", TOKYO_IP))["access_token"]
    assert await gw.audit("user.mfa.challenged", user["user_id"]) == []
    assert await gw.mails("karim@example.com") == []


async def test_the_fallback_may_deny(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa", "mfa_fallback": "deny"})
    user = await gw.signup("louise")
    await gw.signin("louise", PARIS_IP)
    clock.advance(hours=1)
    assert (await gw.signin("louise", TOKYO_IP, status=403))["code"] == "impossible_travel"
    # With a factor the same sign-in is asked for it instead.
    await gw.enrol_totp(user)
    clock.advance(seconds=30)
    assert (await gw.signin("louise", TOKYO_IP, status=401))["code"] == "mfa_required"


async def test_a_new_country_is_judged_against_the_known_places(open_gateway, clock):
    gw = await open_gateway(risk={"on_new_country": "deny"})
    user = await gw.signup("marius")
    await gw.signin("marius", PARIS_IP)  # no known place before it: not a new country
    clock.advance(hours=5)
    await gw.signin("marius", LYON_IP)  # France again
    clock.advance(hours=5)
    refused = await gw.signin("marius", BERLIN_IP, status=403)
    assert refused["code"] == "new_country"
    events = await gw.logins(user["user_id"])
    assert [(e.city_name, e.verdict, e.success) for e in events] == [
        ("Paris", "none", True),
        ("Lyon", "plausible", True),
        ("Berlin", "plausible", False),
    ]


async def test_a_new_country_may_ask_for_the_second_factor(open_gateway, clock):
    gw = await open_gateway(risk={"on_new_country": "mfa"})
    user = await gw.signup("nadia")
    app, _ = await gw.enrol_totp(user)
    await gw.signin("nadia", PARIS_IP)
    clock.advance(hours=5)
    challenged = await gw.signin("nadia", BERLIN_IP, status=401)
    assert (await gw.verify(challenged["mfa_token"], gw.code(app), BERLIN_IP, 200))["access_token"]
    # Germany is one of the account's countries now.
    clock.advance(hours=5)
    assert (await gw.signin("nadia", BERLIN_IP))["access_token"]
