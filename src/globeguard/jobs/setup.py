"""Assembling the jobs package for the composition root (wiring.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from globeguard.db.session import Database
from globeguard.jobs import signing
from globeguard.jobs.auth0.client import TokenCache
from globeguard.jobs.auth0.connector import Auth0SyncHandler
from globeguard.jobs.auth0.tenant import TenantAddresses
from globeguard.jobs.files import JobFiles
from globeguard.jobs.handlers import ExportHandler, ImportHandler
from globeguard.jobs.imports import UserImporter
from globeguard.jobs.runner import Handler, JobRunner
from globeguard.jobs.schemas import AUTH0_SYNC, EXPORT, IMPORT
from globeguard.jobs.service import JobService
from globeguard.kit.crypto import Sealer
from globeguard.settings import Settings
from globeguard.travel.ingest import BulkIngestor


@dataclass
class JobsParts:
    service: JobService
    runner: JobRunner
    handlers: dict[str, Handler]
    tokens: TokenCache


def build_jobs(
    settings: Settings, db: Database, sealer: Sealer, secret: bytes, ingestor: BulkIngestor
) -> JobsParts:
    files = JobFiles(settings.jobs.dir or Path(settings.data_dir) / "jobs")
    # One outbound policy for the tenant: checked at submission and on every connection.
    tenants = TenantAddresses(settings.auth0)
    service = JobService(
        files,
        sealer,
        signing.link_key(secret),
        settings.jobs.download_link_ttl,
        db.dialect,
        auth0_tenants=tenants,
    )
    importer = UserImporter(settings.limits.metadata_max_bytes)
    tokens = TokenCache()
    handlers: dict[str, Handler] = {
        EXPORT: ExportHandler(db, files),
        IMPORT: ImportHandler(db, importer, files),
        AUTH0_SYNC: Auth0SyncHandler(
            db, service, importer, ingestor, files, settings.auth0, tokens, tenants=tenants
        ),
    }
    runner = JobRunner(db, settings.jobs, handlers)
    service.wake = runner.wake
    return JobsParts(service, runner, handlers, tokens)
