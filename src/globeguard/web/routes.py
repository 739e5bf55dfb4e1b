"""The admin dashboard at /dashboard: the built single-page app (gitignored `dist/`, built from
`ui/` by the package's build hook) and the one setting it reads at start.

The page itself is public (it holds no data); every number on it comes from the analytics API
with the admin's bearer token."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from globeguard.identity.dependencies import ContainerDep
from globeguard.kit.errors import AppError

DIST = Path(__file__).parent / "dist"

router = APIRouter(include_in_schema=False)
not_built = APIRouter(include_in_schema=False)


class DashboardNotBuilt(AppError):
    status, code, title = 503, "dashboard_not_built", "Dashboard not built"


@router.get("/dashboard")
async def dashboard_root() -> RedirectResponse:
    return RedirectResponse("/dashboard/", status_code=308)


@router.get("/dashboard/config.json")
async def dashboard_config(app: ContainerDep) -> JSONResponse:
    settings = app.settings.dashboard
    return JSONResponse(
        {"tile_url": settings.tile_url, "tile_attribution": settings.tile_attribution},
        headers={"Cache-Control": "no-store"},
    )


@not_built.get("/dashboard/{path:path}")
async def dashboard_missing(path: str) -> None:
    """A source checkout whose UI was never built (no Node when it was installed)."""
    raise DashboardNotBuilt(
        "the dashboard has not been built: run `make ui` (needs Node 20.19+ and npm 11)"
    )


def install_dashboard(app: FastAPI, dist: Path = DIST) -> None:
    """The redirect and the config come first, so they win over the static files."""
    app.include_router(router)
    if (dist / "index.html").is_file():
        app.mount("/dashboard", StaticFiles(directory=dist, html=True), name="dashboard")
    else:
        app.include_router(not_built)
