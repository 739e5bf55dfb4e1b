"""A container over the test database whose mail goes to a chosen place (an SMTP fixture's
URL, or files when none), with its background loops not running: tests drain the queue
with `send_due`, and move time by giving a sender their own clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from globeguard.adapters.mail.port import Mailer
from globeguard.db.migrate import upgrade
from globeguard.kit.clock import utcnow
from globeguard.mail import render
from globeguard.mail.repository import MailRepository
from globeguard.mail.sender import MailSender
from globeguard.wiring import Container, build, mailer
from tests.conftest import make_settings, wipe

# A template of the tests' own, so these tests do not depend on the product's wording.
TEXT = """Subject: Hello ${username}

Hi ${username},

Open ${link} to carry on.
"""
HTML = """<p>Hi ${username},</p>
<p><a href="${link}">Carry on</a></p>
"""


@pytest.fixture
def test_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "hello.txt").write_text(TEXT)
    (directory / "hello.html").write_text(HTML)
    monkeypatch.setattr(render, "TEMPLATES", directory)
    render._template.cache_clear()
    yield "hello"
    render._template.cache_clear()


@pytest.fixture
def mail_container(database_url: str, tmp_path: Path):
    """`async with mail_container(url=…, **mail_settings) as container:`"""

    @asynccontextmanager
    async def make(**mail: Any) -> AsyncIterator[Container]:
        settings = make_settings(database_url, tmp_path, mail=mail)
        container = build(settings)
        await upgrade(container.db.engine)
        try:
            yield container
        finally:
            await wipe(container)
            await container.db.dispose()

    return make


async def queue(container: Container, to: str, template: str = "hello", **values: Any):
    """Queue one message in its own committed transaction; returns its id."""
    values = {"username": "ann", "link": container.mail.link("/verify#t=abc"), **values}
    async with container.db.transaction() as session:
        return await container.mail.send(session, to=to, template=template, values=values)


async def rows(container: Container):
    async with container.db.read() as session:
        return list(await MailRepository(session).everything())


def our_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What this service logged (aiosmtpd, the test server, logs whole conversations)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))


def sender_at(
    container: Container, when: Callable[[], datetime] = utcnow, to: Mailer | None = None
) -> MailSender:
    """Another sender over the container's outbox, with its own clock (and mailer)."""
    settings = container.settings
    return MailSender(
        container.db,
        container.mail,
        to if to is not None else mailer(settings),
        settings.mail,
        metrics=container.metrics,
        clock=when,
    )
