"""Errors of the OAuth endpoints (token, introspection) as RFC 6749 §5.2 says: `application/json`
with `error` and `error_description`. OAuth client libraries read only that shape (a problem
document would hide `invalid_grant` from them); every other route keeps problem details.

`OAuthRoute` renders whatever its endpoint raises: an OAuthError as itself, a missing or
malformed form field as `invalid_request`, any other AppError by its status (a sign-in
throttle's 429 keeps its status and Retry-After, as `temporarily_unavailable`), and a
database that does not answer as 503 `temporarily_unavailable` with Retry-After.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from globeguard.db.errors import CANDIDATES as DATABASE_ERRORS
from globeguard.db.errors import RETRY_AFTER_S, database_unavailable
from globeguard.identity.auth.tokens_service import OAuthError
from globeguard.kit.errors import AppError

# What a non-OAuth error of these endpoints means to an OAuth client, by HTTP status.
# A throttled or unavailable server is `temporarily_unavailable` (the IANA OAuth error
# registry's name; the status and Retry-After say how long).
_ERROR_BY_STATUS = {
    401: "invalid_client",
    403: "unauthorized_client",
    429: "temporarily_unavailable",
    503: "temporarily_unavailable",
}


def oauth_error_body(error: str, description: str) -> dict[str, Any]:
    return {"error": error, "error_description": description}


def oauth_response(exc: AppError) -> JSONResponse:
    if isinstance(exc, OAuthError):
        error = exc.code
    else:
        error = _ERROR_BY_STATUS.get(exc.status, "invalid_request")
    # An OAuthError 401 already challenges with Basic (§5.2); a bearer caller's 401 at
    # introspection keeps its Bearer challenge.
    body = oauth_error_body(error, exc.detail)
    if isinstance(exc, OAuthError):  # members of its own (an mfa_required's mfa_token)
        body = {**exc.extra, **body}
    return JSONResponse(
        body,
        status_code=exc.status,
        headers={**exc.headers, "Cache-Control": "no-store"},
    )


def _invalid_request(exc: RequestValidationError) -> JSONResponse:
    fields = sorted({str(err.get("loc", ("", "?"))[-1]) for err in exc.errors()})
    return JSONResponse(
        oauth_error_body("invalid_request", f"invalid or missing: {', '.join(fields)}"),
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )


class OAuthRoute(APIRoute):
    """A route whose errors are OAuth error responses instead of problem details.

    It swaps the application's handlers for AppError and RequestValidationError for its own
    requests only, rather than catching them in the endpoint: the request's transaction must
    still see the error to roll back (or keep what `keep_changes` keeps)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        handlers, by_status = scope.get(_HANDLERS_KEY, ({}, {}))
        ours = {
            **handlers,
            **dict.fromkeys(DATABASE_ERRORS, _database_error),
            AppError: _app_error,
            RequestValidationError: _validation_error,
        }
        await super().handle({**scope, _HANDLERS_KEY: (ours, by_status)}, receive, send)


_HANDLERS_KEY = "starlette.exception_handlers"


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return oauth_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _invalid_request(exc)


async def _database_error(request: Request, exc: Exception) -> Response:
    if not database_unavailable(exc):
        raise exc  # another database error: the application's own handlers decide
    return JSONResponse(
        oauth_error_body("temporarily_unavailable", "the database is not answering; retry"),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"},
    )
