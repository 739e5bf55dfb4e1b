"""Sending over SMTP with aiosmtplib, one connection per message (mail is rare here: a
sign-in notice, a reset link; a pooled connection would only add idle-timeout handling).

    smtp://user:pass@host:587     STARTTLS; required when credentials are given, else used
                                  whenever the server offers it
    smtps://user:pass@host:465    TLS from the first byte
    smtp+plain://host:25          never TLS: a relay on this machine. Credentials only to a
                                  loopback address, so a password never crosses a network
                                  in the clear
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

import aiosmtplib

from globeguard.adapters.mail.mime import build_message, envelope_sender
from globeguard.adapters.mail.port import (
    MailSendError,
    OutgoingMail,
    SmtpTarget,
    TransientMailError,
    parse_url,
)
from globeguard.kit.clock import Clock, utcnow

# A reply is stored as the message's last error; the server's text is kept short.
REPLY_EXCERPT = 120


class SmtpMailer:
    def __init__(
        self,
        target: SmtpTarget,
        from_address: str,
        timeout: timedelta,
        ca_file: Path | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.target = target
        self.from_address = from_address
        self.timeout_s = timeout.total_seconds()
        # Verified against the system's CAs, or the operator's bundle for a private CA.
        self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._clock = clock

    @classmethod
    def from_url(
        cls, url: str, from_address: str, timeout: timedelta, ca_file: Path | None = None
    ) -> SmtpMailer:
        return cls(parse_url(url), from_address, timeout, ca_file)

    async def send(self, message: OutgoingMail) -> None:
        msg = build_message(message, self.from_address, self._clock())
        target = self.target
        try:
            await aiosmtplib.send(
                msg,
                sender=envelope_sender(self.from_address),
                recipients=[message.to],
                hostname=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.scheme == "smtps",
                # True: STARTTLS or nothing (a password is never sent in the clear);
                # None: STARTTLS when offered; False: a plain relay.
                start_tls=self._start_tls(),
                tls_context=self._tls if target.scheme != "smtp+plain" else None,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPException as exc:
            raise classify(exc) from None
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            raise TransientMailError(f"cannot reach {target.display}: {_short(exc)}") from None

    def _start_tls(self) -> bool | None:
        scheme = self.target.scheme
        if scheme == "smtp":
            return True if self.target.username is not None else None
        return False

    async def close(self) -> None:
        """Nothing held between messages."""


def classify(exc: aiosmtplib.SMTPException) -> MailSendError:
    """Permanent when the server refused this message for good: a 5xx to the recipient or
    to the data. A 5xx elsewhere (the sender address, AUTH, a required STARTTLS) is the
    configuration's fault, not the message's: retried, so fixing it saves the queue."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        detail = "; ".join(f"{r.code} {_excerpt(r.message)}" for r in exc.recipients)
        return MailSendError(f"recipient refused: {detail}", permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        what = "recipient" if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else "message"
        return MailSendError(
            f"{what} refused: {exc.code} {_excerpt(exc.message)}", permanent=exc.code >= 500
        )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return TransientMailError(f"login refused: {exc.code} {_excerpt(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return TransientMailError(f"server said {exc.code} {_excerpt(exc.message)}")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return TransientMailError("timed out")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return TransientMailError(f"server does not support it: {_excerpt(str(exc))}")
    return TransientMailError(f"{type(exc).__name__}: {_excerpt(str(exc))}")


def _excerpt(text: str) -> str:
    return " ".join(text.split())[:REPLY_EXCERPT]


def _short(exc: OSError) -> str:
    return _excerpt(f"{type(exc).__name__} {exc.strerror or exc}")
