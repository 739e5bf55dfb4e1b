"""The step-up policy's `notify`: a risky sign-in goes through and the user is emailed
"was this you?" about it (through `container.notices.signin_notice`)."""

from __future__ import annotations

import pytest

from tests.account.flows.conftest import FEEDBACK, LONDON, NY, Site


@pytest.fixture
def site_settings():
    return {"risk": {"on_suspicious": "notify", "on_impossible": "notify"}}


async def test_a_risky_signin_is_let_through_and_the_owner_asked(site: Site):
    await site.user("ann", "ann@example.com", verified=True)
    assert (await site.signin_from("ann", NY)).status_code == 200
    assert await site.deliver() == []  # an ordinary sign-in: nothing to ask

    response = await site.signin_from("ann", LONDON)
    assert response.status_code == 200, response.text
    message = await site.one_message("ann@example.com")
    assert "London, England, United Kingdom" in site.smtp.text_of(message)
    links = {link.query["answer"]: link for link in site.links(message)}
    answered = await site.client.post(FEEDBACK, json={"token": links["yes"].token, "answer": "yes"})
    assert answered.status_code == 200 and answered.json()["review"] == "safe"


async def test_an_unverified_address_is_not_asked(site: Site):
    await site.user("bob", "bob@example.com")
    assert (await site.signin_from("bob", NY)).status_code == 200
    assert (await site.signin_from("bob", LONDON)).status_code == 200
    assert await site.deliver() == []
