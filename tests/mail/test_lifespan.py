"""`serve` runs the mail sender (unless GLOBEGUARD_MAIL__EMBEDDED=false): mail committed while
the app runs reaches the server with nobody draining the queue."""

from __future__ import annotations

import asyncio

from globeguard.app import create_app
from globeguard.wiring import build
from tests.conftest import make_settings, wipe
from tests.mail.conftest import queue, rows
from tests.mail.test_sender import _Notifying
from tests.support.smtp import SmtpServer


def _sender_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "mail-sender" and not t.done()]


async def test_the_app_sends_committed_mail_by_itself(
    database_url, tmp_path, smtp_server: SmtpServer, test_template
) -> None:
    container = build(make_settings(database_url, tmp_path, mail={"url": smtp_server.url}))
    arrived = asyncio.Event()
    container.mail_sender.mailer = _Notifying(container.mail_sender.mailer, arrived)
    app = create_app(container.settings, container)
    async with app.router.lifespan_context(app):
        try:
            assert len(_sender_tasks()) == 1
            await queue(container, "ann@example.com")
            async with asyncio.timeout(30):
                await arrived.wait()
            await container.mail_sender.send_due()  # waits for the loop's round to finish
            [row] = await rows(container)
            assert row.sent_at is not None
        finally:
            await wipe(container)
    assert [m["To"] for m in smtp_server.messages] == ["ann@example.com"]
    assert _sender_tasks() == []


async def test_not_embedded_the_app_runs_no_sender(database_url, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path, mail={"embedded": False})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert _sender_tasks() == []
