"""Which exceptions mean "the database is not answering", whatever layer raised them.

A request that meets one gets a 503 problem with Retry-After (app.py), never a 500: the
database was stopped, restarted, failed over or is out of connections, and the same request
will work once it is back. SQLAlchemy discards the pool's connections when it sees one die
(`connection_invalidated`), so the next request opens fresh ones and the service recovers
without a restart.

Anything else from the database (a constraint, a value it cannot store) is not this: it is
left to its own handler, or is a bug.
"""

from __future__ import annotations

from sqlalchemy import exc as sa

try:  # the PostgreSQL driver; SQLite-only installs work without it
    import asyncpg.exceptions as pg

    _PG_UNAVAILABLE: tuple[type[Exception], ...] = (
        pg.PostgresConnectionError,  # 08xxx: no connection, lost, rejected
        pg.OperatorInterventionError,  # 57Pxx: shutting down, starting up, crash recovery
        pg.TooManyConnectionsError,  # 53300
        pg.InterfaceError,  # "connection is closed" on the client side
    )
except ImportError:  # pragma: no cover - asyncpg is a runtime dependency
    _PG_UNAVAILABLE = ()

# Registered with the app's exception handlers; `database_unavailable` decides for each.
CANDIDATES: tuple[type[Exception], ...] = (
    sa.DBAPIError,  # OperationalError, InterfaceError and the rest of the driver's errors
    sa.TimeoutError,  # no pooled connection came free in pool_timeout
    ConnectionError,  # refused or reset while connecting (raised before any DBAPI wrapping)
    TimeoutError,  # the driver's connect timeout
    *_PG_UNAVAILABLE,
)

# Seconds a client should wait: a restart or failover takes a few; retrying sooner only adds
# load to a database that is coming back.
RETRY_AFTER_S = 5


def database_unavailable(error: BaseException) -> bool:
    for cause in _causes(error):
        if isinstance(cause, sa.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, (sa.OperationalError, sa.InterfaceError, sa.TimeoutError)):
            return True
        if isinstance(cause, (ConnectionError, TimeoutError, *_PG_UNAVAILABLE)):
            return True
    return False


def _causes(error: BaseException) -> list[BaseException]:
    """The error, the driver error it wraps and what that was raised from, a few deep."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        wrapped = getattr(current, "orig", None)
        if isinstance(wrapped, BaseException) and wrapped not in chain:
            chain.append(wrapped)
            current = wrapped
        current = current.__cause__ or current.__context__
    return chain
