"""Errors that reach clients as RFC 9457 problem details.

    AppError(status, code)          every error a client may see; `code` is stable
    ├── BadRequest          400
    ├── Unauthorized        401     carries WWW-Authenticate
    ├── Forbidden           403
    ├── NotFound            404
    ├── Conflict            409
    ├── Unprocessable       422
    └── TooManyRequests     429     carries Retry-After

Services raise these; one handler in app.py renders them. Anything else that escapes a route
is a bug and becomes a bare 500 with no detail.

An error raised with `keep_changes=True` still commits the request's transaction: a failed
sign-in must leave its audit row even though the client gets a 401.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.keep_changes = keep_changes
        self.detail = detail or self.title
        if code:
            self.code = code
        self.headers = headers or {}
        self.extra = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://globeguard.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        keep_changes: bool = False,
        **extra: Any,
    ):
        super().__init__(
            detail,
            code=code,
            headers={"WWW-Authenticate": 'Bearer realm="globeguard"'},
            keep_changes=keep_changes,
            **extra,
        )


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(AppError):
    status, code, title = 422, "validation_failed", "Validation failed"


class TooManyRequests(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after_s: int, detail: str | None = None):
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after_s))})
