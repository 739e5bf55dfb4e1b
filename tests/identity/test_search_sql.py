"""Compiled search filters against real SQLite and PostgreSQL: both must return the same users."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import URL, make_url, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from globeguard.db.registry import metadata
from globeguard.identity.models import Role, User, UserRole
from globeguard.identity.search import QueryFieldError, compile_user_filter, parse

POSTGRES_URL_ENV = "GLOBEGUARD_TEST_POSTGRES_URL"
ALICE_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
INJECTION = "x' OR 1=1 --"


def _at(text_value: str) -> datetime:
    return datetime.fromisoformat(text_value).replace(tzinfo=UTC)


# username: (columns, user_metadata, app_metadata, roles)
USERS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[str]]] = {
    "alice": (
        dict(
            id=ALICE_ID,
            email="Alice@Example.com",
            given_name="Alice",
            family_name="Smith",
            email_verified=True,
            logins_count=5,
            created_at=_at("2024-01-15T10:00:00"),
            last_login_at=_at("2024-06-01T08:00:00"),
            last_login_ip="10.0.0.1",
        ),
        {"tier": "free", "age": 42, "address": {"city": "New York", "zip": "10001"}},
        {"plan": "premium", "beta": True},
        ["admin"],
    ),
    "bob": (
        dict(
            email="bob@x.com",
            given_name="Bob",
            family_name="Jones",
            logins_count=0,
            created_at=_at("2024-05-01T00:00:00"),
            last_login_ip="10.0.0.25",
        ),
        {"tier": "pro", "age": "42", "address": {"city": "Boston"}},
        {"plan": "free", "beta": False},
        ["Editor"],
    ),
    "carol": (
        dict(
            email="carol@example.com",
            given_name="Carol",
            family_name="Smith",
            email_verified=True,
            logins_count=12,
            created_at=_at("2024-05-01T23:59:59"),
            last_login_at=_at("2024-05-02T01:00:00"),
            last_login_ip="192.168.1.5",
        ),
        {"tier": "free", "discount": "50%_off", "age": 17.5},
        {"plan": "premium"},
        ["admin", "Editor"],
    ),
    "dave": (
        dict(
            email=None,
            given_name="Dave",
            status="blocked",
            logins_count=1,
            created_at=_at("2024-05-02T00:00:00"),
        ),
        {"tier": None, "note": "100%"},
        {},
        [],
    ),
    "erin": (
        dict(
            email="erin@example.org",
            given_name="erin",
            family_name="Smith-Jones",
            status="blocked",
            logins_count=3,
            created_at=_at("2023-12-31T23:59:59"),
        ),
        {},
        {"plan": "free"},
        [],
    ),
    "frank": (
        dict(
            email="frank@x.com",
            given_name="Frank",
            family_name="O'Brien",
            logins_count=100,
            created_at=_at("2024-02-29T12:00:00"),
        ),
        {"tier": "Free", "flags": {"beta": "true"}},
        {"plan": "enterprise", "seats": 100},
        [],
    ),
    "grace": (
        dict(
            email="grace@x.com",
            given_name="Grace",
            email_verified=True,
            logins_count=7,
            created_at=_at("2024-03-10T00:00:00"),
        ),
        {"tier": "free_trial", "score": 0, "pattern": "axb"},
        {"plan": "premium"},
        [],
    ),
    "heidi": (
        dict(
            email="heidi@x.com",
            given_name="Heidi",
            logins_count=2,
            created_at=_at("2024-03-11T00:00:00"),
        ),
        {"tier": "freeXtrial", "score": 1},
        {},
        [],
    ),
    "ivan": (
        dict(
            email="ivan@x.com",
            given_name="Ivan",
            logins_count=9,
            created_at=_at("2024-07-01T00:00:00"),
        ),
        {"score": True, "joined": "2023-12-31T23:00:00Z"},
        {},
        [],
    ),
    "judy": (
        dict(
            email="judy@x.com",
            given_name="Judy",
            logins_count=4,
            created_at=_at("2024-08-01T00:00:00"),
        ),
        {"score": "1", "joined": "2024-03-01"},
        {},
        ["support"],
    ),
    "Mallory": (
        dict(
            email="MALLORY@Evil.example",
            given_name="Mal_lory",
            logins_count=6,
            created_at=_at("2024-06-15T00:00:00"),
        ),
        {"tier": INJECTION},
        {"plan": ["premium"]},  # an array is not searched element by element
        [],
    ),
    "oscar": (
        dict(email="oscar@x.com", logins_count=1000, created_at=_at("2025-01-01T00:00:00")),
        {"address": "New York", "age": None},
        {},
        [],
    ),
    "trent": (
        dict(
            email="trent@x.com",
            given_name="Malxlory",
            logins_count=8,
            created_at=_at("2024-04-01T00:00:00"),
        ),
        {"discount": "50Xoff", "pattern": "a*b", "nested": {"deep": {"er": {"x": 1}}}},
        {},
        [],
    ),
}
EVERYONE = frozenset(USERS)


def _all_but(*names: str) -> set[str]:
    return set(EVERYONE - set(names))


CASES: list[tuple[str, set[str]]] = [
    ("", set(EVERYONE)),
    (f"id:{ALICE_ID}", {"alice"}),
    # username and email ignore case; other text columns do not
    ("username:ALICE", {"alice"}),
    ("username:mallory", {"Mallory"}),
    ("username:MAL*", {"Mallory"}),
    ("email:alice@example.com", {"alice"}),
    ("email:MALLORY@evil.EXAMPLE", {"Mallory"}),
    ("email:al*", {"alice"}),
    ("given_name:Alice", {"alice"}),
    ("given_name:alice", set()),
    ("given_name:Mal_lory", {"Mallory"}),
    ("given_name:Mal_*", {"Mallory"}),  # "_" is literal, so not "Malxlory"
    ("family_name:Smith", {"alice", "carol"}),
    ("family_name:Smith*", {"alice", "carol", "erin"}),
    ("family_name:smith*", set()),
    ("NOT given_name:Dave", _all_but("dave")),  # oscar has no given_name and stays in
    ("status:blocked", {"dave", "erin"}),
    ("-status:active", {"dave", "erin"}),
    ("last_login_ip:10.0.0.*", {"alice", "bob"}),
    ("last_login_ip:10.0.0.1", {"alice"}),
    ("email_verified:true", {"alice", "carol", "grace"}),
    ("email_verified:false", _all_but("alice", "carol", "grace")),
    ("NOT _exists_:email", {"dave"}),
    # numbers and times
    ("logins_count:5", {"alice"}),
    ("logins_count:[10 TO *]", {"carol", "frank", "oscar"}),
    ("logins_count:{1 TO 5]", {"alice", "erin", "heidi", "judy"}),
    ("logins_count:[* TO 1.5]", {"bob", "dave"}),
    ("created_at:2024-05-01", {"bob", "carol"}),
    ("created_at:2024-05-01T00:00:00Z", {"bob"}),
    ("created_at:[2024-05-01 TO 2024-05-02]", {"bob", "carol", "dave"}),
    ("created_at:{2024-05-01 TO *]", {"dave", "Mallory", "ivan", "judy", "oscar"}),
    ("created_at:[2024-01-01T00:00:00Z TO 2024-03-01}", {"alice", "frank"}),
    ("created_at:[2024-05-02T01:00:00+01:00 TO 2024-05-02T01:00:00+01:00]", {"dave"}),
    ("last_login_at:[2024-05-01 TO *]", {"alice", "carol"}),
    ("_exists_:last_login_at", {"alice", "carol"}),
    # roles
    ("role:admin", {"alice", "carol"}),
    ("role:EDITOR", {"bob", "carol"}),
    ("role:ed*", {"bob", "carol"}),
    ("_exists_:role", {"alice", "bob", "carol", "judy"}),
    ("NOT role:admin", _all_but("alice", "carol")),
    ("role:admin AND NOT role:editor", {"alice"}),
    # metadata equality: case-sensitive strings; unquoted numbers and booleans match both forms
    ("user_metadata.tier:free", {"alice", "carol"}),
    ("NOT user_metadata.tier:free", _all_but("alice", "carol")),
    ("user_metadata.age:42", {"alice", "bob"}),
    ('user_metadata.age:"42"', {"bob"}),
    ("user_metadata.age:17.5", {"carol"}),
    ("user_metadata.score:1", {"heidi", "judy"}),  # not ivan's true
    ("user_metadata.score:0", {"grace"}),
    ("user_metadata.score:true", {"ivan"}),
    ("user_metadata.flags.beta:true", {"frank"}),
    ("app_metadata.beta:false", {"bob"}),
    ("app_metadata.beta:true", {"alice"}),
    ('user_metadata.address.city:"New York"', {"alice"}),
    ("user_metadata.nested.deep.er.x:1", {"trent"}),
    ('user_metadata.note:"100%"', {"dave"}),
    (f'user_metadata.tier:"{INJECTION}"', {"Mallory"}),
    ("app_metadata.plan:premium", {"alice", "carol", "grace"}),
    (
        "app_metadata.plan:premium OR app_metadata.plan:enterprise",
        {"alice", "carol", "frank", "grace"},
    ),
    # metadata prefix, with LIKE/GLOB metacharacters taken literally
    ("user_metadata.tier:free*", {"alice", "carol", "grace", "heidi"}),
    ("user_metadata.tier:free_*", {"grace"}),
    ("user_metadata.address.city:New*", {"alice"}),
    ("user_metadata.discount:50%*", {"carol"}),
    ('user_metadata.discount:"50%_"*', {"carol"}),
    ('user_metadata.pattern:"a*"*', {"trent"}),
    # metadata ranges: numbers compare as numbers, ISO dates as text
    ("user_metadata.age:[18 TO *]", {"alice"}),
    ("user_metadata.age:[* TO 42}", {"carol"}),
    ("app_metadata.seats:[50 TO 150]", {"frank"}),
    ("user_metadata.joined:[2024-01-01 TO 2024-12-31]", {"judy"}),
    ("user_metadata.joined:[* TO 2023-12-31]", {"ivan"}),
    # presence: a JSON null counts as absent
    ("_exists_:user_metadata.address", {"alice", "bob", "oscar"}),
    ("_exists_:user_metadata.address.city", {"alice", "bob"}),
    ("_exists_:user_metadata.age", {"alice", "bob", "carol"}),
    (
        "_exists_:user_metadata.tier",
        {"alice", "bob", "carol", "frank", "grace", "heidi", "Mallory"},
    ),
    ("NOT _exists_:user_metadata.tier", {"dave", "erin", "ivan", "judy", "oscar", "trent"}),
    # combinations
    ("(user_metadata.tier:free OR user_metadata.tier:pro) AND role:editor", {"bob", "carol"}),
    ("user_metadata.age:[40 TO 50] user_metadata.tier:free", {"alice"}),
    ("NOT (user_metadata.age:[18 TO *] OR user_metadata.tier:free)", _all_but("alice", "carol")),
    ("status:blocked OR email_verified:true -role:admin", {"dave", "erin", "grace"}),
]


# --- fixtures ------------------------------------------------------------------------------


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{POSTGRES_URL_ENV} must be set in CI")
    pytest.skip(f"{POSTGRES_URL_ENV} is not set")


@asynccontextmanager
async def _scratch_postgres_database(admin_url: str) -> AsyncIterator[URL]:
    """A fresh database next to `admin_url`'s, dropped afterwards."""
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"globeguard_search_{secrets.token_hex(6)}"  # hex only, safe to quote into DDL
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def search_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("search") / "search.db"
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        yield engine
        await engine.dispose()
        return
    async with _scratch_postgres_database(_postgres_admin_url()) as url:
        engine = create_async_engine(url)
        yield engine
        await engine.dispose()


@pytest.fixture(scope="module")
async def search_users(search_engine: AsyncEngine) -> AsyncEngine:
    async with search_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    async with AsyncSession(search_engine) as session:
        role_names = {name for *_, roles in USERS.values() for name in roles}
        roles = {name: Role(name=name) for name in role_names}
        session.add_all(roles.values())
        for username, (columns, user_metadata, app_metadata, role_list) in USERS.items():
            email = columns.get("email")
            user = User(
                username=username,
                username_key=username.lower(),
                email_key=email.lower() if email else None,
                user_metadata=user_metadata,
                app_metadata=app_metadata,
                **columns,
            )
            session.add(user)
            await session.flush()
            session.add_all(UserRole(user_id=user.id, role_id=roles[r].id) for r in role_list)
        await session.commit()
    return search_engine


async def _search(engine: AsyncEngine, query: str) -> set[str]:
    where = compile_user_filter(parse(query), engine.dialect.name)
    async with engine.connect() as conn:
        result = await conn.execute(select(User.username).where(where))
        return set(result.scalars())


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [pytest.param(q, e, id=q) for q, e in CASES])
async def test_search_returns_exactly(search_users: AsyncEngine, query: str, expected: set[str]):
    assert await _search(search_users, query) == expected


FIELD_ERRORS = [
    ("nickname:bob", 0, "unknown field 'nickname'"),
    ("status:active password_hash:x", 14, "unknown field"),
    ("username.first:bob", 0, "unknown field"),
    ("_exists_:deleted_at", 0, "unknown field"),
    ("user_metadata:free", 0, "needs a key"),
    ("user_metadata..tier:free", 0, "invalid key ''"),
    ("user_metadata." + "k" * 65 + ":1", 0, "invalid key"),
    ("user_metadata.a.b.c.d.e.f.g.h.i:1", 0, "at most 8"),
    ("id:not-a-uuid", 0, "UUID"),
    ("id:abc*", 0, "prefix"),
    ("email_verified:yes", 0, "true or false"),
    ("logins_count:many", 0, "whole number"),
    ("logins_count:1.5", 0, "whole number"),
    ("logins_count:[2024-01-01 TO *]", 0, "ranges"),
    ("created_at:[1 TO 2]", 0, "ranges"),
    ("created_at:yesterday", 0, "ISO 8601"),
    ("username:[1 TO 2]", 0, "ranges"),
    ("role:[1 TO 2]", 0, "ranges"),
    ("logins_count:5*", 0, "prefix"),
]


@pytest.mark.parametrize(("query", "position", "message"), FIELD_ERRORS)
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_field_errors(dialect: str, query: str, position: int, message: str) -> None:
    with pytest.raises(QueryFieldError) as caught:
        compile_user_filter(parse(query), dialect)
    assert caught.value.position == position
    assert message in caught.value.message


def test_unknown_field_error_lists_the_searchable_ones() -> None:
    with pytest.raises(QueryFieldError, match=r"logins_count.*user_metadata\.<key>.*role"):
        compile_user_filter(parse("x:1"), "sqlite")


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        compile_user_filter(parse("username:bob"), "mysql")


@pytest.mark.parametrize(
    "query",
    [
        f'username:"{INJECTION}"',
        f'given_name:"{INJECTION}"*',
        f'user_metadata.tier:"{INJECTION}"',
        f'user_metadata.tier:"{INJECTION}"*',
        f'role:"{INJECTION}"',
    ],
)
@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_values_reach_sql_only_as_bound_parameters(query: str, dialect: Any) -> None:
    statement = select(User.id).where(compile_user_filter(parse(query), dialect.name))
    compiled = statement.compile(dialect=dialect)
    sql = str(compiled)
    assert "1=1" not in sql
    assert "x'" not in sql.lower()
    assert "1=1" in repr(compiled.params)
