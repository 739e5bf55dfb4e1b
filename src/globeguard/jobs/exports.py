"""Streaming a user export to a gzip file: keyset pages of plain rows, each page serialised
and compressed while the next one is read, so memory holds two pages whatever the size of
the table. NDJSON keeps metadata whole; CSV flattens it into dotted columns found by a first
pass over the same rows."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import io
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any

import anyio
import orjson
from sqlalchemy import ColumnElement, Select

from globeguard.db.session import Database
from globeguard.jobs.bulk_repository import UserExportRepository
from globeguard.jobs.cells import cell, flatten

# Export field → user column. Names follow Auth0's export, so Auth0's import and ours read
# the file back.
COLUMNS: dict[str, str] = {
    "user_id": "id",
    "username": "username",
    "email": "email",
    "email_verified": "email_verified",
    "given_name": "given_name",
    "family_name": "family_name",
    "status": "status",
    "user_metadata": "user_metadata",
    "app_metadata": "app_metadata",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "last_login": "last_login_at",
    "last_ip": "last_login_ip",
    "logins_count": "logins_count",
    "password_hash": "password_hash",
}
# Password hashes leave only when asked for by name (a migration to another instance).
DEFAULT_FIELDS = tuple(name for name in COLUMNS if name != "password_hash")
METADATA = ("user_metadata", "app_metadata")
# Rows per page: large enough that per-query overhead vanishes, small enough to be ~300 KB.
PAGE = 1000
# Distinct flattened metadata columns a CSV may have; beyond this, choose dotted fields.
MAX_CSV_COLUMNS = 1000
NDJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE
# Level 1 compresses user rows ~5:1 at several times the speed of the default level 6.
GZIP_LEVEL = 1

Progress = Callable[[int], Awaitable[None]]


# Metadata keys a dotted field may name (the user search language's alphabet).
KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class ExportError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Field:
    """One exported field: a whole column, or a dotted path into a metadata column."""

    name: str
    column: str
    path: tuple[str, ...] = ()

    def value(self, raw: Any) -> Any:
        return dig(raw, self.path)


def dig(raw: Any, path: Sequence[str]) -> Any:
    for key in path:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return raw


def resolve(names: Sequence[str] | None) -> list[Field]:
    """The fields to export, in the order given; ValueError names an unknown one."""
    fields = []
    for name in names or DEFAULT_FIELDS:
        head, _, rest = name.partition(".")
        if rest and head in METADATA and all(KEY.fullmatch(k) for k in rest.split(".")):
            fields.append(Field(name, head, tuple(rest.split("."))))
        elif name in COLUMNS:
            fields.append(Field(name, COLUMNS[name]))
        else:
            raise ExportError(
                f"unknown field '{name}': use {', '.join(COLUMNS)} or user_metadata.<key>"
            )
    if len({f.name for f in fields}) != len(fields):
        raise ExportError("a field is listed twice")
    return fields


def _columns(fields: Sequence[Field]) -> list[str]:
    return list(dict.fromkeys(f.column for f in fields))


class Exporter:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def count(self, where: ColumnElement[bool] | None) -> int:
        async with self.db.read() as session:
            return await UserExportRepository(session).count(where)

    async def write(
        self,
        path: Path,
        fields: Sequence[Field],
        fmt: str,
        where: ColumnElement[bool] | None,
        progress: Progress,
    ) -> int:
        """Write the export to `path` (complete or absent: written aside, then renamed);
        returns the number of users."""
        partial = path.with_suffix(".partial")
        header: list[str] | None = None
        if fmt == "csv":
            header = await self._csv_header(fields, where)
        handle = gzip.open(partial, "wb", compresslevel=GZIP_LEVEL)  # noqa: SIM115
        try:
            written = await self._pages(handle, fields, header, where, progress)
            await anyio.to_thread.run_sync(handle.close)
            os.replace(partial, path)
        finally:
            handle.close()
            if partial.exists():
                partial.unlink()
        return written

    async def _pages(
        self,
        handle: gzip.GzipFile,
        fields: Sequence[Field],
        header: list[str] | None,
        where: ColumnElement[bool] | None,
        progress: Progress,
    ) -> int:
        columns = _columns(fields)
        # NDJSON lines are written by the database; CSV flattens metadata in Python.
        encode: Callable[[Sequence[Any]], bytes]
        if header is None:
            plan = [(f.name, f.column, f.path) for f in fields]
            statements = UserExportRepository.ndjson_statements(plan, where, PAGE, self.db.dialect)
            encode = _lines
        else:
            statements = UserExportRepository.page_statements(columns, where, PAGE)
            encode = _csv_encoder(header, columns)
            handle.write(_csv_line(header))
        written, pending = 0, None
        async for rows in self._rows(*statements):
            chunk = encode(rows)
            if pending is not None:
                await pending
            # Compression runs in a thread (zlib releases the GIL) while the next page is read.
            pending = asyncio.ensure_future(anyio.to_thread.run_sync(handle.write, chunk))
            written += len(rows)
            await progress(written)
        if pending is not None:
            await pending
        return written

    async def _rows(self, first: Select[Any], later: Select[Any]) -> Any:
        """Pages of rows; the next page is already being read while the caller encodes this
        one (the driver fetches in its own thread)."""
        async with self.db.read() as session:
            repo = UserExportRepository(session)
            rows = await repo.rows(first, {})
            while rows:
                upcoming = None
                if len(rows) == PAGE:
                    last = rows[-1]
                    after = {"after_created": last[len(last) - 2], "after_id": last[len(last) - 1]}
                    upcoming = asyncio.ensure_future(repo.rows(later, after))
                try:
                    yield rows
                except BaseException:
                    if upcoming is not None:
                        upcoming.cancel()
                        with contextlib.suppress(BaseException):
                            await upcoming
                    raise
                rows = await upcoming if upcoming is not None else []

    async def _csv_header(
        self, fields: Sequence[Field], where: ColumnElement[bool] | None
    ) -> list[str]:
        """Column names: each whole metadata field becomes the sorted dotted paths of every
        leaf found in the exported rows (a first pass reading only those columns)."""
        whole = [f.column for f in fields if f.column in METADATA and not f.path]
        found: dict[str, set[str]] = {column: set() for column in whole}
        if whole:
            async for rows in self._rows(*UserExportRepository.page_statements(whole, where, PAGE)):
                for row in rows:
                    for index, column in enumerate(whole):
                        found[column].update(path for path, _ in flatten(row[index] or {}, column))
                if sum(len(paths) for paths in found.values()) > MAX_CSV_COLUMNS:
                    raise ExportError(
                        f"the metadata has over {MAX_CSV_COLUMNS} distinct keys: export NDJSON, "
                        "or choose fields such as user_metadata.plan"
                    )
        header = []
        for f in fields:
            header.extend(sorted(found[f.column]) if f.column in found and not f.path else [f.name])
        return header


def _lines(rows: Sequence[Any]) -> bytes:
    """Rows whose first column is a finished JSON line."""
    return ("\n".join(row[0] for row in rows) + "\n").encode()


def _csv_encoder(header: list[str], columns: list[str]) -> Callable[[Sequence[Any]], bytes]:
    """Each header name is a column, a dotted path into a metadata column, or a field."""
    getters: list[Callable[[Any], Any]] = []
    for name in header:
        head, _, rest = name.partition(".")
        if rest and head in METADATA:
            getters.append(partial(_dig_row, columns.index(head), tuple(rest.split("."))))
        else:
            getters.append(itemgetter(columns.index(COLUMNS[name])))

    def encode(rows: Sequence[Any]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in rows:
            writer.writerow([cell(get(row)) for get in getters])
        return out.getvalue().encode()

    return encode


def _dig_row(index: int, path: tuple[str, ...], row: Any) -> Any:
    return dig(row[index], path)


def _csv_line(values: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([cell(v) for v in values])
    return out.getvalue().encode()
