"""Job rules: what may be submitted, reading and cancelling jobs, signed download links, and
the Auth0 tenants' sealed credentials. Services never commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.identity.models import User
from globeguard.identity.permissions import Permission
from globeguard.identity.search import QueryError, compile_user_filter, parse, top_fields
from globeguard.jobs import signing
from globeguard.jobs.auth0.tenant import TenantAddresses
from globeguard.jobs.exports import ExportError, resolve
from globeguard.jobs.files import JobFiles
from globeguard.jobs.models import Auth0Tenant, Job
from globeguard.jobs.repository import JobRepository, TenantRepository
from globeguard.jobs.schemas import (
    AUTH0_SYNC,
    EXPORT,
    IMPORT,
    Auth0SyncRequest,
    ExportRequest,
    JobProgress,
    JobRead,
)
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.crypto import Sealer
from globeguard.kit.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable

TENANT_SECRET_PURPOSE = "auth0-client-secret"  # noqa: S105 - a sealing label
# Job parameter: the creating credential's effective permissions (see submit_import).
CREATOR_SCOPES = "creator_scopes"


def _require_password_hashes(scopes: Iterable[str], doing: str) -> None:
    if Permission.USERS_PASSWORD_HASHES not in set(scopes):
        raise Forbidden(
            f"{doing} needs the '{Permission.USERS_PASSWORD_HASHES}' permission",
            code="forbidden",
        )


def user_filter(q: str | None, dialect: str) -> Any:
    """The WHERE clause of a search query; deleted users are left out unless it is about
    `status` (as `GET /users` does). QueryError for a bad query."""
    tree = parse(q or "")
    where = compile_user_filter(tree, dialect) if tree is not None else None
    if "status" in top_fields(tree):
        return where
    live = User.status != "deleted"
    return live if where is None else live & where


class JobService:
    def __init__(
        self,
        files: JobFiles,
        sealer: Sealer,
        link_key: bytes,
        link_ttl: timedelta,
        dialect: str,
        *,
        auth0_tenants: TenantAddresses,
        wake: Callable[[], None] = lambda: None,
        clock: Clock = utcnow,
    ) -> None:
        self.files = files
        self.sealer = sealer
        self.link_key = link_key
        self.link_ttl = link_ttl
        self.dialect = dialect
        self.auth0_tenants = auth0_tenants
        self.wake = wake
        self.clock = clock

    def _new(self, session: AsyncSession, kind: str, params: dict[str, Any], actor: str) -> Job:
        now = self.clock()
        job = Job(
            id=uuid.uuid4(),
            kind=kind,
            status="pending",
            params=params,
            created_by=actor[:128],
            progress_done=0,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        JobRepository(session).add(job)
        return job

    async def submit_export(
        self, session: AsyncSession, body: ExportRequest, actor: str, *, scopes: Iterable[str]
    ) -> Job:
        """`scopes`: the effective permissions of the credential submitting the job."""
        try:
            fields = resolve(body.fields)
            user_filter(body.q, self.dialect)
        except ExportError as exc:
            raise Unprocessable(str(exc), code="invalid_fields") from exc
        except QueryError as exc:
            raise BadRequest(
                f"{exc.message} (at position {exc.position})", code="invalid_query"
            ) from exc
        if any(f.column == "password_hash" for f in fields):
            _require_password_hashes(scopes, "exporting password hashes")
        job = self._new(session, EXPORT, body.model_dump(), actor)
        await session.flush()
        return job

    async def submit_import(
        self,
        session: AsyncSession,
        upload: Path,
        *,
        upsert: bool,
        actor: str,
        scopes: Iterable[str],
        move: bool = True,
    ) -> Job:
        """`upload` becomes the job's file (moved into the jobs directory), or, for the CLI
        (`move=False`), is read where it is: a server-side path, never taken from the API.
        The job remembers `scopes`, its creator's effective permissions, because what a record
        may change (a password hash, an admin's account) is decided record by record."""
        job = self._new(session, IMPORT, {"upsert": upsert}, actor)
        target = upload.resolve()  # noqa: ASYNC240 - path arithmetic and one readlink
        if move:
            target = self.files.upload(job.id)
            upload.replace(target)  # noqa: ASYNC240 - a rename within one directory tree
        job.params = {"upsert": upsert, "path": str(target), CREATOR_SCOPES: sorted(scopes)}
        await session.flush()
        return job

    async def submit_auth0_sync(
        self, session: AsyncSession, body: Auth0SyncRequest, actor: str, *, scopes: Iterable[str]
    ) -> Job:
        tenant = await self._tenant(session, body)
        params = {"domain": tenant.domain, CREATOR_SCOPES: sorted(scopes)}
        job = self._new(session, AUTH0_SYNC, params, actor)
        await session.flush()
        return job

    async def _tenant(self, session: AsyncSession, body: Auth0SyncRequest) -> Auth0Tenant:
        repo = TenantRepository(session)
        if body.domain is None:
            tenant = await repo.only()
            if tenant is None:
                raise Unprocessable("name the tenant's domain", code="auth0_tenant_required")
            return tenant
        domain = body.domain.strip().rstrip("/").lower()
        await self.auth0_tenants.approve(domain)  # 422 before anything is stored
        tenant = await repo.get(domain)
        if body.client_id is not None or body.client_secret is not None:
            if body.client_id is None or body.client_secret is None:
                raise Unprocessable(
                    "give client_id and client_secret together", code="auth0_credentials"
                )
            now = self.clock()
            sealed = self.sealer.seal(
                body.client_secret.get_secret_value().encode(), TENANT_SECRET_PURPOSE
            )
            if tenant is None:
                tenant = Auth0Tenant(domain=domain, created_at=now)
                repo.add(tenant)
            tenant.client_id, tenant.client_secret_sealed = body.client_id, sealed
            tenant.updated_at = now
        if tenant is None:
            raise NotFound(
                f"no credentials are stored for '{domain}'; give client_id and client_secret",
                code="auth0_tenant_not_found",
            )
        if body.connection_id is not None:
            tenant.connection_id = body.connection_id
        return tenant

    def client_secret(self, tenant: Auth0Tenant) -> str:
        return self.sealer.open(tenant.client_secret_sealed, TENANT_SECRET_PURPOSE).decode()

    async def get(self, session: AsyncSession, job_id: uuid.UUID) -> Job:
        job = await JobRepository(session).get(job_id)
        if job is None:
            raise NotFound("no such job", code="job_not_found")
        return job

    async def cancel(self, session: AsyncSession, job_id: uuid.UUID) -> Job:
        job = await self.get(session, job_id)
        if not await JobRepository(session).cancel(job_id, self.clock()):
            raise Conflict(f"the job is {job.status} already", code="job_finished")
        await session.refresh(job)
        return job

    def view(self, job: Job, base_url: str) -> JobRead:
        location, expires_at = None, None
        if job.kind == EXPORT and job.status == "completed":
            expires_at = self.clock() + self.link_ttl
            expires = int(expires_at.timestamp())
            signature = signing.sign(self.link_key, job.id, expires)
            location = f"{base_url}/api/v1/jobs/{job.id}/download?expires={expires}&sig={signature}"
        return JobRead(
            id=job.id,
            kind=job.kind,
            status=job.status,
            progress=JobProgress(done=job.progress_done, total=job.progress_total),
            error=job.error,
            result=job.result,
            created_by=job.created_by,
            attempts=job.attempts,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            location=location,
            location_expires_at=expires_at,
        )

    async def download(
        self, session: AsyncSession, job_id: uuid.UUID, expires: int, signature: str
    ) -> tuple[Path, str]:
        """The export file a signed link names, and its download name. A bad or expired
        signature and an unknown job are one 404, so a link reveals nothing once dead."""
        now = self.clock().timestamp()
        job = await JobRepository(session).get(job_id)
        valid = signing.verify(self.link_key, job_id, expires, signature, now)
        if not valid or job is None or job.kind != EXPORT or job.status != "completed":
            raise NotFound("this link is invalid or has expired", code="link_invalid")
        extension = "csv" if (job.params or {}).get("format") == "csv" else "ndjson"
        path = self.files.export(job.id, extension)
        if not path.exists():
            raise NotFound("the export file is gone (retention)", code="link_invalid")
        return path, f"users-{job.id}.{extension}.gz"
