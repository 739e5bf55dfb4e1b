"""`POST /api/v1/login-events`: logins reported by other IdPs, one JSON object or an NDJSON
stream of any size. The route is the transaction boundary: each batch commits on its own, so
a long stream keeps every good line even if a later part fails."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response, status

from globeguard.identity.dependencies import require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.kit.body_limit import limit_body
from globeguard.kit.errors import BadRequest
from globeguard.travel.ingest import (
    BATCH_SIZE,
    MAX_LINE_BYTES,
    IncomingEvent,
    IngestReport,
    Login,
    parse_line,
)
from globeguard.travel.ingest.reading import event_segments
from globeguard.wiring import Container

router = APIRouter(prefix="/api/v1", tags=["login intelligence"])
Writer = Annotated[Principal, Depends(require(Permission.LOGIN_EVENTS_WRITE))]
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson", "text/plain")
SOURCE = "api"


def _is_stream(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in NDJSON_TYPES


@router.post(
    "/login-events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": IncomingEvent.model_json_schema()},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_login_events(request: Request, _: Writer) -> Response:
    """One event as `application/json` (201 with its verdict), or many as
    `application/x-ndjson`, one object per line (200 with counts; each bad line is listed with
    its number and reason, and every good line is kept). Fields: `subject` (or `username`),
    `occurred_at` (ISO 8601 or unix seconds; also `timestamp`), `ip`, `success` (default
    true), `event_uuid` (optional; a replay of the same event is a duplicate, not a second
    login), `user_agent`, `failure_reason`."""
    app: Container = request.app.state.container
    if _is_stream(request):
        # A stream of any size: each line is held to MAX_LINE_BYTES as it is read.
        limit_body(request, None)
        report = await _ingest_stream(app, request)
        return Response(orjson.dumps(asdict(report)), media_type="application/json")
    # One event is one line of a stream, and held to the same size.
    limit_body(request, MAX_LINE_BYTES)
    return await _ingest_one(app, await request.body())


async def _ingest_stream(app: Container, request: Request) -> IngestReport:
    """Each batch is stored while the lines of the next are read and parsed: the loop would
    otherwise sit idle while the database (SQLite's writer thread, or PostgreSQL) writes a
    batch. The report still lists errors as lines come: a batch's refused lines, then its
    storage errors, then the next batch's.

    A stream is a bulk job for the cycle collector (as in kit.collector): each batch holds
    thousands of rows, events and verdicts until it is stored, which the automatic collector
    kept promoting and walking (measured: 30-50 µs of collector time per event, as much as
    storing it). They are freed by reference counting; between batches, a collection of
    the youngest generation frees what cycles a batch made, walking only what is young and
    alive (a full collection walks the whole process, 6-25 ms)."""
    report = IngestReport()
    storing: asyncio.Task[None] | None = None
    with _collector_paused():
        try:
            async for batch, refused in event_segments(request.stream(), BATCH_SIZE):
                if storing is not None:
                    await storing
                    storing = None
                    gc.collect(0)
                report.absorb(refused)
                if batch:
                    storing = asyncio.create_task(_store(app, batch, report))
            if storing is not None:
                await storing
        except asyncio.CancelledError:
            if storing is not None:
                storing.cancel()
            raise
        except BaseException:
            # The stream broke off: the batch being stored is kept, as it would have been
            # had it been stored before the stream was read on.
            if storing is not None:
                await asyncio.gather(storing, return_exceptions=True)
            raise
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    # Not kit.collector.collecting_between_batches: it asks gc.get_freeze_count(), which
    # walks the frozen start-up heap (~48 ms in a server), for every stream however short.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _store(app: Container, batch: list[tuple[int, Login]], report: IngestReport) -> None:
    async with app.db.transaction() as session:
        await app.ingestor.store(session, batch, SOURCE, report, described=False)


async def _ingest_one(app: Container, raw: bytes) -> Response:
    try:
        event = parse_line(raw)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_event") from exc
    report = IngestReport()
    async with app.db.transaction() as session:
        stored = await app.ingestor.store(session, [(1, event)], SOURCE, report)
    if report.errors:
        raise BadRequest(report.errors[0].reason, code="invalid_event")
    if not stored:  # a replay of an event we already have
        return Response(orjson.dumps({"duplicate": True}), media_type="application/json")
    new = next(iter(stored.values()))
    row, (grade, reasons) = new.row, new.verdict
    body: dict[str, Any] = {
        "event_uuid": row["event_uuid"],
        "subject": row["subject"],
        "occurred_at": row["occurred_at"].isoformat(),
        "ip": row["ip"],
        "located": row["located"],
        "geo_reason": row["geo_reason"],
        "verdict": grade.value,
        "verdict_reasons": reasons,
    }
    return Response(
        orjson.dumps(body), status_code=status.HTTP_201_CREATED, media_type="application/json"
    )
