"""The `auth0.sync` job: export the tenant's users through the Management API, import them
(upsert), remember each one's Auth0 `user_id` as an external id (so logins other senders
report under it are the user's), and record each one's last sign-in as a login event, so the
map, the analytics and the travel checks show the tenant at once.

Resumable: the Auth0 job id is checkpointed as soon as it exists (a resumed sync polls the
same export instead of starting another), and each imported batch commits with its login
events and the checkpoint.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from globeguard.adapters.geoip.remote import Prefetching
from globeguard.db.session import Database
from globeguard.jobs.auth0.client import (
    Auth0Error,
    Credentials,
    ManagementClient,
    Polling,
    Sleep,
    TokenCache,
)
from globeguard.jobs.auth0.tenant import TenantAddresses
from globeguard.jobs.files import JobFiles
from globeguard.jobs.handlers import import_file
from globeguard.jobs.imports import StoredUser, UserImporter
from globeguard.jobs.reader import Item
from globeguard.jobs.repository import TenantRepository
from globeguard.jobs.runner import JobContext, JobFailed
from globeguard.jobs.service import JobService
from globeguard.settings import Auth0Settings
from globeguard.travel.ingest import BulkIngestor, IncomingEvent, IngestReport
from globeguard.travel.linking import ExternalId, SubjectLinker

SOURCE = "auth0"


def addresses_of(record: Any) -> list[str]:
    """The last-login addresses a raw export line names (see records._last_login)."""
    if not isinstance(record, dict):
        return []
    metadata = record.get("user_metadata")
    nested = metadata.get("last_login_ip") if isinstance(metadata, dict) else None
    found = (record.get("last_ip"), record.get("user_metadata.last_login_ip"), nested)
    return [ip for ip in found if isinstance(ip, str)]


def login_event(stored: StoredUser) -> IncomingEvent | None:
    """The user's last sign-in at Auth0 as a login event under our user id (the subject
    analytics ties to users). Its uuid comes from the user, place and time, so syncing again
    finds a duplicate instead of a second login; without Auth0's time, the record's
    `updated_at` stands in, which is as stable."""
    last = stored.imported.last_login
    if last is None:
        return None
    row = stored.imported.row
    at = last.at or row["updated_at"]
    key = f"{stored.user_id}|{last.ip}|{at.isoformat()}"
    return IncomingEvent(
        subject=str(stored.user_id),
        occurred_at=at,
        ip=last.ip,
        success=True,
        event_uuid="auth0-" + hashlib.sha256(key.encode()).hexdigest()[:40],
    )


def external_ids(stored: Sequence[StoredUser]) -> list[ExternalId]:
    """The ids Auth0 knows each synced user by: its `user_id`, and the UUID derived from it
    when the record updated a user with another id (matched by email): the log stream
    reports that user's sign-ins under the derived UUID (see logstream._subject)."""
    found = []
    for s in stored:
        if s.imported.external_id is None:
            continue
        found.append(ExternalId(s.imported.external_id, SOURCE, s.user_id))
        derived = s.imported.row["id"]
        if derived != s.user_id:
            found.append(ExternalId(str(derived), SOURCE, s.user_id))
    return found


class Auth0SyncHandler:
    def __init__(
        self,
        db: Database,
        jobs: JobService,
        importer: UserImporter,
        ingestor: BulkIngestor,
        files: JobFiles,
        settings: Auth0Settings,
        tokens: TokenCache,
        *,
        sleep: Sleep | None = None,
        rand: Any = random.random,
        monotonic: Any = time.monotonic,
        tenants: TenantAddresses | None = None,
        linker: SubjectLinker | None = None,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.importer = importer
        self.ingestor = ingestor
        self.files = files
        self.settings = settings
        self.tokens = tokens
        self.sleep = sleep
        self.rand = rand
        self.monotonic = monotonic
        self.tenants = tenants or TenantAddresses(settings)
        self.linker = linker or SubjectLinker()

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        credentials, connection_id = await self._credentials(ctx.params["domain"])
        polling = self._polling()
        timeout = self.settings.http_timeout.total_seconds()
        transport = self.tenants.transport()  # every connection through the SSRF guard
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as http:
            client = ManagementClient(http, credentials, self.tokens, polling)
            try:
                path = await self._export(ctx, client, connection_id, polling)
            except Auth0Error as exc:
                raise JobFailed(str(exc)) from exc
        logins = IngestReport()

        async def record_logins(session: AsyncSession, stored: Sequence[StoredUser]) -> None:
            # Logins reported under the users' Auth0 ids (before or after) are theirs, and so
            # are those the log stream sent under their ids before this sync created them.
            await self.linker.remember(session, external_ids(stored))
            await self.linker.claim(session, {str(s.user_id): s.user_id for s in stored})
            events = [(i, e) for i, s in enumerate(stored) if (e := login_event(s)) is not None]
            if events:
                users = {str(s.user_id): s.user_id for s in stored}
                await self.ingestor.store(session, events, SOURCE, logins, users)

        report = await import_file(
            self.db,
            self.importer,
            ctx,
            path,
            upsert=True,
            after_batch=record_logins,
            before_batch=self._prefetch,
        )
        path.unlink(missing_ok=True)
        return {
            **report.to_doc(),
            "auth0_job_id": ctx.checkpoint.get("auth0_job_id"),
            "login_events": {"accepted": logins.accepted, "duplicates": logins.duplicates},
            "poll_waits_s": [round(w, 3) for w in polling.waits],
        }

    async def _prefetch(self, items: Sequence[Item]) -> None:
        """Warm the optional remote IP provider with the batch's addresses, in one go."""
        locator = self.ingestor.locator
        if isinstance(locator, Prefetching):
            await locator.prefetch(ip for item in items for ip in addresses_of(item.record))

    async def _credentials(self, domain: str) -> tuple[Credentials, str | None]:
        async with self.db.read() as session:
            tenant = await TenantRepository(session).get(domain)
        if tenant is None:
            raise JobFailed(f"no credentials are stored for the tenant '{domain}'")
        try:  # checked at submission too; the settings may have changed since
            url = self.tenants.url(tenant.domain)
        except Auth0Error as exc:
            raise JobFailed(str(exc)) from exc
        secret = self.jobs.client_secret(tenant)
        return Credentials(url, tenant.client_id, secret), tenant.connection_id

    def _polling(self) -> Polling:
        return Polling(
            base_s=self.settings.poll_base.total_seconds(),
            cap_s=self.settings.poll_cap.total_seconds(),
            deadline_s=self.settings.poll_deadline.total_seconds(),
            sleep=self.sleep or asyncio.sleep,
            rand=self.rand,
            monotonic=self.monotonic,
            waits=[],
        )

    async def _export(
        self,
        ctx: JobContext,
        client: ManagementClient,
        connection_id: str | None,
        polling: Polling,
    ) -> Any:
        """Start the Auth0 export (or find the one a previous attempt started), wait for
        it, and download it at once: the link lives 60 s."""
        path = self.files.staging(ctx.job_id, "auth0.json.gz")
        if "import" in ctx.checkpoint and path.exists():
            return path  # an earlier attempt downloaded it and started importing
        auth0_job = ctx.checkpoint.get("auth0_job_id")
        if auth0_job is None:
            auth0_job = await client.create_export(connection_id)
            async with self.db.transaction() as session:
                await ctx.save(session, done=0, checkpoint={"auth0_job_id": auth0_job})
        deadline = polling.monotonic() + polling.deadline_s
        location = await client.wait_for_export(auth0_job, deadline)
        await client.download(auth0_job, location, path)
        return path
