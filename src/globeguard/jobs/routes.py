"""/jobs: submit exports, imports and Auth0 syncs, poll them, cancel them, download exports.
Each route owns its transaction and wakes the runner once the job is committed."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import IO, Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from globeguard.identity.dependencies import ContainerDep, require
from globeguard.identity.permissions import Permission
from globeguard.identity.principal import Principal
from globeguard.jobs.schemas import Auth0SyncRequest, ExportRequest, JobRead
from globeguard.kit.body_limit import limit_body
from globeguard.kit.errors import BadRequest
from globeguard.wiring import Container

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
Manager = Annotated[Principal, Depends(require(Permission.JOBS_MANAGE))]


# `jobs:manage` runs jobs; what a job reads or writes needs its own permission too.
Exporter = Annotated[Principal, Depends(require(Permission.JOBS_MANAGE, Permission.USERS_READ))]
Importer = Annotated[Principal, Depends(require(Permission.JOBS_MANAGE, Permission.USERS_WRITE))]
RAW_TYPES = ("application/x-ndjson", "application/jsonl", "application/json", "application/gzip")
COPY_CHUNK = 1024 * 1024


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _accepted(app: Container, request: Request, job: JobRead) -> Response:
    return Response(
        job.model_dump_json(),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
        headers={"Location": f"{_base(request)}/api/v1/jobs/{job.id}"},
    )


@router.post("/users-exports", status_code=202, response_model=JobRead)
async def create_export(body: ExportRequest, principal: Exporter, request: Request) -> Response:
    """Export users (all, or those a search query matches) as gzipped NDJSON or CSV. Poll
    `GET /jobs/{id}`; once `completed` it carries a signed `location` valid 15 minutes."""
    app: Container = request.app.state.container
    async with app.db.transaction() as session:
        job = await app.jobs.submit_export(session, body, principal.actor, scopes=principal.scopes)
        view = app.jobs.view(job, _base(request))
    app.job_runner.wake()
    return _accepted(app, request, view)


@router.post(
    "/users-imports",
    status_code=202,
    response_model=JobRead,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "users": {"type": "string", "format": "binary"},
                            "upsert": {"type": "boolean"},
                        },
                        "required": ["users"],
                    }
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            }
        }
    },
)
async def create_import(
    principal: Importer, request: Request, upsert: bool = Query(default=False)
) -> Response:
    """Import users from Auth0's bulk-import JSON array, Auth0's export NDJSON, or our own
    export, gzipped or not, of any size: as multipart (`users` file, `upsert` field) or as
    the raw body. Existing users (same user_id or email) are errors unless `upsert`. Each
    record that cannot be imported is listed in the result with its line (or array index)
    and reason; every other record is imported."""
    app: Container = request.app.state.container
    staged, upsert = await _receive(request, app.jobs.files.root, upsert)
    try:
        async with app.db.transaction() as session:
            job = await app.jobs.submit_import(
                session, staged, upsert=upsert, actor=principal.actor, scopes=principal.scopes
            )
            view = app.jobs.view(job, _base(request))
    finally:
        await anyio.Path(staged).unlink(missing_ok=True)
    app.job_runner.wake()
    return _accepted(app, request, view)


async def _receive(request: Request, root: Path, upsert: bool) -> tuple[Path, bool]:
    """Spool the upload to a file under the jobs directory, whatever its size."""
    limit_body(request, None)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data" and kind not in RAW_TYPES:
        raise BadRequest(
            "send multipart/form-data with a `users` file, or NDJSON or JSON as the body",
            code="unsupported_upload",
        )
    await anyio.Path(root).mkdir(parents=True, exist_ok=True)
    staged = root / f"incoming-{uuid.uuid4().hex}"
    try:
        async with await anyio.open_file(staged, "wb") as out:
            if kind == "multipart/form-data":
                upsert = await _receive_form(request, out.wrapped, upsert)
            else:
                async for chunk in request.stream():
                    await out.write(chunk)
    except BaseException:
        await anyio.Path(staged).unlink(missing_ok=True)
        raise
    return staged, upsert


async def _receive_form(request: Request, out: IO[bytes], upsert: bool) -> bool:
    # Starlette spools file parts to disk past 1 MB; no part count or size is capped for files.
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("users")
        if not isinstance(upload, UploadFile):
            raise BadRequest("the form needs a `users` file", code="unsupported_upload")
        await anyio.to_thread.run_sync(shutil.copyfileobj, upload.file, out, COPY_CHUNK)
        flag = form.get("upsert")
        if isinstance(flag, str):
            upsert = flag.strip().lower() in ("1", "true", "yes", "on")
    return upsert


@router.post("/auth0-sync", status_code=202, response_model=JobRead)
async def create_auth0_sync(
    body: Auth0SyncRequest, principal: Importer, request: Request
) -> Response:
    """Import an Auth0 tenant's users through a Management API export job, and turn their
    last sign-in addresses into login events (map, travel checks). The client secret is
    stored sealed and never returned; no management token ever leaves the server."""
    app: Container = request.app.state.container
    async with app.db.transaction() as session:
        job = await app.jobs.submit_auth0_sync(
            session, body, principal.actor, scopes=principal.scopes
        )
        view = app.jobs.view(job, _base(request))
    app.job_runner.wake()
    return _accepted(app, request, view)


@router.get("/{job_id}", response_model=JobRead)
async def read_job(job_id: uuid.UUID, _: Manager, request: Request, app: ContainerDep) -> JobRead:
    async with app.db.read() as session:
        job = await app.jobs.get(session, job_id)
    return app.jobs.view(job, _base(request))


@router.post("/{job_id}/cancel", response_model=JobRead)
async def cancel_job(job_id: uuid.UUID, _: Manager, request: Request, app: ContainerDep) -> JobRead:
    """Cancel a pending or running job. A running import stops before its next batch
    commits; batches committed before stay."""
    async with app.db.transaction() as session:
        job = await app.jobs.cancel(session, job_id)
        view = app.jobs.view(job, _base(request))
    return view


@router.get("/{job_id}/download", response_class=FileResponse)
async def download(
    job_id: uuid.UUID,
    app: ContainerDep,
    expires: int = Query(ge=0),
    sig: str = Query(min_length=1, max_length=128),
) -> FileResponse:
    """The export file. The signed link is the credential (no API key needed)."""
    async with app.db.read() as session:
        path, filename = await app.jobs.download(session, job_id, expires, sig)
    return FileResponse(path, media_type="application/gzip", filename=filename)
