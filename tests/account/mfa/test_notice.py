"""A new authenticator is announced to the owner's verified email address, and only there."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from globeguard.identity.models import User
from globeguard.mail.models import MailMessage
from tests.account.mfa.support import CONFIRM, TOTP, code_at, enrolled_user, start, user_id_of
from tests.helpers import bearer, make_admin, signup


async def notices(container) -> list[MailMessage]:
    async with container.db.read() as session:
        rows = await session.scalars(select(MailMessage).where(MailMessage.kind == "mfa_enrolled"))
        return list(rows)


async def verify_email(container, user_id: uuid.UUID) -> None:
    async with container.db.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(email_verified=True))


@pytest.mark.parametrize(
    ("email", "verified", "mailed"),
    [("zoe@example.com", True, True), ("zoe@example.com", False, False), (None, False, False)],
)
async def test_enrolment_notice(client, container, clock, email, verified, mailed):
    seen: list[dict[str, str]] = []
    send = container.mail.send

    async def recording_send(session, *, to, template, values):
        seen.append(dict(values))
        return await send(session, to=to, template=template, values=values)

    container.mfa.mail = SimpleNamespace(send=recording_send)
    extra = {"email": email} if email else {}
    headers = bearer(await signup(client, "zoe", **extra))
    user_id = await user_id_of(client, headers)
    if verified:
        await verify_email(container, user_id)
    secret = (await start(client, headers))["secret"]
    assert await notices(container) == []  # starting is no enrolment yet
    confirmed = await client.post(
        CONFIRM, headers=headers, json={"code": code_at(secret, clock.now)}
    )
    assert confirmed.status_code == 200, confirmed.text
    sent = await notices(container)
    if not mailed:
        assert sent == [] and seen == []
        return
    assert [m.to_address for m in sent] == ["zoe@example.com"]
    assert sent[0].subject == "An authenticator app was added to your Globeguard account"
    # What the message says: who, when, from where; never the secret or a recovery code.
    (values,) = seen
    assert values["username"] == "zoe" and values["ip"] == "203.0.113.7"
    assert values["when"] == "2026-12-03 12:00 UTC"
    words = " ".join(values.values())
    assert secret not in words
    assert not any(code in words for code in confirmed.json()["recovery_codes"])


async def removal_notices(container) -> list[MailMessage]:
    async with container.db.read() as session:
        rows = await session.scalars(select(MailMessage).where(MailMessage.kind == "mfa_removed"))
        return list(rows)


@pytest.mark.parametrize("by_admin", [False, True])
async def test_a_removed_authenticator_is_announced_to_the_verified_owner(
    client, container, clock, by_admin
):
    seen: list[dict[str, str]] = []
    send = container.mail.send

    async def recording_send(session, *, to, template, values):
        if template == "mfa_removed":
            seen.append(dict(values))
        return await send(session, to=to, template=template, values=values)

    container.mfa.mail = SimpleNamespace(send=recording_send)
    headers, secret, _ = await enrolled_user(client, clock, "yan", email="yan@example.com")
    user_id = await user_id_of(client, headers)
    await verify_email(container, user_id)
    if by_admin:
        admin = bearer(await make_admin(client, container))
        removed = await client.delete(f"/api/v1/users/{user_id}/mfa", headers=admin)
    else:
        clock.advance(60)  # the next step's code: the confirmation used this one
        code = code_at(secret, clock.now)
        removed = await client.request("DELETE", TOTP, headers=headers, json={"code": code})
    assert removed.status_code == 204, removed.text
    (sent,) = await removal_notices(container)
    assert sent.to_address == "yan@example.com"
    (values,) = seen
    assert values["username"] == "yan"
    assert values["how"] == ("by an administrator" if by_admin else "from address 203.0.113.7")


async def test_no_removal_notice_to_an_unverified_address(client, container, clock):
    headers, _, codes = await enrolled_user(client, clock, "una", email="una@example.com")
    removed = await client.request("DELETE", TOTP, headers=headers, json={"code": codes[0]})
    assert removed.status_code == 204, removed.text
    assert await removal_notices(container) == []
