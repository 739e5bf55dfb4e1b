"""Building the MIME message both adapters send: multipart/alternative (text, then HTML, the
order that makes a client prefer the HTML), with From, To, Subject, Date and Message-ID."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from globeguard.adapters.mail.port import OutgoingMail, PermanentMailError


def sender_domain(from_address: str) -> str:
    """The domain of the From address, for Message-IDs ("localhost" when it has none)."""
    _, addr = parseaddr(from_address)
    return addr.rpartition("@")[2] or "localhost"


def envelope_sender(from_address: str) -> str:
    """The bare address of a From such as `Globeguard <no-reply@example.com>`."""
    return parseaddr(from_address)[1] or from_address


def build_message(mail: OutgoingMail, from_address: str, now: datetime) -> EmailMessage:
    """The message, or PermanentMailError when its headers cannot be built (a recipient or
    subject with a line break or an invalid address): sending it again would fail again."""
    try:
        msg = EmailMessage()
        msg["From"] = from_address
        msg["To"] = _recipient(mail.to)
        # One line: a subject is text from a template and values, never headers.
        msg["Subject"] = " ".join(mail.subject.split())
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = f"<{mail.id}@{sender_domain(from_address)}>"
        msg.set_content(mail.text)
        msg.add_alternative(mail.html, subtype="html")
    except (ValueError, TypeError, IndexError) as exc:
        raise PermanentMailError(f"message cannot be built: {type(exc).__name__}") from exc
    return msg


def _recipient(to: str) -> Address:
    if any(c in to for c in "\r\n") or to.count("@") != 1:
        raise ValueError("not a single email address")
    # Address() refuses what is not one addr-spec (display names, several addresses).
    return Address(addr_spec=to)
