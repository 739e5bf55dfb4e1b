"""The SMTP adapter against real servers: STARTTLS with AUTH, TLS from the start, a plain
relay; a password is never sent in the clear nor written to a log or a row."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest

from globeguard.adapters.mail.port import MailSendError, OutgoingMail, parse_url
from globeguard.adapters.mail.smtp import SmtpMailer
from globeguard.wiring import mailer
from tests.conftest import make_settings
from tests.mail.conftest import our_logs, queue, rows
from tests.support.smtp import HOST, PASSWORD, USER, SmtpServer, _free_port, _run

TIMEOUT = timedelta(seconds=10)
FROM = "Globeguard <no-reply@globeguard.test>"


def _mail(to: str = "ann@example.com") -> OutgoingMail:
    return OutgoingMail(uuid.uuid4(), to, "Hi", "text https://x.test/a\n", "<p>html</p>", "hello")


def _secret_forms() -> list[str]:
    """The password as it could leak: plain, percent-encoded, in AUTH PLAIN and LOGIN."""
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    return [PASSWORD, quote(PASSWORD, safe=""), plain, base64.b64encode(PASSWORD.encode()).decode()]


async def test_starttls_with_login(
    mail_container, smtp_server_starttls: SmtpServer, test_template
) -> None:
    server = smtp_server_starttls
    async with mail_container(url=server.url, ca_file=server.ca_file) as container:
        await queue(container, "ann@example.com")

        assert await container.mail_sender.send_due() == 1

        assert server.logins == [USER]
        [msg] = server.messages
        assert msg["Subject"] == "Hello ann"


async def test_implicit_tls_with_login(
    mail_container, smtps_server: SmtpServer, test_template
) -> None:
    server = smtps_server
    async with mail_container(url=server.url, ca_file=server.ca_file) as container:
        await queue(container, "ann@example.com")

        assert await container.mail_sender.send_due() == 1

        assert server.logins == [USER]
        assert [m["To"] for m in server.messages] == ["ann@example.com"]


@pytest.fixture
def cleartext_auth_server():
    """Offers AUTH with no TLS at all: a client willing to send a password in the clear
    would log in here."""
    port = _free_port()
    server = SmtpServer(url="", host=HOST, port=port, username=USER, password=PASSWORD)
    yield from _run(server, auth_require_tls=False, authenticator=server.authenticate)


async def test_credentials_are_not_sent_to_a_server_without_starttls(
    cleartext_auth_server: SmtpServer,
) -> None:
    server = cleartext_auth_server
    url = f"smtp://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@{HOST}:{server.port}"
    adapter = SmtpMailer.from_url(url, FROM, TIMEOUT)

    with pytest.raises(MailSendError) as caught:
        await adapter.send(_mail())

    assert not caught.value.permanent, "a configuration problem: retried once fixed"
    assert "STARTTLS" in caught.value.reason
    assert server.logins == []
    assert server.messages == []
    # The same server through a loopback relay URL: the operator's explicit choice.
    relay = f"smtp+plain://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@{HOST}:{server.port}"
    await SmtpMailer.from_url(relay, FROM, TIMEOUT).send(_mail())
    assert server.logins == [USER]


async def test_without_credentials_plain_smtp_sends_when_the_server_has_no_starttls(
    smtp_server: SmtpServer,
) -> None:
    adapter = SmtpMailer.from_url(f"smtp://127.0.0.1:{smtp_server.port}", FROM, TIMEOUT)

    await adapter.send(_mail())

    assert len(smtp_server.messages) == 1


async def test_starttls_is_used_when_offered_even_without_credentials(
    smtp_server_starttls: SmtpServer,
) -> None:
    """The fixture answers MAIL with "530 Must issue a STARTTLS command first" until the
    client used STARTTLS, and then (it also requires AUTH) with "Authentication required"."""
    server = smtp_server_starttls
    opportunistic = SmtpMailer.from_url(
        f"smtp://127.0.0.1:{server.port}", FROM, TIMEOUT, ca_file=server.ca_file
    )
    never = SmtpMailer.from_url(f"smtp+plain://127.0.0.1:{server.port}", FROM, TIMEOUT)

    with pytest.raises(MailSendError) as used_tls:
        await opportunistic.send(_mail())
    with pytest.raises(MailSendError) as plain:
        await never.send(_mail())

    assert "Authentication required" in used_tls.value.reason
    assert "STARTTLS" in plain.value.reason


async def test_an_untrusted_certificate_is_refused(smtp_server_starttls: SmtpServer) -> None:
    adapter = SmtpMailer.from_url(smtp_server_starttls.url, FROM, TIMEOUT)  # no CA file

    with pytest.raises(MailSendError) as caught:
        await adapter.send(_mail())

    assert not caught.value.permanent
    assert smtp_server_starttls.logins == []
    assert smtp_server_starttls.messages == []


async def test_a_wrong_password_is_a_retried_failure_that_names_no_secret(
    mail_container, smtp_server_starttls: SmtpServer, test_template, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    server = smtp_server_starttls
    wrong = server.url.replace(quote(PASSWORD, safe=""), quote(PASSWORD + "x", safe=""))
    async with mail_container(url=wrong, ca_file=server.ca_file) as container:
        await queue(container, "ann@example.com")

        assert await container.mail_sender.send_due() == 0

        [row] = await rows(container)
        assert row.failed_at is None
        assert "535" in (row.last_error or "")
        for secret in [*_secret_forms(), PASSWORD + "x"]:
            assert secret not in (row.last_error or "")
            assert secret not in our_logs(caplog)
    assert server.messages == []


async def test_credentials_never_reach_the_logs(
    mail_container, smtp_server_starttls: SmtpServer, test_template, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    server = smtp_server_starttls
    async with mail_container(url=server.url, ca_file=server.ca_file) as container:
        await queue(container, "ann@example.com")
        await container.mail_sender.send_due()
        text = our_logs(caplog) + repr(container.mail_sender.mailer.target)  # type: ignore[attr-defined]

    assert server.logins == [USER]
    for secret in _secret_forms():
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port"),
    [
        ("smtp://mx.example.com", "smtp", "mx.example.com", 587),
        ("smtps://mx.example.com", "smtps", "mx.example.com", 465),
        ("smtp+plain://127.0.0.1", "smtp+plain", "127.0.0.1", 25),
        ("SMTP://mx.example.com:2525", "smtp", "mx.example.com", 2525),
    ],
)
def test_url_defaults(url: str, scheme: str, host: str, port: int) -> None:
    target = parse_url(url)

    assert (target.scheme, target.host, target.port) == (scheme, host, port)
    assert target.username is None and target.password is None


def test_credentials_in_the_url_are_percent_decoded() -> None:
    target = parse_url("smtps://me%40example.com:p%40ss%3Aw%2Fo%25rd@mx.example.com")

    assert target.username == "me@example.com"
    assert target.password == "p@ss:w/o%rd"
    assert "p@ss" not in repr(target)


@pytest.mark.parametrize(
    "url",
    [
        "http://mx.example.com",
        "smtp://",
        "smtp://mx.example.com:notaport",
        "smtp://user@mx.example.com",
        "smtp+plain://user:hunter2@mx.example.com",
        "smtp+plain://user:hunter2@10.0.0.5",
    ],
)
def test_unusable_urls_are_refused_without_naming_the_password(url: str) -> None:
    with pytest.raises(ValueError, match="mail URL") as caught:
        parse_url(url)

    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_loopback_relay_may_take_credentials_in_the_clear(host: str) -> None:
    assert parse_url(f"smtp+plain://u:p@{host}:25").username == "u"


def test_wiring_picks_smtp_for_a_url_and_files_without(tmp_path) -> None:
    with_url = make_settings("sqlite+aiosqlite://", tmp_path, mail={"url": "smtps://mx.test"})
    without = make_settings("sqlite+aiosqlite://", tmp_path)

    assert type(mailer(with_url)).__name__ == "SmtpMailer"
    assert type(mailer(without)).__name__ == "FileMailer"


def test_a_bad_mail_url_is_one_operator_line_naming_no_password(monkeypatch) -> None:
    from pydantic import ValidationError

    from globeguard.settings import Settings
    from globeguard.settings_check import problem_lines

    env = {"GLOBEGUARD_MAIL__URL": "smtp+plain://u:hunter2@mx.test"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)

    [line] = problem_lines(caught.value, env)
    assert "GLOBEGUARD_MAIL__URL" in line
    assert "smtp+plain" in line and "loopback" in line
    assert "e.g. GLOBEGUARD_MAIL__URL=smtp://" in line
    assert "hunter2" not in line + str(caught.value)
