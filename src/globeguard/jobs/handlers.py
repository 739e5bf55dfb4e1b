"""What the runner does for `users.export` and `users.import` jobs."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.db.session import Database
from globeguard.identity.search import QueryError
from globeguard.jobs.exports import Exporter, ExportError, resolve
from globeguard.jobs.files import JobFiles
from globeguard.jobs.formats import UnknownFormat
from globeguard.jobs.imports import (
    BATCH_SIZE,
    ImportAuthority,
    ImportReport,
    StoredUser,
    UserImporter,
)
from globeguard.jobs.reader import Item, RecordReader
from globeguard.jobs.runner import JobContext, JobFailed
from globeguard.jobs.service import CREATOR_SCOPES, user_filter

# Progress is written at most this often (in rows) during an export: one short UPDATE per
# 20 pages instead of one per page.
EXPORT_PROGRESS_EVERY = 20_000

AfterBatch = Callable[[AsyncSession, Sequence[StoredUser]], Awaitable[None]]
BeforeBatch = Callable[[Sequence[Item]], Awaitable[None]]


class ExportHandler:
    def __init__(self, db: Database, files: JobFiles) -> None:
        self.exporter = Exporter(db)
        self.files = files
        self.dialect = db.dialect

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        params = ctx.params
        fmt = params.get("format", "ndjson")
        try:
            fields = resolve(params.get("fields"))
            where = user_filter(params.get("q"), self.dialect)
        except (ExportError, QueryError) as exc:
            raise JobFailed(str(exc)) from exc
        total = await self.exporter.count(where)
        await ctx.progress(0, total)
        reported = 0

        async def progress(done: int) -> None:
            nonlocal reported
            if done - reported >= EXPORT_PROGRESS_EVERY:
                reported = done
                await ctx.progress(done)

        path = self.files.export(ctx.job_id, "csv" if fmt == "csv" else "ndjson")
        try:
            written = await self.exporter.write(path, fields, fmt, where, progress)
        except ExportError as exc:
            raise JobFailed(str(exc)) from exc
        await ctx.progress(written, max(total, written))
        return {"users": written, "format": fmt, "fields": [f.name for f in fields]}


class ImportHandler:
    def __init__(self, db: Database, importer: UserImporter, files: JobFiles) -> None:
        self.db = db
        self.importer = importer
        self.uploads = files.root / "uploads"

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        path = Path(ctx.params["path"])
        report = await import_file(
            self.db, self.importer, ctx, path, upsert=bool(ctx.params.get("upsert"))
        )
        # An upload is ours to delete once imported; a CLI user's own file never is.
        if path.is_relative_to(self.uploads):
            await anyio.Path(path).unlink(missing_ok=True)
        return report.to_doc()


async def import_file(
    db: Database,
    importer: UserImporter,
    ctx: JobContext,
    path: Path,
    *,
    upsert: bool,
    after_batch: AfterBatch | None = None,
    before_batch: BeforeBatch | None = None,
    checkpoint_key: str = "import",
) -> ImportReport:
    """Import `path` batch by batch. Each batch, its outbox events, whatever `after_batch`
    adds and the job's checkpoint commit together, so a job resumed after a crash skips
    exactly the records already committed. `before_batch` runs first, outside the
    transaction (network calls must not hold the database's write lock)."""
    try:
        reader = await anyio.to_thread.run_sync(RecordReader, path)
    except (UnknownFormat, OSError, EOFError) as exc:
        raise JobFailed(f"cannot read the file: {exc}") from exc
    try:
        report = ImportReport.from_doc(ctx.checkpoint.get(checkpoint_key), reader.position_name)
        skip = report.consumed
        while skip > 0:
            skipped = await _next(reader, min(skip, BATCH_SIZE), report)
            if not skipped:
                break
            skip -= len(skipped)
        actor = f"job:{ctx.job_id}"
        authority = ImportAuthority.of(ctx.params.get(CREATOR_SCOPES))
        while items := await _next(reader, BATCH_SIZE, report):
            if before_batch is not None:
                await before_batch(items)
            async with db.transaction() as session:
                stored = await importer.store_batch(
                    session,
                    items,
                    upsert=upsert,
                    actor=actor,
                    now=ctx.clock(),
                    report=report,
                    authority=authority,
                )
                if after_batch is not None:
                    await after_batch(session, stored)
                report.consumed += len(items)
                checkpoint = {**ctx.checkpoint, checkpoint_key: report.to_doc()}
                await ctx.save(session, done=report.consumed, checkpoint=checkpoint)
    finally:
        reader.close()
    return report


async def _next(reader: RecordReader, size: int, report: ImportReport) -> list[Any]:
    try:
        return await anyio.to_thread.run_sync(reader.next_batch, size)
    except (OSError, EOFError, zlib.error) as exc:
        raise JobFailed(
            f"the file is damaged after {report.consumed} records ({exc}); "
            "the records before it were imported"
        ) from exc
