"""Composition root: settings → adapters → services. The only module that picks concrete
implementations."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from globeguard.adapters.geoip import GeoLocator, MaxMindLocator
from globeguard.adapters.kv.memory import MemoryCounters
from globeguard.adapters.kv.port import Counters
from globeguard.adapters.kv.redis import RedisCounters
from globeguard.db.session import Database
from globeguard.events.service import AuditService
from globeguard.identity.api_keys.service import ApiKeyAuthenticator, ApiKeyService
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
from globeguard.kit.crypto import Sealer
from globeguard.settings import Settings
from globeguard.travel.ingest import BulkIngestor
from globeguard.travel.service import LoginEventService


def master_secret(settings: Settings) -> bytes:
    """The configured secret, else one generated on first start and kept in data_dir."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


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
    roles: RoleService
    api_keys: ApiKeyService
    clients: ClientService
    audit: AuditService
    locator: GeoLocator
    logins: LoginEventService
    ingestor: BulkIngestor
    counters: Counters
    revocation_listener: PostgresRevocationListener | None


def build(settings: Settings) -> Container:
    db = Database(settings.db)
    auth_settings = settings.auth
    hasher = PasswordHasher(auth_settings.hash_concurrency)
    ring = KeyRing(auth_settings.issuer, auth_settings.audience, auth_settings.leeway)
    ttl_s = auth_settings.revocation_cache_ttl.total_seconds()
    revocations = RevocationCache(ttl_s)
    user_views = UserViewCache(ttl_s)
    caches: list[Evictable] = [revocations, user_views]
    install_commit_hook(db.sessionmaker.kw["sync_session_class"], caches)
    users = UserService(hasher, auth_settings, settings.limits)
    issuer = TokenIssuer(ring, auth_settings)
    listener = (
        PostgresRevocationListener(settings.db.url, caches) if db.dialect == "postgresql" else None
    )
    locator = MaxMindLocator.from_settings(settings.geoip)
    counters: Counters = RedisCounters(settings.kv.url) if settings.kv.url else MemoryCounters()
    logins = LoginEventService(locator, settings.travel)
    signing_keys = SigningKeyService(
        Sealer(master_secret(settings)), auth_settings.access_token_ttl, auth_settings.leeway
    )
    return Container(
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
            ApiKeyAuthenticator(auth_settings.api_key_last_used_resolution),
            signing_keys,
        ),
        users=users,
        auth=AuthService(
            db,
            hasher,
            issuer,
            users,
            logins,
            settings.risk,
            SigninThrottle(counters, auth_settings),
        ),
        roles=RoleService(),
        api_keys=ApiKeyService(),
        clients=ClientService(),
        audit=AuditService(),
        locator=locator,
        logins=logins,
        ingestor=BulkIngestor(locator, settings.travel),
        counters=counters,
        revocation_listener=listener,
    )
