"""Queue → commit → send: the real SMTP fixture receives what was committed, once; failures
are retried with backoff or given up on, one message at a time. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from globeguard.adapters.mail.smtp import SmtpMailer
from globeguard.kit.clock import as_utc, utcnow
from globeguard.mail.models import MailMessage
from globeguard.mail.sender import RETRY_BASE, retry_delay
from tests.mail.conftest import our_logs, queue, rows, sender_at
from tests.support.smtp import SmtpServer, _free_port

FROM = "Globeguard <no-reply@globeguard.test>"


async def queue_then_roll_back(container, to: str = "ann@example.com") -> None:
    async with container.db.transaction() as session:
        values = {"username": "a", "link": "x"}
        await container.mail.send(session, to=to, template="hello", values=values)
        raise RuntimeError("the change this mail told about failed")


def _sent(container, kind: str = "hello") -> float:
    return container.metrics.mail_sent.labels(kind=kind)._value.get()


def _failed(container, kind: str = "hello") -> float:
    return container.metrics.mail_failed.labels(kind=kind)._value.get()


async def test_a_committed_message_reaches_the_server_as_multipart(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    public = "https://id.example.test/"
    async with mail_container(
        url=smtp_server.url, from_address=FROM, public_url=public
    ) as container:
        message_id = await queue(container, "ann@example.com")

        assert await container.mail_sender.send_due() == 1

        [msg] = smtp_server.messages
        assert msg["From"] == FROM
        assert msg["To"] == "ann@example.com"
        assert msg["Subject"] == "Hello ann"
        assert msg["Message-ID"] == f"<{message_id}@globeguard.test>"
        assert msg["Date"]
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        link = "https://id.example.test/verify#t=abc"
        assert smtp_server.links_in(msg) == [link]
        assert f'href="{link}"' in smtp_server.html_of(msg)
        assert smtp_server.envelopes == [("no-reply@globeguard.test", ["ann@example.com"])]
        assert _sent(container) == 1


async def test_links_point_at_the_issuer_when_no_public_url_is_set(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        await queue(container, "ann@example.com")
        await container.mail_sender.send_due()

        [msg] = smtp_server.messages
        issuer = container.settings.auth.issuer.rstrip("/")
        assert smtp_server.links_in(msg) == [f"{issuer}/verify#t=abc"]


async def test_after_sending_the_body_is_gone_and_it_is_not_sent_again(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        await queue(container, "ann@example.com")
        await container.mail_sender.send_due()

        [row] = await rows(container)
        assert row.sent_at is not None
        assert row.body_sealed == ""
        assert row.attempts == 1
        assert row.last_error is None
        assert await container.mail_sender.send_due() == 0
        later = sender_at(container, lambda: utcnow() + timedelta(days=2))
        assert await later.send_due() == 0
        assert len(smtp_server.messages) == 1


async def test_nothing_is_sent_for_a_rolled_back_transaction(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        with pytest.raises(RuntimeError):
            await queue_then_roll_back(container)

        assert await container.mail_sender.send_due() == 0
        assert await rows(container) == []
        assert smtp_server.messages == []


async def test_the_body_is_sealed_at_rest(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        await queue(container, "ann@example.com", link="https://x.test/reset#t=SECRETTOKEN")

        [row] = await rows(container)
        assert "SECRETTOKEN" not in row.body_sealed
        assert "SECRETTOKEN" in container.mail.open_body(row.body_sealed)["text"]


async def test_values_in_the_subject_are_sealed_too_and_sent(
    mail_container, smtp_server: SmtpServer, test_template, caplog
) -> None:
    """A subject may carry a secret (a sign-in code): the column keeps the template's."""
    caplog.set_level(logging.DEBUG)
    async with mail_container(url=smtp_server.url) as container:
        await queue(container, "ann@example.com", username="CODE-424242")

        [row] = await rows(container)
        assert row.subject == "Hello ${username}"
        assert "CODE-424242" not in row.body_sealed
        await container.mail_sender.send_due()

    [msg] = smtp_server.messages
    assert msg["Subject"] == "Hello CODE-424242"
    assert "CODE-424242" not in our_logs(caplog)


async def test_a_refusal_is_retried_after_a_backoff_then_sent(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        smtp_server.refuse_next("451 4.3.0 Try again later")
        await queue(container, "ann@example.com")
        start = utcnow()
        now = sender_at(container, lambda: start)

        assert await now.send_due() == 0

        [row] = await rows(container)
        assert row.sent_at is None and row.failed_at is None
        assert row.attempts == 1
        assert "451" in (row.last_error or "")
        wait = as_utc(row.next_attempt_at) - start
        assert RETRY_BASE / 2 <= wait <= RETRY_BASE
        assert await now.send_due() == 0, "retried before its time"
        assert smtp_server.messages == []

        assert await sender_at(container, lambda: start + wait).send_due() == 1
        assert len(smtp_server.messages) == 1
        [row] = await rows(container)
        assert row.attempts == 2
        assert row.sent_at is not None
        assert row.last_error is None


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    lows = [retry_delay(n, lambda: 0.0) for n in range(1, 12)]
    highs = [retry_delay(n, lambda: 0.999999) for n in range(1, 12)]

    assert lows[0] == RETRY_BASE / 2
    assert lows[1] == RETRY_BASE
    assert lows[2] == RETRY_BASE * 2
    assert all(b == 2 * a for a, b in itertools.pairwise(lows[:7]))
    assert all(low < high <= 2 * low for low, high in zip(lows, highs, strict=True))
    assert highs[-1] <= timedelta(hours=1)
    assert retry_delay(10_000, lambda: 0.5) <= timedelta(hours=1)


async def test_a_permanent_refusal_fails_that_message_only(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        smtp_server.reject_recipient("ghost@example.com")
        bad = await queue(container, "ghost@example.com")
        good = await queue(container, "ann@example.com")

        assert await container.mail_sender.send_due() == 1

        by_id = {row.id: row for row in await rows(container)}
        assert by_id[bad].failed_at is not None
        assert by_id[bad].sent_at is None
        assert "550" in (by_id[bad].last_error or "")
        assert by_id[good].sent_at is not None
        assert [m["To"] for m in smtp_server.messages] == ["ann@example.com"]
        assert _failed(container) == 1
        later = sender_at(container, lambda: utcnow() + timedelta(days=1))
        assert await later.send_due() == 0, "a failed message is not retried"


async def test_a_5xx_to_the_data_is_permanent_too(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        smtp_server.refuse_next("554 5.7.1 Message rejected as spam")
        await queue(container, "ann@example.com")

        assert await container.mail_sender.send_due() == 0

        [row] = await rows(container)
        assert row.failed_at is not None
        assert row.attempts == 1
        assert row.last_error is not None and "554" in row.last_error


async def test_a_message_that_cannot_be_opened_fails_alone(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        broken = await queue(container, "ann@example.com")
        await queue(container, "bob@example.com")
        async with container.db.transaction() as session:
            await session.execute(
                update(MailMessage).where(MailMessage.id == broken).values(body_sealed="AAAA")
            )

        assert await container.mail_sender.send_due() == 1

        by_id = {row.id: row for row in await rows(container)}
        assert by_id[broken].failed_at is not None
        assert "cannot be opened" in (by_id[broken].last_error or "")
        assert [m["To"] for m in smtp_server.messages] == ["bob@example.com"]


async def test_a_recipient_with_a_line_break_fails_without_injecting_headers(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        await queue(container, "ann@example.com\r\nBcc: eve@example.com")

        assert await container.mail_sender.send_due() == 0

        [row] = await rows(container)
        assert row.failed_at is not None
        assert smtp_server.messages == []


async def test_a_server_that_is_down_loses_nothing(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    dead = f"smtp+plain://127.0.0.1:{_free_port()}"
    async with mail_container(url=dead, max_attempts=3) as container:
        await queue(container, "ann@example.com")
        start = utcnow()

        assert await sender_at(container, lambda: start).send_due() == 0

        [row] = await rows(container)
        assert row.failed_at is None and row.sent_at is None
        assert row.attempts == 1
        assert "127.0.0.1" in (row.last_error or "")

        # The server is back (here: another address) once the backoff has passed.
        back = SmtpMailer.from_url(smtp_server.url, FROM, timedelta(seconds=10))
        later = sender_at(container, lambda: start + timedelta(hours=1), to=back)
        assert await later.send_due() == 1
        assert [m["To"] for m in smtp_server.messages] == ["ann@example.com"]


async def test_after_max_attempts_a_message_is_kept_as_failed(
    mail_container, test_template
) -> None:
    dead = f"smtp+plain://127.0.0.1:{_free_port()}"
    async with mail_container(url=dead, max_attempts=2) as container:
        await queue(container, "ann@example.com")
        start = utcnow()

        await sender_at(container, lambda: start).send_due()
        [row] = await rows(container)
        assert row.failed_at is None
        await sender_at(container, lambda: start + timedelta(hours=1)).send_due()

        [row] = await rows(container)
        assert row.attempts == 2
        assert row.failed_at is not None
        assert row.body_sealed != "", "kept for an operator to queue again"
        assert await sender_at(container, lambda: start + timedelta(days=1)).send_due() == 0
        assert _failed(container) == 1


async def test_claims_whose_senders_died_count_as_attempts(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    """A message whose sending kills the process is not retried forever."""
    async with mail_container(url=smtp_server.url, max_attempts=3) as container:
        message_id = await queue(container, "ann@example.com")
        async with container.db.transaction() as session:
            await session.execute(
                update(MailMessage).where(MailMessage.id == message_id).values(attempts=3)
            )

        assert await container.mail_sender.send_due() == 0

        [row] = await rows(container)
        assert row.failed_at is not None
        assert row.last_error == "out of attempts"
        assert smtp_server.messages == []


async def test_two_senders_at_once_send_each_message_once(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        addresses = [f"user{i}@example.com" for i in range(25)]
        for address in addresses:
            await queue(container, address)
        one, two = sender_at(container), sender_at(container)

        counts = await asyncio.gather(one.send_due(), two.send_due(), one.send_due())

        assert sum(counts) == 25
        assert sorted(m["To"] for m in smtp_server.messages) == sorted(addresses)


async def test_send_due_sends_at_most_limit(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        for i in range(13):
            await queue(container, f"user{i}@example.com")

        assert await container.mail_sender.send_due(limit=12) == 12
        assert await container.mail_sender.send_due(limit=12) == 1
        assert len(smtp_server.messages) == 13


async def test_the_background_loop_sends_what_a_commit_queued(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        sender = container.mail_sender
        arrived = asyncio.Event()
        sender.mailer = _Notifying(sender.mailer, arrived)
        task = asyncio.create_task(sender.run())
        try:
            await queue(container, "ann@example.com")
            async with asyncio.timeout(30):
                await arrived.wait()
            # Waits for the loop's round to end (the message marked sent); finds nothing left.
            assert await sender.send_due() == 0
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert [m["To"] for m in smtp_server.messages] == ["ann@example.com"]
        [row] = await rows(container)
        assert row.sent_at is not None


class _Notifying:
    def __init__(self, inner, sent: asyncio.Event) -> None:
        self.inner, self.sent = inner, sent

    async def send(self, message) -> None:
        await self.inner.send(message)
        self.sent.set()

    async def close(self) -> None:
        await self.inner.close()


async def test_a_commit_that_queued_mail_wakes_the_sender(
    mail_container, smtp_server: SmtpServer, test_template
) -> None:
    async with mail_container(url=smtp_server.url) as container:
        wake = container.mail_sender._wake
        async with container.db.transaction() as session:
            await session.get(MailMessage, uuid.uuid4())
        assert not wake.is_set(), "a commit without mail"

        with pytest.raises(RuntimeError):
            await queue_then_roll_back(container)
        assert not wake.is_set(), "a rollback"

        await queue(container, "ann@example.com")
        assert wake.is_set()
