"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd in its own thread and event loop).

    async def test_mail(smtp_server, ...):
        settings = make_settings(database_url, tmp_path, mail={"url": smtp_server.url})
        ...
        [msg] = smtp_server.messages
        assert msg["To"] == "ann@example.com"
        assert smtp_server.links_in(msg) == ["https://..."]

Fixtures (function scope, each a fresh server on a free port):
- ``smtp_server``: no TLS, no AUTH; ``url`` is ``smtp+plain://127.0.0.1:PORT``.
- ``smtp_server_starttls``: STARTTLS and AUTH required; ``url`` is
  ``smtp://USER:PASS@127.0.0.1:PORT``; ``ca_file`` is the CA that signed its certificate.
- ``smtps_server``: TLS from the first byte, AUTH required; ``url`` is ``smtps://…``.

A test scripts failures: ``refuse_next("451 4.3.0 try later")`` answers the next DATA with
that reply (queue several), ``reject_recipient(addr)`` answers RCPT TO with 550.
Received messages are parsed ``email.message.EmailMessage`` objects, in arrival order.

Other test packages get the fixtures through tests/conftest.py, which imports them.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HOST = "127.0.0.1"
USER = "mailer@example.com"
# Characters that must be percent-encoded in a URL, so the adapter's decoding is exercised.
PASSWORD = "s3cret p@ss:/word%"

_URL_RE = re.compile(r"https?://[^\s<>\"']+")


def text_of(msg: EmailMessage) -> str:
    """The text/plain part (of a multipart/alternative message or a single-part one)."""
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain part"
    return str(part.get_content())


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None, "no text/html part"
    return str(part.get_content())


def links_in(msg: EmailMessage) -> list[str]:
    """The URLs in the text part, in order (trailing punctuation trimmed)."""
    return [url.rstrip(".,;:)") for url in _URL_RE.findall(text_of(msg))]


@dataclass
class SmtpServer:
    url: str
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    # (MAIL FROM, RCPT TO list) of each accepted message, parallel to `messages`.
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    # Usernames that authenticated successfully.
    logins: list[str] = field(default_factory=list)
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    _data_replies: deque[str] = field(default_factory=deque)
    _rejected: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse_next(self, reply: str = "451 4.3.0 Try again later", times: int = 1) -> None:
        """Answer the next `times` DATA commands with `reply` instead of accepting."""
        with self._lock:
            self._data_replies.extend([reply] * times)

    def reject_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        with self._lock:
            self._rejected[address.lower()] = reply

    def to(self, address: str) -> list[EmailMessage]:
        """The received messages whose envelope names `address` as a recipient."""
        return [
            msg
            for msg, (_, rcpts) in zip(self.messages, self.envelopes, strict=True)
            if address.lower() in (r.lower() for r in rcpts)
        ]

    text_of = staticmethod(text_of)
    html_of = staticmethod(html_of)
    links_in = staticmethod(links_in)

    # aiosmtpd handler hooks (run in the server's thread).

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        with self._lock:
            refusal = self._rejected.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        with self._lock:
            if self._data_replies:
                return self._data_replies.popleft()
        raw = envelope.original_content or envelope.content
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(msg)
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@cache
def _ca() -> trustme.CA:
    return trustme.CA()


def _server_tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _ca().issue_cert(HOST, "localhost").configure_cert(ctx)
    return ctx


def _ca_file(directory: Path) -> Path:
    path = directory / "smtp-test-ca.pem"
    _ca().cert_pem.write_to_path(str(path))
    return path


class _ImplicitTlsController(Controller):
    def factory(self) -> SMTP:
        smtp = super().factory()
        # aiosmtpd counts only STARTTLS as TLS, and would not offer AUTH on a connection that
        # is TLS from the first byte. (Passing auth_require_tls=False warns on every connection.)
        smtp._auth_require_tls = False
        return smtp


def _run(
    server: SmtpServer, controller_class: type[Controller] = Controller, **smtp_options: Any
) -> Iterator[SmtpServer]:
    controller = controller_class(
        server,
        hostname=HOST,
        port=server.port,
        ready_timeout=10,
        # Keep the client's bytes as sent (line endings, headers) for parsing.
        decode_data=False,
        **smtp_options,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def _with_credentials(scheme: str, port: int) -> str:
    return f"{scheme}://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@{HOST}:{port}"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    port = _free_port()
    yield from _run(SmtpServer(url=f"smtp+plain://{HOST}:{port}", host=HOST, port=port))


@pytest.fixture
def smtp_server_starttls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    port = _free_port()
    server = SmtpServer(
        url=_with_credentials("smtp", port),
        host=HOST,
        port=port,
        ca_file=_ca_file(tmp_path_factory.mktemp("smtp-ca")),
        username=USER,
        password=PASSWORD,
    )
    yield from _run(
        server,
        tls_context=_server_tls_context(),
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=server.authenticate,
    )


@pytest.fixture
def smtps_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    port = _free_port()
    server = SmtpServer(
        url=_with_credentials("smtps", port),
        host=HOST,
        port=port,
        ca_file=_ca_file(tmp_path_factory.mktemp("smtp-ca")),
        username=USER,
        password=PASSWORD,
    )
    yield from _run(
        server,
        ssl_context=_server_tls_context(),
        auth_required=True,
        authenticator=server.authenticate,
        controller_class=_ImplicitTlsController,
    )
