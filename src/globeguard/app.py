"""Application factory: middleware, problem responses, routers, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from globeguard import __version__
from globeguard.account.email_routes import router as account_email_router
from globeguard.account.mfa.admin_routes import router as mfa_admin_router
from globeguard.account.mfa.routes import router as mfa_router
from globeguard.account.stepup.routes import router as stepup_router
from globeguard.analytics.routes import router as analytics_router
from globeguard.boot import running
from globeguard.db.errors import CANDIDATES as DATABASE_ERRORS
from globeguard.db.errors import RETRY_AFTER_S, database_unavailable
from globeguard.events.routes import router as audit_router
from globeguard.events.routes import stream_router as events_router
from globeguard.events.subscriptions.routes import router as subscriptions_router
from globeguard.identity.api_keys.routes import router as api_keys_router
from globeguard.identity.auth.routes import router as auth_router
from globeguard.identity.auth.routes import well_known
from globeguard.identity.clients.routes import router as clients_router
from globeguard.identity.roles.routes import router as roles_router
from globeguard.identity.users.routes import router as users_router
from globeguard.ingest.routes import read_router as external_users_router
from globeguard.ingest.routes import router as user_ingest_router
from globeguard.jobs.auth0.routes import router as auth0_logs_router
from globeguard.jobs.routes import router as jobs_router
from globeguard.kit.body_limit import BodyLimitMiddleware
from globeguard.kit.errors import AppError
from globeguard.kit.input_guard import refuse_hostile_input
from globeguard.observability.routes import router as metrics_router
from globeguard.security_headers import SecurityHeaders
from globeguard.settings import Settings
from globeguard.travel.flagged_routes import router as flagged_router
from globeguard.travel.ingest_routes import router as ingest_router
from globeguard.travel.review_routes import router as review_router
from globeguard.travel.routes import router as travel_router
from globeguard.travel.superman import router as superman_router
from globeguard.web.docs import install_docs
from globeguard.web.routes import install_dashboard
from globeguard.wiring import Container, build

log = logging.getLogger("globeguard")
PROBLEM = "application/problem+json"

DESCRIPTION = """
Self-hosted identity with login intelligence: accounts, ES256 JWTs with refresh rotation,
API keys, roles, user search, and an audit trail of every security-relevant change.

**Authorize**: use *Bearer* (the OAuth2 password flow signs you in with username and
password) or *ApiKey* (paste a key from `POST /api/v1/api-keys`).

Errors are RFC 9457 problem details with a stable `code`.

GeoIP: the bundled database includes GeoLite2 data created by MaxMind, available from
https://www.maxmind.com (CC BY-SA 4.0).
"""

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _problem(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo `input`: it may be a password.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        return _problem(exc.status, exc.to_problem(request.url.path), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in errors)
        return _problem(
            422,
            {
                "type": "https://globeguard.dev/problems/validation_failed",
                "title": "Validation failed",
                "status": 422,
                "code": "validation_failed",
                "detail": f"invalid or missing: {fields}",
                "errors": errors,
                "instance": request.url.path,
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "http_error")
        return _problem(
            exc.status_code,
            {
                "type": f"https://globeguard.dev/problems/{code}",
                "title": str(exc.detail),
                "status": exc.status_code,
                "code": code,
                "detail": str(exc.detail),
                "instance": request.url.path,
            },
            getattr(exc, "headers", None),
        )

    @app.exception_handler(IntegrityError)
    async def conflict(request: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced past our uniqueness checks; the database kept one of them.
        log.info("integrity conflict on %s: %s", request.url.path, exc.orig)
        return _problem(
            409,
            {
                "type": "https://globeguard.dev/problems/conflict",
                "title": "Conflict",
                "status": 409,
                "code": "conflict",
                "detail": "a concurrent change conflicted with this one; retry",
            },
        )

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # another database error: its own handler's, or a bug (500)
        log.error("database unavailable on %s: %r", request.url.path, exc)
        return _problem(
            503,
            {
                "type": "https://globeguard.dev/problems/database_unavailable",
                "title": "Service unavailable",
                "status": 503,
                "code": "database_unavailable",
                "detail": "the database is not answering; retry shortly",
            },
            {"Retry-After": str(RETRY_AFTER_S)},
        )

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, unavailable)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem(
            500,
            {
                "type": "https://globeguard.dev/problems/internal_error",
                "title": "Internal error",
                "status": 500,
                "code": "internal_error",
                "detail": "an unexpected error occurred; it has been logged",
            },
        )


def install_ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: the database answers and signing keys are loaded."""
        container: Container = request.app.state.container
        checks = {"database": "ok", "signing_keys": "ok"}
        try:
            async with container.db.read() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:  # readiness reports any failure instead of raising it
            checks["database"] = f"error: {type(exc).__name__}"
        if container.ring.signing is None:
            checks["signing_keys"] = "not loaded"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    settings = settings or Settings()
    container = container or build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(container):
            yield

    app = FastAPI(
        title="Globeguard",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by install_docs: FastAPI's pages use a CDN and inline scripts.
        docs_url=None,
        redoc_url=None,
        # Every route: no NUL in path, query or parsed body; JSON within kit.limits.
        dependencies=[Depends(refuse_hostile_input)],
    )
    app.state.container = container
    app.add_middleware(BodyLimitMiddleware, default_bytes=settings.http.max_body_bytes)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    # Outermost, so every answer of the app (413, CORS, problems) carries them.
    app.add_middleware(
        SecurityHeaders,
        trusted_proxies=settings.http.trusted_networks,
        tile_url=settings.dashboard.tile_url,
    )
    install_error_handlers(app)
    install_ops_routes(app)
    # Starlette tries routes in order: the one-event login route, the hottest, comes first.
    for router in (
        superman_router,
        auth_router,
        stepup_router,
        well_known,
        users_router,
        account_email_router,
        mfa_router,
        mfa_admin_router,
        api_keys_router,
        roles_router,
        clients_router,
        audit_router,
        ingest_router,
        flagged_router,
        review_router,
        travel_router,
        user_ingest_router,
        external_users_router,
        metrics_router,
        events_router,
        subscriptions_router,
        analytics_router,
        jobs_router,
        auth0_logs_router,
    ):
        app.include_router(router)
    install_dashboard(app)
    install_docs(app)
    return app
