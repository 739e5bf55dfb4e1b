"""The ingestion counter and access log record the status the client really gets: the
route's mapping agrees with the app's problem handlers."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from globeguard.app import create_app
from globeguard.ingest.routes import _status_of
from globeguard.kit.body_limit import BodyTooLarge
from globeguard.kit.errors import BadRequest, Conflict, TooManyRequests, Unauthorized
from tests.conftest import make_settings

EXCEPTIONS = [
    BadRequest("x"),
    Unauthorized("x"),
    Conflict("x"),
    TooManyRequests(3),
    BodyTooLarge(16 * 1024),
    StarletteHTTPException(405),
    RequestValidationError([]),
    IntegrityError("INSERT", {}, Exception("duplicate")),
    OperationalError("SELECT", {}, Exception("gone")),
    InterfaceError("SELECT", {}, Exception("connection is closed")),
    ConnectionRefusedError(111, "Connect call failed"),
    RuntimeError("bug"),
]


def _handler(app, exc: Exception):
    for kind in type(exc).__mro__:
        if kind in app.exception_handlers:
            return app.exception_handlers[kind]
    raise LookupError(type(exc))


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
async def test_status_matches_the_problem_handler(tmp_path, exc):
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path))
    request = Request({"type": "http", "method": "GET", "path": "/x", "headers": []})
    response = await _handler(app, exc)(request, exc)
    assert _status_of(exc) == response.status_code
