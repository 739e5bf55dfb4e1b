"""`POST /api/v1/ingest/auth0-logs`: Auth0's custom-webhook log stream, authenticated by the
bearer token configured on both sides (compared in constant time)."""

from __future__ import annotations

import hmac

import orjson
from fastapi import APIRouter, Request, Response

from globeguard.jobs.auth0.logstream import BatchError, items_of, parse_batch
from globeguard.kit.body_limit import limit_body
from globeguard.kit.errors import BadRequest, NotFound, Unauthorized
from globeguard.travel.ingest import BATCH_SIZE, IngestReport
from globeguard.wiring import Container

router = APIRouter(prefix="/api/v1/ingest", tags=["login intelligence"])
SOURCE = "auth0-logs"
# Auth0 sends at most a few hundred events per request; 10 MiB is far beyond that.
MAX_BODY_BYTES = 10 * 1024 * 1024


def _authorised(request: Request, app: Container) -> None:
    expected = app.settings.auth0.log_stream_token
    if expected is None:
        raise NotFound("the Auth0 log stream is not enabled", code="log_stream_disabled")
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    # Auth0 sends the configured "Authorization Token" as the header value itself; accept it
    # bare or after "Bearer".
    token = presented.strip() if scheme.lower() == "bearer" else header.strip()
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("wrong or missing log-stream token", code="invalid_token")


async def _body(request: Request) -> bytes:
    limit_body(request, MAX_BODY_BYTES)
    return await request.body()


@router.post("/auth0-logs")
async def auth0_logs(request: Request) -> Response:
    """Sign-ins from an Auth0 log stream (JSON array, JSON lines or one object). Answers 200
    with counts even when some items are bad (listed by index): Auth0 retries only failed
    requests, and a bad item would fail again."""
    app: Container = request.app.state.container
    _authorised(request, app)
    try:
        parsed = parse_batch(items_of(await _body(request)))
    except BatchError as exc:
        raise BadRequest(str(exc), code="invalid_log_batch") from exc
    report = IngestReport()
    for index, reason in parsed.errors:
        report.reject(index, reason)
    for start in range(0, len(parsed.events), BATCH_SIZE):
        async with app.db.transaction() as session:
            await app.ingestor.store(
                session, parsed.events[start : start + BATCH_SIZE], SOURCE, report
            )
    body = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "ignored": parsed.ignored,
        "suspicious": report.suspicious,
        "errors": [{"index": e.line, "reason": e.reason} for e in report.errors],
        "error_count": report.error_count,
    }
    return Response(orjson.dumps(body), media_type="application/json")
