"""The mail port: hand one message to a mail server (or wherever the adapter puts it)."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    # The outbox row's id: the Message-ID is derived from it, so a retried message keeps
    # its Message-ID and a receiver that saw the first copy can drop the second.
    id: uuid.UUID
    to: str
    subject: str
    text: str
    html: str
    kind: str = ""


class MailSendError(Exception):
    """A message was not accepted. `permanent`: sending it again cannot help (the server
    answered 5xx to the recipient or the data, or the message cannot be built); otherwise
    it may succeed later (server down, timeout, 4xx, a TLS or login problem, which is
    configuration and not this message's fault). The text is short and holds no secret:
    it is stored as the message's last error."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class PermanentMailError(MailSendError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=True)


class TransientMailError(MailSendError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=False)


class Mailer(Protocol):
    async def send(self, message: OutgoingMail) -> None:
        """Deliver `message` or raise MailSendError (and only that)."""
        ...

    async def close(self) -> None: ...


# Where mail goes (GLOBEGUARD_MAIL__URL), checked when settings load, so a bad URL stops
# start-up with one line like any refused setting.
DEFAULT_PORTS = {"smtp": 587, "smtps": 465, "smtp+plain": 25}


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None = None

    def __repr__(self) -> str:  # never the password, wherever the object ends up
        return f"SmtpTarget({self.scheme}://{self.host}:{self.port}, user={self.username!r})"

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_url(url: str) -> SmtpTarget:
    """The target of a mail URL; ValueError (naming no credential) when it is unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"mail URL: scheme must be smtp, smtps or smtp+plain, not {scheme!r}")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError("mail URL: the port is not a number") from None
    if not parts.hostname:
        raise ValueError("mail URL: no host")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if (username is None) != (password is None):
        raise ValueError("mail URL: give both a user and a password, or neither")
    target = SmtpTarget(scheme, parts.hostname, port, username, password)
    if scheme == "smtp+plain" and username is not None and not _is_loopback(parts.hostname):
        raise ValueError(
            f"mail URL: smtp+plain:// sends the password in the clear; it is allowed only to "
            f"a loopback relay, not {parts.hostname} (use smtp:// or smtps://)"
        )
    return target


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
