"""The mail port: hand one message to a mail server (or wherever the adapter puts it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol


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
