"""Start-up and shutdown of a process: migrate, seed what must exist, load keys, run the
background loops. Shared by `serve` and the CLI commands."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from globeguard.account.retention import retention_loop as account_retention_loop
from globeguard.analytics.rollups import retention_loop as rollup_retention_loop
from globeguard.db.migrate import startup_lock, upgrade
from globeguard.db.statistics import statistics_loop
from globeguard.events.delivery import worker as delivery
from globeguard.identity.bootstrap import ensure_bootstrap_admin
from globeguard.jobs import worker as jobs_worker
from globeguard.kit.collector import freeze_startup_heap
from globeguard.kit.periodic import every, stop_all
from globeguard.travel.retention import retention_loop
from globeguard.wiring import Container

# Keys rotated by another process (`globeguard keys rotate`) are picked up this often, and
# at once when a token names a kid we have not loaded.
KEY_RELOAD_INTERVAL = timedelta(seconds=60)


async def prepare(app: Container) -> None:
    if app.settings.db.migrate_on_start:
        await upgrade(app.db.engine)
    async with startup_lock(app.db.engine):
        async with app.db.transaction() as session:
            await app.roles.ensure_builtin(session)
            await app.signing_keys.ensure(session)
        boot = app.settings.bootstrap
        password = boot.admin_password.get_secret_value() if boot.admin_password else None
        await ensure_bootstrap_admin(
            app.users, app.db, boot.admin_username, password, boot.admin_email
        )
    await reload_keys(app)


async def reload_keys(app: Container) -> None:
    async with app.db.read() as session:
        await app.signing_keys.load(session, app.ring)


async def _key_reloader(app: Container) -> None:
    await every(KEY_RELOAD_INTERVAL, lambda: reload_keys(app), "reloading signing keys")


# Password hashes run in threads that release the GIL; when one finishes it must get the GIL
# back from the event loop to return. With CPython's default 5 ms switch interval a finished
# 17 ms hash can sit idle for up to 5 ms, leaving its core unused. 0.5 ms keeps the cores busy.
GIL_SWITCH_INTERVAL_S = 0.0005


@asynccontextmanager
async def running(app: Container) -> AsyncIterator[None]:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    await prepare(app)
    freeze_startup_heap()
    tasks = [
        asyncio.create_task(_key_reloader(app), name="key-reloader"),
        asyncio.create_task(retention_loop(app.db, app.settings.travel), name="retention"),
        asyncio.create_task(
            rollup_retention_loop(app.db, app.settings.analytics), name="rollup-retention"
        ),
        asyncio.create_task(account_retention_loop(app.db), name="account-retention"),
    ]
    if app.db.dialect == "postgresql":
        tasks.append(asyncio.create_task(statistics_loop(app.db), name="statistics"))
    if app.settings.mail.embedded:
        # Any process's sender sends any process's mail (claims keep them apart).
        tasks.append(asyncio.create_task(app.mail_sender.run(), name="mail-sender"))
    if app.revocation_listener is not None:
        tasks.append(asyncio.create_task(app.revocation_listener.run(), name="revocations"))
    if app.settings.delivery.embedded:
        tasks += delivery.start(app)
    if app.settings.jobs.embedded:
        tasks += jobs_worker.start(app)
    try:
        yield
    finally:
        await stop_all(tasks)
        # Background refreshes of the credential caches still reading: stopped before the
        # database goes.
        for cache in (app.authenticator.cache, app.authenticator.api_keys, app.user_views):
            await cache.close()
        await app.counters.close()
        await delivery.close_sinks(app)
        await app.mail_sender.close()
        await app.db.dispose()
