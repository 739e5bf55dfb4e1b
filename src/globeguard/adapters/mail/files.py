"""No mail server configured (the default): each message becomes an `.eml` file under
`<data_dir>/mail/`, which any mail client opens, and one line is logged saying where (the
recipient, the kind of message, the file). Neither body nor subject is logged: they carry
single-use links and codes."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from globeguard.adapters.mail.mime import build_message
from globeguard.adapters.mail.port import OutgoingMail, TransientMailError
from globeguard.kit.clock import Clock, utcnow

log = logging.getLogger(__name__)


class FileMailer:
    def __init__(self, directory: Path, from_address: str, clock: Clock = utcnow) -> None:
        self.directory = directory
        self.from_address = from_address
        self._clock = clock

    async def send(self, message: OutgoingMail) -> None:
        now = self._clock()
        data = bytes(build_message(message, self.from_address, now))
        # Sorted by time in a listing; the id keeps names unique (and a retry overwrites).
        path = self.directory / f"{now:%Y%m%dT%H%M%S}-{message.id}.eml"
        try:
            await asyncio.to_thread(_write_private, path, data)
        except OSError as exc:
            raise TransientMailError(f"cannot write {path}: {exc.strerror or exc}") from None
        # The kind, not the subject: a subject may hold a secret too (a sign-in code).
        log.info("mail to %s (%s) written to %s", message.to, message.kind, path)

    async def close(self) -> None:
        """Nothing to release."""


def _write_private(path: Path, data: bytes) -> None:
    """Readable by this user only (the links in it are as good as a password for a while),
    written whole: a reader never sees half a message."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".eml.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)
