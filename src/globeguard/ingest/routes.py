"""`GET|POST /api/v1/ingest/users`: the seed's front door, with its failures made loud.

Every request, whatever its outcome, gets one access-log line (key id, client address,
status, latency; never the message, which is personal data, so never the query string
either) and one count in `globeguard_ingest_requests_total{status}`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from globeguard.db.errors import database_unavailable
from globeguard.identity.dependencies import CurrentPrincipal, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.ingest.schemas import (
    ExternalUserRead,
    IngestAccepted,
    InvalidMessage,
    UserMessage,
    parse_message,
)
from globeguard.kit.body_limit import limit_body
from globeguard.kit.errors import AppError, BadRequest, TooManyRequests
from globeguard.kit.net import client_ip
from globeguard.wiring import Container

access_log = logging.getLogger("globeguard.ingest.access")
NO_KEY = "-"


def _status_of(exc: Exception) -> int:
    """The status app.py's problem handlers will answer with."""
    if isinstance(exc, AppError):
        return exc.status
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, IntegrityError):
        return 409
    if database_unavailable(exc):
        return 503
    return 500


class AccessLogged(APIRoute):
    """Counts and logs every outcome, including the 401/403/429 raised before the handler
    body runs, which a log call inside the handler would miss."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def logged(request: Request) -> Response:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status_code
                return response
            except Exception as exc:
                status = _status_of(exc)
                raise
            finally:
                _account(request, status, time.perf_counter() - started)

        return logged


def _client_ip(request: Request, app: Container) -> str | None:
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    return client_ip(peer, forwarded, app.settings.http.trusted_networks)


def _account(request: Request, status: int, seconds: float) -> None:
    app: Container = request.app.state.container
    app.metrics.ingest_requests.labels(status=str(status)).inc()
    access_log.info(
        "ingest key=%s ip=%s method=%s path=%s status=%d latency_ms=%.1f",
        getattr(request.state, "ingest_key", NO_KEY),
        _client_ip(request, app) or NO_KEY,
        request.method,
        request.url.path,
        status,
        seconds * 1000,
    )


async def ingest_caller(request: Request, principal: CurrentPrincipal) -> Principal:
    """An authenticated caller with `ingest`, within its key's rate."""
    key = principal.api_key_id or principal.actor
    request.state.ingest_key = key
    principal.require(Permission.INGEST)
    app: Container = request.app.state.container
    decision = app.ingest_buckets.take(key)
    if not decision.allowed:
        raise TooManyRequests(decision.retry_after_header, "this key's ingestion rate is exceeded")
    return principal


Caller = Annotated[Principal, Depends(ingest_caller)]
Reader = Annotated[Principal, Depends(require(Permission.USERS_READ))]
router = APIRouter(prefix="/api/v1/ingest", tags=["ingestion"], route_class=AccessLogged)
read_router = APIRouter(prefix="/api/v1/external-users", tags=["ingestion"])

MESSAGE_HELP = 'URL-encoded JSON: {"user_id": …, "email": …, "username": …}'


async def _accept(
    request: Request, caller: Principal, message: UserMessage, topic: str
) -> IngestAccepted:
    app: Container = request.app.state.container
    async with app.db.transaction() as session:
        done = await app.ingest.ingest(session, message, topic, caller.actor)
    return IngestAccepted(user_id=done.user_id, created=done.created, created_at=done.created_at)


def _parsed(value: Any) -> UserMessage:
    try:
        return parse_message(value)
    except InvalidMessage as exc:
        raise BadRequest(str(exc), code="invalid_message", errors=exc.errors) from exc


@router.get("/users")
async def ingest_user_query(
    request: Request,
    caller: Caller,
    topic: Annotated[str | None, Query(description="one of the configured topics")] = None,
    subject: Annotated[str | None, Query(description="accepted as the seed sent it")] = None,
    message: Annotated[str | None, Query(description=MESSAGE_HELP)] = None,
) -> IngestAccepted:
    """The seed's form: `?topic=&subject=&message=<url-encoded JSON>`, as its Auth0 Action
    sends it. `subject` is accepted for compatibility and not stored. Prefer POST: a query
    string carries personal data into every proxy log on the way."""
    app: Container = request.app.state.container
    chosen = app.ingest.topic(topic)
    if message is None:
        raise BadRequest(
            "message is required",
            code="invalid_message",
            errors=[{"field": "message", "reason": "Field required"}],
        )
    return await _accept(request, caller, _parsed(message), chosen)


@router.post(
    "/users",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": UserMessage.model_json_schema()}},
        }
    },
)
async def ingest_user(
    request: Request,
    caller: Caller,
    topic: Annotated[str | None, Query(description="one of the configured topics")] = None,
) -> IngestAccepted:
    """The message as the JSON body (`{"user_id", "email", "username"}`), or the seed's
    three parameters as one object `{"topic", "subject", "message"}`. 200 with `created`
    false for a replay; 400 naming each bad field, with nothing stored; 409 when the
    user_id is already stored with other values."""
    app: Container = request.app.state.container
    limit_body(request, app.settings.ingest.max_body_bytes)
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the body is not valid JSON", code="invalid_message") from exc
    if isinstance(body, dict) and "message" in body:
        envelope_topic = body.get("topic", topic)
        if envelope_topic is not None and not isinstance(envelope_topic, str):
            raise BadRequest("topic must be a string", code="unknown_topic")
        return await _accept(
            request, caller, _parsed(body["message"]), app.ingest.topic(envelope_topic)
        )
    return await _accept(request, caller, _parsed(body), app.ingest.topic(topic))


@read_router.get("/{user_id}")
async def get_external_user(request: Request, user_id: str, _: Reader) -> ExternalUserRead:
    """An ingested user, for subscribers of `user.ingested` (whose events carry ids only)."""
    app: Container = request.app.state.container
    async with app.db.read() as session:
        user = await app.ingest.get(session, user_id)
    return ExternalUserRead.model_validate(user, from_attributes=True)
