"""The step-up journeys from the issue: Paris, then Tokyo an hour later with
`on_impossible=mfa` → `mfa_required` → a wrong code refused → the right code → tokens; the
same with a recovery code and with an emailed code; the place proven by the step-up known
from then on."""

from __future__ import annotations

from tests.account.stepup.conftest import BERLIN_IP, PARIS_IP, TOKYO_IP
from tests.helpers import bearer


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_paris_then_tokyo_needs_the_authenticator(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("amelie")
    app, _ = await gw.enrol_totp(user)
    await gw.signin("amelie", PARIS_IP)
    clock.advance(hours=1)

    challenged = await gw.signin("amelie", TOKYO_IP, status=401)
    assert challenged["code"] == "mfa_required"
    assert challenged["mfa_token"].startswith("ggm_")
    assert challenged["mfa_methods"] == ["totp", "recovery_code"]
    assert challenged["expires_in"] == 300
    assert "access_token" not in challenged

    refused = await gw.verify(challenged["mfa_token"], wrong(gw.code(app)), TOKYO_IP, 401)
    assert refused["code"] == "invalid_code"
    assert refused["attempts_left"] == 4

    signed = await gw.verify(challenged["mfa_token"], gw.code(app), TOKYO_IP, 200)
    assert signed["username"] == "amelie" and signed["user_id"] == user["user_id"]
    assert signed["refresh_token"] and signed["token_type"] == "Bearer"
    me = await gw.me(signed)
    assert me.status_code == 200 and me.json()["username"] == "amelie"
    assert me.json()["logins_count"] == 2  # Paris, and Tokyo once proven

    # The token worked once.
    replay = await gw.verify(challenged["mfa_token"], gw.code(app), TOKYO_IP, 400)
    assert replay["code"] == "invalid_token"

    paris, tokyo = await gw.logins(user["user_id"])
    assert (paris.success, paris.verdict) == (True, "none")
    assert (tokyo.success, tokyo.verdict, tokyo.review) == (True, "impossible", "safe")
    assert tokyo.failure_reason is None

    # Tokyo is a known place now: signing in there again is not challenged.
    clock.advance(minutes=20)
    again = await gw.signin("amelie", TOKYO_IP)
    assert again["access_token"]

    uid = user["user_id"]
    (challenge,) = await gw.audit("user.mfa.challenged", uid)
    assert challenge["payload"]["method"] == "totp"
    assert challenge["payload"]["kind"] == "signin"
    assert challenge["payload"]["login_event"] == tokyo.event_uuid
    (failed,) = await gw.audit("user.mfa.failed", uid)
    assert failed["payload"]["attempts_left"] == 4
    (passed,) = await gw.audit("user.mfa.succeeded", uid)
    assert passed["payload"]["method"] == "totp"
    succeeded = await gw.audit("user.signin.succeeded", uid)
    assert [s["payload"].get("mfa") for s in succeeded] == [None, "totp", None]
    (cleared,) = await gw.audit("login.cleared", uid)
    assert cleared["payload"]["event_uuid"] == tokyo.event_uuid
    assert cleared["actor"] == f"user:{uid}"


async def test_a_recovery_code_completes_it_once(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("basile")
    _, recovery = await gw.enrol_totp(user)
    await gw.signin("basile", PARIS_IP)
    clock.advance(hours=1)

    challenged = await gw.signin("basile", TOKYO_IP, status=401)
    signed = await gw.verify(challenged["mfa_token"], recovery[0], TOKYO_IP, 200)
    assert (await gw.me(signed)).status_code == 200
    (passed,) = await gw.audit("user.mfa.succeeded", user["user_id"])
    assert passed["payload"]["method"] == "recovery_code"

    # Berlin twenty minutes later (impossible again): the same code no longer works.
    clock.advance(minutes=20)
    again = await gw.signin("basile", BERLIN_IP, status=401)
    refused = await gw.verify(again["mfa_token"], recovery[0], BERLIN_IP, 401)
    assert refused["code"] == "invalid_code"
    assert (await gw.verify(again["mfa_token"], recovery[1], BERLIN_IP, 200))["access_token"]


async def test_a_used_authenticator_code_is_refused_on_the_next_challenge(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("cyril")
    app, _ = await gw.enrol_totp(user)
    await gw.signin("cyril", PARIS_IP)
    clock.advance(hours=1)
    first = await gw.signin("cyril", TOKYO_IP, status=401)
    code = gw.code(app)
    await gw.verify(first["mfa_token"], code, TOKYO_IP, 200)

    clock.advance(seconds=1)  # the same 30-second step: the code on screen is still `code`
    again = await gw.signin("cyril", BERLIN_IP, status=401)
    assert (await gw.verify(again["mfa_token"], code, BERLIN_IP, 401))["code"] == "invalid_code"
    clock.advance(seconds=30)
    assert (await gw.verify(again["mfa_token"], gw.code(app), BERLIN_IP, 200))["access_token"]
    assert user


async def test_an_emailed_code_for_a_user_without_an_authenticator(
    open_gateway, clock, smtp_server
):
    gw = await open_gateway(risk={"on_impossible": "mfa"}, mail={"url": smtp_server.url})
    user = await gw.signup("delphine", email="delphine@example.com")
    await gw.verify_email(user["user_id"])
    await gw.signin("delphine", PARIS_IP)
    clock.advance(hours=1)

    challenged = await gw.signin("delphine", TOKYO_IP, status=401)
    assert challenged["mfa_methods"] == ["email"]
    await gw.container.mail_sender.send_due()
    (message,) = [m for m in smtp_server.messages if m["To"] == "delphine@example.com"]
    from tests.support.smtp import text_of

    text = text_of(message)
    code = message["Subject"].rsplit(" ", 1)[-1]
    assert len(code) == 6 and code.isdigit() and code in text
    assert "Tokyo, JP" in text and "5 minutes" in text

    refused = await gw.verify(challenged["mfa_token"], wrong(code), TOKYO_IP, 401)
    assert refused["code"] == "invalid_code"
    signed = await gw.verify(challenged["mfa_token"], f" {code[:3]} {code[3:]} ", TOKYO_IP, 200)
    assert (await gw.me(signed)).status_code == 200
    (passed,) = await gw.audit("user.mfa.succeeded", user["user_id"])
    assert passed["payload"]["method"] == "email"
    # The code was for that token only, and the token is used.
    assert (await gw.verify(challenged["mfa_token"], code, TOKYO_IP, 400))["code"] == (
        "invalid_token"
    )


async def test_the_password_grant_answers_the_oauth_way(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("emile")
    app, _ = await gw.enrol_totp(user)
    await gw.signin("emile", PARIS_IP)
    clock.advance(hours=1)

    response = await gw.password_grant("emile", TOKYO_IP)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "mfa_required" and body["error_description"]
    assert body["mfa_token"].startswith("ggm_") and body["mfa_methods"] == ["totp", "recovery_code"]

    tokens = await gw.verify(body["mfa_token"], gw.code(app), TOKYO_IP, 200)
    assert set(tokens) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert (await gw.me(tokens)).status_code == 200
    (challenge,) = await gw.audit("user.mfa.challenged", user["user_id"])
    assert challenge["payload"]["kind"] == "password_grant"


async def test_the_auth0_mfa_otp_grant_completes_a_password_grant(open_gateway, clock):
    gw = await open_gateway(risk={"on_impossible": "mfa"})
    user = await gw.signup("fanny")
    app, _ = await gw.enrol_totp(user)
    await gw.signin("fanny", PARIS_IP)
    clock.advance(hours=1)
    body = (await gw.password_grant("fanny", TOKYO_IP)).json()

    def otp_grant(otp: str):
        return gw.client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "http://auth0.com/oauth/grant-type/mfa-otp",
                "mfa_token": body["mfa_token"],
                "otp": otp,
            },
            headers={"X-Forwarded-For": TOKYO_IP},
        )

    refused = await otp_grant(wrong(gw.code(app)))
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    granted = await otp_grant(gw.code(app))
    assert granted.status_code == 200, granted.text
    assert (await gw.me(granted.json())).status_code == 200
    replay = await otp_grant(gw.code(app))
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    missing = await gw.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "http://auth0.com/oauth/grant-type/mfa-otp", "otp": "123456"},
    )
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert bearer  # the module's helpers stay in use


async def test_a_proven_address_may_still_try_while_strangers_are_refused(open_gateway, clock):
    # The account's failure ceiling refuses addresses it never signed in from; an address a
    # step-up proved is one it signed in from, like any other sign-in's.
    gw = await open_gateway(
        risk={"on_impossible": "mfa"},
        auth={"account_failure_ceiling": 1, "lockout_threshold": 5},
    )
    user = await gw.signup("nadia")
    app, _ = await gw.enrol_totp(user)
    await gw.signin("nadia", PARIS_IP)
    clock.advance(hours=1)
    challenged = await gw.signin("nadia", TOKYO_IP, status=401)
    await gw.verify(challenged["mfa_token"], gw.code(app), TOKYO_IP, 200)

    stranger = await gw.signin("nadia", BERLIN_IP, status=401, password="not-her-password")
    assert stranger["code"] == "invalid_credentials"
    await gw.signin("nadia", "12.5.5.5", status=429, password="not-her-password")
    typo = await gw.signin("nadia", TOKYO_IP, status=401, password="not-her-password")
    assert typo["code"] == "invalid_credentials"  # tried and refused, not locked out
