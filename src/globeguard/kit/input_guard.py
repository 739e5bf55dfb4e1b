"""One check of every request's path, query string and parsed body against `kit.limits`,
run as an application-wide dependency before any route's own validation.

Bodies are checked only when FastAPI has already parsed them for a declared body parameter
(JSON or a form): a route that reads its own stream (NDJSON, uploads, the Superman body)
keeps its own size limits and checks what it parses with the same rules.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from globeguard.kit.errors import Unprocessable
from globeguard.kit.limits import (
    MAX_BODY_DEPTH,
    LimitError,
    check_json,
    check_text,
    printable,
)

TITLES = {
    "invalid_text": "Text cannot be stored",
    "number_out_of_range": "Number out of range",
    "too_deep": "Nested too deeply",
}


class InputRefused(Unprocessable):
    """A value outside `kit.limits`; `errors` is shaped like a validation error's list."""

    def __init__(self, exc: LimitError) -> None:
        super().__init__(
            str(exc),
            code=exc.code,
            errors=[{"loc": [printable(p) for p in exc.path], "msg": exc.reason, "type": exc.code}],
        )
        self.title = TITLES.get(exc.code, self.title)


async def refuse_hostile_input(request: Request) -> None:
    try:
        _check_text_at(request.scope.get("path", ""), ("path",))
        for key, value in request.query_params.multi_items():
            _check_text_at(key, ("query", key))
            _check_text_at(value, ("query", key))
        if getattr(request.scope.get("route"), "body_field", None) is not None:
            await _check_parsed_body(request)
    except LimitError as exc:
        raise InputRefused(exc) from None


def _check_text_at(text: str, location: tuple[str, ...]) -> None:
    try:
        check_text(text)
    except LimitError as exc:
        raise exc.within(*location) from None


async def _check_parsed_body(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()  # parsed once already, for the route
        for key, value in form.multi_items():
            if not isinstance(value, UploadFile):
                _check_text_at(key, ("body", key))
                _check_text_at(value, ("body", key))
        return
    if kind == "application/json" or kind.endswith("+json"):
        if not await request.body():
            return
        body: Any = await request.json()  # parsed once already, for the route
        try:
            check_json(body, max_depth=MAX_BODY_DEPTH)
        except LimitError as exc:
            raise exc.within("body") from None
