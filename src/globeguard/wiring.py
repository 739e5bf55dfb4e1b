"""Composition root: settings → adapters → services. The only module that picks concrete
implementations."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx

from globeguard.account.breached import BreachedPasswords
from globeguard.account.email_flows import EmailFlows, build_email_flows
from globeguard.account.mfa.service import MfaService
from globeguard.account.notices import NoticeService
from globeguard.account.one_time import OneTimeTokens
from globeguard.account.stepup.service import StepUpService
from globeguard.adapters.geoip import GeoLocator, MaxMindLocator
from globeguard.adapters.geoip.remote import RemoteBatchLocator
from globeguard.adapters.kv.memory import MemoryCounters
from globeguard.adapters.kv.port import Counters
from globeguard.adapters.kv.redis import RedisCounters
from globeguard.adapters.mail.files import FileMailer
from globeguard.adapters.mail.port import Mailer
from globeguard.adapters.mail.smtp import SmtpMailer
from globeguard.analytics.rollups import RollupObserver
from globeguard.analytics.service import AnalyticsService
from globeguard.db.session import Database
from globeguard.events.delivery.dispatcher import Dispatcher
from globeguard.events.delivery.service import BacklogGauges, DeliveryService
from globeguard.events.outbox import install_commit_wakeup
from globeguard.events.service import AuditService, EventStreamService
from globeguard.events.sinks.guard import GuardedTransport, TargetGuard
from globeguard.events.sinks.nats import NatsSink
from globeguard.events.sinks.port import Sink
from globeguard.events.sinks.webhook import WebhookSink
from globeguard.events.subscriptions.service import SubscriptionService
from globeguard.identity.api_keys.service import ApiKeyAuthenticator, ApiKeyService
from globeguard.identity.auth.logout_service import LogoutService
from globeguard.identity.auth.service import AuthService
from globeguard.identity.auth.throttle import SigninThrottle
from globeguard.identity.auth.tokens_service import TokenIssuer
from globeguard.identity.clients.service import ClientService
from globeguard.identity.keys import SigningKeyService
from globeguard.identity.passwords import PasswordHasher
from globeguard.identity.principal import Authenticator
from globeguard.identity.revocation import (
    Evictable,
    PostgresRevocationListener,
    RevocationCache,
    install_commit_hook,
)
from globeguard.identity.roles.service import RoleService
from globeguard.identity.tokens import KeyRing
from globeguard.identity.users.service import UserService
from globeguard.identity.users.view_cache import UserViewCache
from globeguard.ingest.service import IngestService
from globeguard.jobs.auth0.client import TokenCache
from globeguard.jobs.runner import JobRunner
from globeguard.jobs.service import JobService
from globeguard.jobs.setup import build_jobs
from globeguard.kit import secret_file
from globeguard.kit.bucket import TokenBuckets
from globeguard.kit.clock import Clock, utcnow
from globeguard.kit.crypto import Sealer
from globeguard.mail.outbox import MailOutbox, install_mail_wakeup
from globeguard.mail.sender import MailSender
from globeguard.observability.metrics import Metrics
from globeguard.settings import GeoIpSettings, Settings, secret_key_problem
from globeguard.travel.announce import VerdictAnnouncer, VerdictCounter
from globeguard.travel.batcher import LoginBatcher
from globeguard.travel.ingest import BulkIngestor
from globeguard.travel.linking import SubjectLinker
from globeguard.travel.review import LoginReviewService
from globeguard.travel.service import LoginEventService


def master_secret(settings: Settings) -> bytes:
    """The configured secret, else one generated on first start and kept in data_dir."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = Path(settings.data_dir) / "secret.key"
    secret = secret_file.read_or_create(path, lambda: secrets.token_urlsafe(48))
    if problem := secret_key_problem(secret):
        raise RuntimeError(f"{path}: {problem}")
    return secret.encode()


@dataclass
class Container:
    settings: Settings
    db: Database
    hasher: PasswordHasher
    ring: KeyRing
    revocations: RevocationCache
    user_views: UserViewCache
    signing_keys: SigningKeyService
    authenticator: Authenticator
    users: UserService
    auth: AuthService
    # Ending one session, or every session of an account.
    logouts: LogoutService
    roles: RoleService
    api_keys: ApiKeyService
    clients: ClientService
    audit: AuditService
    locator: GeoLocator
    logins: LoginEventService
    ingestor: BulkIngestor
    superman_batcher: LoginBatcher
    counters: Counters
    metrics: Metrics
    ingest: IngestService
    ingest_buckets: TokenBuckets
    revocation_listener: PostgresRevocationListener | None
    subscriptions: SubscriptionService
    deliveries: DeliveryService
    event_stream: EventStreamService
    sinks: dict[str, Sink]
    dispatcher: Dispatcher
    analytics: AnalyticsService
    jobs: JobService
    job_runner: JobRunner
    auth0_tokens: TokenCache
    # Which user a reported login's subject belongs to.
    linker: SubjectLinker
    # An admin's "safe" / "compromised" on a login.
    reviews: LoginReviewService
    # The user's authenticator app and recovery codes; `check` verifies a second factor.
    mfa: MfaService
    # "Was this you?" and "your password was changed" emails (the step-up policy's notify).
    notices: NoticeService
    # Email verification, password reset by email, answers to sign-in notices.
    email_flows: EmailFlows
    # Queues email in the caller's transaction; the sender mails it after the commit.
    mail: MailOutbox
    mail_sender: MailSender


def build(settings: Settings) -> Container:
    db = Database(settings.db)
    auth_settings = settings.auth
    hasher = PasswordHasher(auth_settings.hash_concurrency)
    ring = KeyRing(auth_settings.issuer, auth_settings.audience, auth_settings.leeway)
    ttl_s = auth_settings.revocation_cache_ttl.total_seconds()
    revocations = RevocationCache(ttl_s)
    user_views = UserViewCache(ttl_s)
    api_key_auth = ApiKeyAuthenticator(auth_settings.api_key_last_used_resolution, ttl_s)
    caches: list[Evictable] = [revocations, user_views, api_key_auth]
    install_commit_hook(db.sessionmaker.kw["sync_session_class"], caches)
    metrics = Metrics()
    users = UserService(hasher, auth_settings, settings.limits, breached_check(settings, metrics))
    issuer = TokenIssuer(ring, auth_settings)
    listener = (
        PostgresRevocationListener(settings.db.url, caches) if db.dialect == "postgresql" else None
    )
    locator = remote_locator(settings, local_locator(settings.geoip))
    counters: Counters = (
        RedisCounters(settings.kv.url, timeout_s=settings.kv.timeout.total_seconds())
        if settings.kv.url
        else MemoryCounters()
    )
    # Analytics rollups and verdict announcements are written in the same transaction as
    # the login events they derive from.
    counter = VerdictCounter(metrics, db.sessionmaker.kw["sync_session_class"])
    observers = (RollupObserver(), VerdictAnnouncer(counter))
    linker = SubjectLinker()
    roles = RoleService()
    logins = LoginEventService(locator, settings.travel, observers=observers, linker=linker)
    ingestor = BulkIngestor(locator, settings.travel, observers=observers, linker=linker)
    secret = master_secret(settings)
    sealer = Sealer(secret)
    signing_keys = SigningKeyService(sealer, auth_settings.access_token_ttl, auth_settings.leeway)
    subscriptions = SubscriptionService(
        sealer, TargetGuard(settings.delivery.allow_private_targets), settings.delivery
    )
    sinks = delivery_sinks(settings)
    dispatcher = Dispatcher(db, subscriptions, sinks, settings.delivery, metrics=metrics)
    install_commit_wakeup(
        db.sessionmaker.kw["sync_session_class"],
        dispatcher.wake,
        notify=db.dialect == "postgresql",
    )
    metrics.on_scrape(BacklogGauges(db, metrics).refresh, "delivery_backlog")
    jobs = build_jobs(settings, db, sealer, secret, ingestor)
    reviews = LoginReviewService(logins, users, roles)
    mail = MailOutbox(sealer, settings.mail.public_url or auth_settings.issuer)
    mail_sender = MailSender(db, mail, mailer(settings), settings.mail, metrics=metrics)
    install_mail_wakeup(db.sessionmaker.kw["sync_session_class"], mail_sender.wake)
    notices, email_flows = build_email_flows(
        mail, counters, users, reviews, locator, settings.account
    )
    throttle = SigninThrottle(counters, auth_settings)
    auth = AuthService(db, hasher, issuer, users, logins, settings.risk, throttle)
    container = Container(
        settings=settings,
        db=db,
        hasher=hasher,
        ring=ring,
        revocations=revocations,
        user_views=user_views,
        signing_keys=signing_keys,
        authenticator=Authenticator(
            db,
            ring,
            revocations,
            api_key_auth,
            signing_keys,
        ),
        users=users,
        auth=auth,
        logouts=LogoutService(),
        roles=roles,
        api_keys=ApiKeyService(),
        clients=ClientService(),
        audit=AuditService(),
        locator=locator,
        logins=logins,
        ingestor=ingestor,
        superman_batcher=LoginBatcher(db, ingestor, source="superman"),
        counters=counters,
        metrics=metrics,
        ingest=IngestService(settings.ingest),
        ingest_buckets=TokenBuckets(
            settings.ingest.rate_per_second,
            settings.ingest.burst,
            settings.ingest.max_tracked_keys,
        ),
        revocation_listener=listener,
        subscriptions=subscriptions,
        deliveries=DeliveryService(settings.delivery),
        event_stream=EventStreamService(settings.delivery.stream_settle, db.dialect),
        sinks=sinks,
        dispatcher=dispatcher,
        analytics=AnalyticsService(),
        jobs=jobs.service,
        job_runner=jobs.runner,
        auth0_tokens=jobs.tokens,
        linker=linker,
        reviews=reviews,
        mfa=MfaService(sealer, hasher, throttle, auth, mail=mail),
        notices=notices,
        email_flows=email_flows,
        mail=mail,
        mail_sender=mail_sender,
    )
    # Step-up on risk asks the container's second factors, mail outbox and notices.
    auth.stepup = StepUpService(
        OneTimeTokens(),
        container.mfa,
        container.mail,
        container.notices,
        settings.risk,
        settings.account,
        throttle=auth.throttle,
    )
    return container


def mailer(settings: Settings) -> Mailer:
    """SMTP when a mail URL is set, else files under `<data_dir>/mail/`."""
    mail = settings.mail
    url = mail.url.get_secret_value()
    if not url:
        return FileMailer(Path(settings.data_dir) / "mail", mail.from_address)
    return SmtpMailer.from_url(url, mail.from_address, mail.timeout, mail.ca_file)


def breached_check(settings: Settings, metrics: Metrics) -> BreachedPasswords | None:
    """The breached-password range API, when one is configured. Operator-chosen, so not
    behind the SSRF guard (which would refuse a mirror on the local network)."""
    account = settings.account
    if account.breached_range_url is None:
        return None
    return BreachedPasswords(account.breached_range_url, account.breached_timeout, metrics=metrics)


def local_locator(geoip: GeoIpSettings) -> GeoLocator:
    """The local GeoIP database. The demo seeder's producer process opens its own with this."""
    return MaxMindLocator.from_settings(geoip)


def remote_locator(settings: Settings, local: GeoLocator) -> GeoLocator:
    """The local database, or it behind the optional remote batch provider."""
    geoip = settings.geoip
    if geoip.remote_url is None:
        return local
    return RemoteBatchLocator(
        local,
        # Connected only to addresses the SSRF guard approved, as webhooks and Auth0 are.
        httpx.AsyncClient(
            timeout=10.0, transport=GuardedTransport(TargetGuard(geoip.remote_allow_private))
        ),
        geoip.remote_url,
        geoip.remote_token.get_secret_value() if geoip.remote_token else None,
        concurrency=geoip.remote_concurrency,
        cache_size=geoip.remote_cache_size,
        ttl_s=geoip.remote_cache_ttl.total_seconds(),
    )


def delivery_sinks(settings: Settings) -> dict[str, Sink]:
    delivery = settings.delivery
    sinks: dict[str, Sink] = {
        "webhook": WebhookSink.create(
            timeout_s=delivery.http_timeout.total_seconds(),
            lanes=delivery.connections_per_host,
            guard=TargetGuard(delivery.allow_private_targets),
            excerpt=delivery.response_excerpt_bytes,
            ca_bundle=delivery.ca_bundle,
            proxy_url=delivery.proxy_url.get_secret_value() if delivery.proxy_url else None,
        )
    }
    if delivery.nats_url:
        sinks["nats"] = NatsSink(delivery.nats_url, timeout_s=delivery.http_timeout.total_seconds())
    return sinks


def make_dispatcher(
    container: Container,
    *,
    clock: Clock = utcnow,
    sinks: dict[str, Sink] | None = None,
    worker_id: str | None = None,
) -> Dispatcher:
    """Another dispatcher over the container's database (tests drive them with a controllable
    clock and their own receivers; a process normally runs `container.dispatcher`)."""
    return Dispatcher(
        container.db,
        container.subscriptions,
        container.sinks if sinks is None else sinks,
        container.settings.delivery,
        metrics=container.metrics,
        clock=clock,
        worker_id=worker_id,
    )
