"""The API docs at /docs: Swagger UI from files the package serves itself (copied from the
npm package swagger-ui-dist into `dist/docs` by the dashboard build), started by a script file
rather than an inline one. So the page needs no CDN and its Content-Security-Policy allows
scripts from this origin only (see security_headers)."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from globeguard.kit.errors import AppError
from globeguard.web.routes import DIST

DOCS_ASSETS = DIST / "docs"

PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title} — API</title>
    <link rel="icon" type="image/png" sizes="32x32" href="/docs/assets/favicon-32x32.png">
    <link rel="icon" type="image/png" sizes="16x16" href="/docs/assets/favicon-16x16.png">
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/assets/swagger-init.js"></script>
  </body>
</html>
"""


class RevalidatedFiles(StaticFiles):
    """Swagger UI's file names carry no content hash, so a browser must ask (by ETag, a 304
    when unchanged) before reusing one: after an upgrade the page never mixes old and new."""

    def file_response(
        self,
        full_path: os.PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = "no-cache"
        return response


class DocsNotBuilt(AppError):
    status, code, title = 503, "docs_not_built", "API docs not built"


def install_docs(app: FastAPI, assets: Path = DOCS_ASSETS) -> None:
    """Needs the app built with `docs_url=None, redoc_url=None` (FastAPI's own pages load
    Swagger UI and ReDoc from a CDN with inline scripts)."""
    page = PAGE.format(title=escape(app.title), openapi_url=escape(app.openapi_url or ""))
    built = (assets / "swagger-ui-bundle.js").is_file()

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not built:
            raise DocsNotBuilt(
                "the API docs page has not been built: run `make ui` (needs Node 20.19+ and "
                "npm 11); the OpenAPI document is at /openapi.json"
            )
        return HTMLResponse(page)

    if built:
        app.mount("/docs/assets", RevalidatedFiles(directory=assets), name="docs-assets")
