"""Settings of the background work: event delivery, bulk jobs and the Auth0 connector (the
groups `GLOBEGUARD_DELIVERY__…`, `GLOBEGUARD_JOBS__…`, `GLOBEGUARD_AUTH0__…`; the root is
`globeguard.settings.Settings`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from globeguard.kit.env_list import CommaList


class DeliverySettings(BaseModel):
    """The event pipeline: outbox retention, fan-out to subscriptions, webhook and NATS
    delivery. Defaults follow Standard Webhooks' guidance and Svix's production values."""

    # Run the dispatcher inside `globeguard serve`; turn off when `globeguard worker`
    # processes do the delivering.
    embedded: bool = True
    # A receiver gets this long to answer (Standard Webhooks: 15-30 s).
    http_timeout: timedelta = Field(default=timedelta(seconds=15), gt=timedelta(0))
    # A claimed delivery is another worker's only after this: it must outlast the HTTP
    # timeout, or a slow answer would be delivered twice. 45 s = Svix's ack deadline.
    lease: timedelta = Field(default=timedelta(seconds=45), gt=timedelta(0))
    # Leases that may expire on one delivery before it is dead as poison (it kills workers).
    max_lease_expiries: int = Field(default=3, ge=1)
    # Delays between attempts; len + 1 attempts in all.
    retry_schedule: CommaList[timedelta] = Field(
        default_factory=lambda: [
            timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 36000)
        ],
        min_length=1,
    )
    retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    # A subscription failing for this long without a single success is disabled (Svix: 5
    # days); its pending deliveries wait for it to be enabled again.
    disable_after: timedelta = Field(default=timedelta(days=5), gt=timedelta(0))
    # Deliveries in flight at once in one process, all subscriptions together.
    concurrency: int = Field(default=64, ge=1)
    # Open connections to one receiver host, at most.
    connections_per_host: int = Field(default=16, ge=1)
    # Defaults for new subscriptions.
    default_max_in_flight: int = Field(default=16, ge=1)
    # Deliveries claimed per subscription per round trip.
    claim_batch: int = Field(default=64, ge=1)
    # How often an idle dispatcher looks for work. In-process commits of events a subscription
    # takes wake it at once; other processes' commits (API nodes on PostgreSQL), events no
    # subscription takes and other processes' changes of subscriptions are seen within this.
    poll_interval: timedelta = Field(default=timedelta(milliseconds=500), gt=timedelta(0))
    fanout_batch: int = Field(default=500, ge=1)
    # Webhook URLs on private, loopback and link-local addresses are refused (SSRF) unless
    # this is set, e.g. for receivers inside the same private network.
    allow_private_targets: bool = False
    # A PEM file of CA certificates trusted for https webhooks besides the public roots
    # (certifi's): receivers whose certificates a private CA issued.
    ca_bundle: Path | None = None
    # An HTTP egress proxy for webhooks, `http://[user:password@]host[:port]`: https goes
    # through a CONNECT tunnel, http in absolute form. The SSRF guard still checks every
    # receiver, and the proxy is given the address it approved, never the name.
    proxy_url: SecretStr | None = None
    # NATS server for `nats` subscriptions (JetStream must be enabled).
    nats_url: str | None = None
    # Outbox rows are kept this long for replay and the pull stream, then purged with their
    # finished deliveries, `retention_batch` rows per transaction, every `retention_interval`.
    outbox_retention: timedelta = Field(default=timedelta(days=14), gt=timedelta(0))
    retention_batch: int = Field(default=1000, ge=1)
    retention_interval: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    # Redriven deliveries are released at most this many per second, oldest first, so a
    # receiver back from an outage is not hit by its whole backlog at once.
    redrive_rate_per_s: float = Field(default=50.0, gt=0)
    redrive_max: int = Field(default=10_000, ge=1)
    # The pull stream (PostgreSQL) holds back events younger than this: sequence numbers are
    # taken at insert but become visible at commit, so a reader paging by `after=` could
    # otherwise step past an event whose transaction commits a moment later.
    stream_settle: timedelta = Field(default=timedelta(seconds=1), ge=timedelta(0))
    # Bytes of a receiver's answer kept with each attempt.
    response_excerpt_bytes: int = Field(default=1000, ge=0, le=1024)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_is_a_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @field_validator("proxy_url")
    @classmethod
    def _proxy_is_http(cls, url: SecretStr | None) -> SecretStr | None:
        from urllib.parse import urlsplit

        if url is not None:
            parts = urlsplit(url.get_secret_value())
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError("must be an http://host[:port] URL")
            parts.port  # noqa: B018 - raises ValueError for a port that is not one
        return url

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> DeliverySettings:
        if self.lease < self.http_timeout + timedelta(seconds=5):
            raise ValueError("delivery lease must exceed http_timeout by at least 5 s")
        return self


class JobsSettings(BaseModel):
    """Bulk jobs: user exports and imports, Auth0 syncs."""

    # Run the job runner inside `globeguard serve`; turn off when `globeguard worker`
    # processes run the jobs.
    embedded: bool = True
    # Jobs running at once in one process. Each holds one connection and streams; two keep
    # a 2-core box responsive to sign-ins while a million-user export runs.
    concurrency: int = Field(default=2, ge=1)
    # How often an idle runner looks for work; submissions in the same process wake it at once.
    poll_interval: timedelta = Field(default=timedelta(seconds=1), gt=timedelta(0))
    # A running job renews its lease every third of this; a job whose lease ran out (its
    # process died) is taken over by another runner or failed with a reason.
    lease: timedelta = Field(default=timedelta(seconds=60), ge=timedelta(seconds=3))
    # Runs a job may start (the first plus resumptions after a lost lease) before it fails.
    max_attempts: int = Field(default=3, ge=1)
    # Where export files and uploaded imports live (default: data_dir/jobs).
    dir: Path | None = None
    # An export's download link is signed and stops working after this.
    download_link_ttl: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0))
    # Finished jobs and their files are deleted after this (Auth0 keeps jobs 24 h).
    retention: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))


class Auth0Settings(BaseModel):
    """The Auth0 connector (`POST /api/v1/jobs/auth0-sync`) and log-stream ingestion."""

    # Default tenant for `globeguard auth0 sync`; the API stores tenants sealed instead.
    domain: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    # Export-job polling: exponential backoff with full jitter from `poll_base` up to
    # `poll_cap` per wait, giving up once `poll_deadline` has passed since the job was created.
    poll_base: timedelta = Field(default=timedelta(milliseconds=500), gt=timedelta(0))
    poll_cap: timedelta = Field(default=timedelta(seconds=8), gt=timedelta(0))
    poll_deadline: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0))
    http_timeout: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    # Plain-HTTP tenant URLs (``http://host:port``) are refused unless this is set (tests,
    # a local mock); a management token must not cross the network in the clear.
    allow_http: bool = False
    # Tenant domains that are, or resolve to, private, loopback or reserved addresses are
    # refused at submission and on every connection (SSRF), and a domain may name a port
    # only when this is set: for a local mock. Separate from the webhooks' setting, so that
    # private receivers do not open the internal network to whoever may submit a sync.
    allow_private_targets: bool = False
    # Bearer token Auth0's custom-webhook log stream sends (its "Authorization Token");
    # unset disables `POST /api/v1/ingest/auth0-logs`.
    log_stream_token: SecretStr | None = None
