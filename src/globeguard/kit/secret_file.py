"""A secret kept in a file, created once: however many processes start at the same moment,
all of them end up reading the same value, and none ever reads a half-written file."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

# Owner read/write only: the file seals every private signing key at rest.
SECRET_FILE_MODE = 0o600


def read_or_create(path: Path, generate: Callable[[], str]) -> str:
    """The secret in `path`; when there is none yet, `generate()`'s value, published whole.

    The new value is written to a private temporary file in the same directory, synced, then
    hard-linked to `path`. link(2) fails when `path` already exists, so of two racing
    processes exactly one publishes and the other reads the winner's value; `path` never
    exists with partial content (the old create-then-write let a second process read an
    empty key)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(generate())
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process published first
            os.link(temporary, path)
            _sync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text().strip()


def _sync_directory(directory: Path) -> None:
    # The new name must survive a power cut, or the next start would seal with a new secret
    # and fail to open the keys sealed with this one.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
