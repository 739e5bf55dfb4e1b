"""The API docs at /docs: Swagger UI from files the package serves itself (copied from the
npm package swagger-ui-dist into `dist/docs` by the dashboard build), started by a script file
rather than an inline one. So the page needs no CDN and its Content-Security-Policy allows
scripts from this origin only (see security_headers)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from globeguard.kit.errors import AppError
from globeguard.web.routes import DIST

DOCS_ASSETS = DIST / "docs"

PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title} — API</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/assets/swagger-init.js"></script>
  </body>
</html>
"""


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
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")
