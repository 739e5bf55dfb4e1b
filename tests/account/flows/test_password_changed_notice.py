""" "Your password was changed": sent on a self-service change (and on a reset, see
test_reset), only to a verified address."""

from __future__ import annotations

from tests.account.flows.conftest import NEW_PASSWORD, Site, parse_link
from tests.helpers import STRONG, bearer

CHANGE = "/api/v1/users/me/password"


async def test_a_self_service_change_tells_the_verified_address(site: Site):
    ann = await site.user("ann", "ann@example.com", verified=True)
    response = await site.client.post(
        CHANGE,
        json={"current_password": STRONG, "new_password": NEW_PASSWORD},
        headers=bearer(ann),
    )
    assert response.status_code == 204, response.text
    message = await site.one_message("ann@example.com")
    assert message["Subject"] == "Your Globeguard password was changed"
    [link] = [parse_link(url) for url in site.smtp.links_in(message)]
    assert link.page == "/forgot-password"


async def test_a_refused_change_or_an_unverified_address_gets_nothing(site: Site):
    ann = await site.user("ann", "ann@example.com", verified=True)
    wrong = await site.client.post(
        CHANGE,
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
        headers=bearer(ann),
    )
    assert wrong.status_code == 403
    bob = await site.user("bob", "bob@example.com")
    done = await site.client.post(
        CHANGE,
        json={"current_password": STRONG, "new_password": NEW_PASSWORD},
        headers=bearer(bob),
    )
    assert done.status_code == 204
    assert await site.deliver() == []
