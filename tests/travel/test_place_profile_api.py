"""The place profile through `POST /api/v1/login-events`, as another IdP's logins reach it: an
attacker's flagged success vouches for nothing, a mobile carrier's far hub through the user's
own carrier is at most suspicious, a place used weekly stays known, and a stream in any order
gives the verdicts of the same logins in time order."""

from __future__ import annotations

import random

import httpx
import orjson
import pytest

from globeguard.app import create_app
from tests.conftest import make_settings, wipe
from tests.helpers import bearer, make_admin
from tests.support.mmdb import city_record, write_asn_db, write_city_db

HOME, OFFICE, HUB, ATTACKER = "203.1.1.1", "203.2.2.2", "203.3.3.3", "203.4.4.4"
# Another of the carrier's hubs, Bordeaux (500 km from Paris).
HUB2 = "203.5.5.5"
ISP, CARRIER, HOSTING = 64500, 64501, 64502
T0 = 1_700_000_000
MINUTE, HOUR, DAY = 60, 3_600, 86_400


@pytest.fixture
async def idp(database_url, tmp_path):
    city = write_city_db(
        tmp_path / "city.mmdb",
        {
            HOME: city_record(48.8566, 2.3522, radius=5, country="FR", city=("Paris", 2988507)),
            # The office: Lyon, 390 km from Paris.
            OFFICE: city_record(45.764, 4.8357, radius=5, country="FR", city=("Lyon", 2996944)),
            # The carrier's addresses geolocate to its hub, Marseille (660 km).
            HUB: city_record(43.2965, 5.3698, radius=20, country="FR", city=("Marseille", 2995469)),
            HUB2: city_record(
                44.8378, -0.5792, radius=20, country="FR", city=("Bordeaux", 3031582)
            ),
            ATTACKER: city_record(
                -33.8688, 151.2093, radius=10, country="AU", city=("Sydney", 2147714)
            ),
        },
    )
    networks = {HOME: ISP, OFFICE: ISP, HUB: CARRIER, HUB2: CARRIER, ATTACKER: HOSTING}
    asn = write_asn_db(
        tmp_path / "asn.mmdb",
        {ip: {"autonomous_system_number": number} for ip, number in networks.items()},
    )
    settings = make_settings(
        database_url, tmp_path, geoip={"city_db": city, "asn_db": asn}, travel={}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = await make_admin(client, app.state.container)
            key = await client.post(
                "/api/v1/api-keys",
                headers=bearer(admin),
                json={"name": "idp", "scopes": ["login_events:write"]},
            )
            headers = {"X-API-KEY": key.json()["api_key"]}
            try:
                yield client, headers, app.state.container
            finally:
                await wipe(app.state.container)


async def report(client, headers, key: str, subject: str, ip: str, t: int) -> str:
    body = {"subject": subject, "ip": ip, "occurred_at": t, "event_uuid": key}
    response = await client.post("/api/v1/login-events", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["verdict"])


async def settle_at_home(client, headers, subject: str) -> None:
    """Past the learning period: three days of sign-ins from home."""
    for day in range(3):
        await report(client, headers, f"{subject}-home{day}", subject, HOME, T0 + day * DAY)


async def test_an_attackers_flagged_success_does_not_vouch_for_the_attackers_return(idp):
    client, headers, _ = idp
    await settle_at_home(client, headers, "ana")
    t = T0 + 3 * DAY
    assert await report(client, headers, "a-home", "ana", HOME, t) == "plausible"
    assert await report(client, headers, "a-attack", "ana", ATTACKER, t + 20 * MINUTE) == (
        "impossible"
    )
    # Ana again, measured from her own last trusted sign-in, not from Sydney.
    assert await report(client, headers, "a-back", "ana", HOME, t + 2 * HOUR) == "plausible"
    # The attacker's second burst, two days later, right after one of Ana's sign-ins.
    t2 = t + 2 * DAY
    await report(client, headers, "a-home2", "ana", HOME, t2)
    assert await report(client, headers, "a-again", "ana", ATTACKER, t2 + 20 * MINUTE) == (
        "impossible"
    )


async def test_the_carriers_far_hub_through_the_users_own_carrier_is_at_most_suspicious(idp):
    client, headers, _ = idp
    await settle_at_home(client, headers, "bo")
    t = T0 + 3 * DAY
    # A morning sign-in on the phone, long after the last one: plausible, so the carrier is
    # now one of Bo's networks (and Marseille one of his places).
    assert await report(client, headers, "b-phone", "bo", HUB, t) == "plausible"
    # Days later: home, then the phone, whose address now geolocates to another hub of the
    # carrier, Bordeaux, never seen: 500 km in 5 minutes, but through Bo's own carrier.
    t2 = t + 5 * DAY
    assert await report(client, headers, "b-home", "bo", HOME, t2) == "plausible"
    assert await report(client, headers, "b-hop", "bo", HUB2, t2 + 5 * MINUTE) == "suspicious"
    # The same hop through a network Bo never proved is impossible.
    assert await report(client, headers, "b-home2", "bo", HOME, t2 + HOUR) == "plausible"
    assert await report(client, headers, "b-other", "bo", ATTACKER, t2 + HOUR + 5 * MINUTE) == (
        "impossible"
    )


async def test_a_place_used_weekly_stays_known(idp):
    """The last-20 window forgot a weekly office: 40 sign-ins at home between two visits."""
    client, headers, _ = idp
    await settle_at_home(client, headers, "cy")
    t = T0 + 3 * DAY
    assert await report(client, headers, "c-office", "cy", OFFICE, t + 8 * HOUR) == "plausible"
    for i in range(40):
        await report(client, headers, f"c-h{i}", "cy", HOME, t + DAY + i * 3 * HOUR)
    last_home = t + DAY + 39 * 3 * HOUR
    # Lyon half an hour after Paris (390 km: 485 mph is under the threshold; the radii do
    # not matter), so use ten minutes: 1,450 mph, excused because Lyon is a known place.
    verdict = await report(client, headers, "c-office2", "cy", OFFICE, last_home + 10 * MINUTE)
    assert verdict == "plausible"


async def test_a_stream_in_any_order_gives_the_verdicts_of_time_order(idp):
    client, headers, container = idp
    rng = random.Random(7)
    ips = [HOME, HOME, HOME, OFFICE, HUB, ATTACKER]
    times = sorted(rng.sample(range(0, 6 * DAY, 5 * MINUTE), 60))
    events = [
        {
            "subject": subject,
            "ip": rng.choice(ips),
            "occurred_at": T0 + at,
            "success": rng.random() < 0.85,
            "event_uuid": f"{subject}-{i}",
        }
        for subject in ("in-order", "shuffled")
        for i, at in enumerate(times)
    ]
    # The same logins for both subjects (their own rng draws differ, so copy them across).
    ordered = [e for e in events if e["subject"] == "in-order"]
    shuffled = [{**e, "subject": "shuffled", "event_uuid": "s" + e["event_uuid"]} for e in ordered]
    rng.shuffle(shuffled)
    for chunk in (ordered, shuffled[:20], shuffled[20:40], shuffled[40:]):
        body = b"\n".join(orjson.dumps(e) for e in chunk) + b"\n"
        response = await client.post(
            "/api/v1/login-events",
            content=body,
            headers={**headers, "Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.text
    reader = bearer(await make_admin(client, container, username="reader"))
    verdicts = {subject: await verdicts_of(client, reader, subject) for subject in ORDERS}
    assert verdicts["shuffled"] == {f"s{k}": v for k, v in verdicts["in-order"].items()}
    assert {"impossible", "plausible"} <= set(verdicts["in-order"].values())


ORDERS = ("in-order", "shuffled")


async def verdicts_of(client, admin_headers, subject: str) -> dict[str, str]:
    found: dict[str, str] = {}
    before = None
    while True:
        params = {"limit": 100, **({"before": before} if before else {})}
        page = await client.get(
            f"/api/v1/subjects/{subject}/logins", headers=admin_headers, params=params
        )
        assert page.status_code == 200, page.text
        body = page.json()
        found.update({item["event_uuid"]: item["verdict"] for item in body["items"]})
        before = body["next_before"]
        if before is None:
            return found


async def test_a_review_keeps_every_place_the_user_proved(idp):
    """A review rebuilds the profile from the stored events: the places proven before it
    are still known after it."""
    client, headers, container = idp
    await settle_at_home(client, headers, "dee")
    t = T0 + 3 * DAY
    assert await report(client, headers, "d-office", "dee", OFFICE, t + 8 * HOUR) == "plausible"
    await report(client, headers, "d-home", "dee", HOME, t + DAY)
    assert await report(client, headers, "d-vpn", "dee", ATTACKER, t + DAY + 10 * MINUTE) == (
        "impossible"
    )
    admin = bearer(await make_admin(client, container, username="reviewer"))
    login = await client.get("/api/v1/subjects/dee/logins", headers=admin, params={"limit": 1})
    (vpn,) = login.json()["items"]
    assert vpn["event_uuid"] == "d-vpn"
    reviewed = await client.post(
        f"/api/v1/logins/{vpn['id']}/review", headers=admin, json={"verdict": "safe"}
    )
    assert reviewed.status_code == 200, reviewed.text
    # Home, then the office ten minutes later (1,450 mph): Lyon is still known.
    t2 = t + 2 * DAY
    assert await report(client, headers, "d-home2", "dee", HOME, t2) == "plausible"
    assert await report(client, headers, "d-office2", "dee", OFFICE, t2 + 10 * MINUTE) == (
        "plausible"
    )
    # And the reviewed place is known now too.
    assert await report(client, headers, "d-home3", "dee", HOME, t2 + HOUR) == "plausible"
    assert await report(client, headers, "d-vpn2", "dee", ATTACKER, t2 + HOUR + 10 * MINUTE) == (
        "plausible"
    )
