"""Linking reported subjects to users (travel.linking): the keys a subject is looked up by,
the precedence when it names two users (tables), and the linker on both databases: every
kind of match, soft-deleted and erased users, hostile subjects, one query per call, and the
retroactive linking of logins when an external id is stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from globeguard.travel.ingest import IngestReport, Login
from globeguard.travel.linking import ExternalId, SubjectLinker, lookup_of, resolve
from globeguard.travel.linking_repository import BY_EMAIL, BY_EXTERNAL_ID, BY_ID, BY_USERNAME
from globeguard.travel.models import LoginEvent, LoginProfile
from tests.helpers import bearer, make_admin, signup

A, B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


# --- pure: what is looked up, and who wins -------------------------------------------------


def test_a_user_id_is_looked_up_in_every_spelling_uuid_reads():
    user = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
    spellings = [
        str(user),
        str(user).upper(),
        user.hex,
        "{" + str(user) + "}",
        "urn:uuid:" + str(user),
    ]
    ids = lookup_of(spellings).ids
    assert list(ids) == [user] and sorted(ids[user]) == sorted(spellings)


def test_names_fold_case_and_emails_are_only_looked_up_as_emails():
    lookup = lookup_of(["Alice", "ALICE@Example.COM", "auth0|AbC"])
    assert sorted(lookup.folded) == ["alice", "alice@example.com", "auth0|abc"]
    assert sorted(lookup.usernames()) == ["alice", "auth0|abc"]
    assert lookup.emails() == ["alice@example.com"]
    # External ids are compared exactly, as the IdP that issued them compares them.
    assert lookup.externals == {"Alice", "ALICE@Example.COM", "auth0|AbC"}


@pytest.mark.parametrize(
    "subject",
    ["", "a\x00b", "lone \ud800 surrogate"],
    ids=["empty", "nul", "surrogate"],
)
def test_text_no_database_stores_is_never_looked_up(subject):
    assert not lookup_of([subject])


def test_keys_longer_than_their_columns_are_not_looked_up():
    long = "x" * 65
    lookup = lookup_of([long, "y" * 321, "z" * 310 + "@example.com"])
    assert long in lookup.externals and "y" * 321 not in lookup.externals
    assert lookup.usernames() == [] and lookup.emails() == []
    assert lookup.ids == {}


@pytest.mark.parametrize(
    ("matches", "owner"),
    [
        # (rank, matched key, user) rows the query returned for the subject, in any order.
        ([(BY_EMAIL, "k", A), (BY_USERNAME, "k", B)], B),
        ([(BY_USERNAME, "k", B), (BY_EMAIL, "k", A)], B),
        ([(BY_USERNAME, "k", A), (BY_EXTERNAL_ID, "K", B)], B),
        ([(BY_EMAIL, "k", A), (BY_EXTERNAL_ID, "K", B)], B),
        ([(BY_EXTERNAL_ID, "K", A), (BY_ID, None, B)], B),
        ([(BY_EMAIL, "k", A), (BY_USERNAME, "k", A), (BY_ID, None, B)], B),
        ([(BY_EMAIL, "k", A)], A),
        ([], None),
    ],
)
def test_precedence_is_id_then_external_id_then_username_then_email(matches, owner):
    subject = "K"
    lookup = lookup_of([subject])
    # Pretend "K" is also an id in this table, so the id arm can match it.
    lookup.ids = {B: [subject]}
    found = resolve(lookup, matches)
    assert found.get(subject) == owner
    assert set(found) <= {subject}


def test_a_match_for_another_subject_is_not_taken():
    lookup = lookup_of(["carol", "auth0|x"])
    found = resolve(lookup, [(BY_EXTERNAL_ID, "AUTH0|X", A), (BY_USERNAME, "carol", B)])
    assert found == {"carol": B}


def test_every_spelling_of_a_name_gets_its_owner():
    lookup = lookup_of(["Dave", "DAVE", "dave"])
    assert resolve(lookup, [(BY_USERNAME, "dave", A)]) == {"Dave": A, "DAVE": A, "dave": A}


# --- against the database -------------------------------------------------------------------


@contextmanager
def _statements(container) -> Iterator[list[str]]:
    """The SQL the database's read engine (the one `_owners` uses) runs inside the block."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = container.db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _owners(container, subjects):
    async with container.db.read() as session:
        return await SubjectLinker().owners(session, subjects)


async def _remember(container, *identities: ExternalId) -> int:
    async with container.db.transaction() as session:
        return await SubjectLinker().remember(session, identities)


async def _user(client, username: str, email: str | None = None) -> uuid.UUID:
    extra = {"email": email} if email else {}
    return uuid.UUID((await signup(client, username, **extra))["user_id"])


async def test_ids_usernames_and_emails_in_any_case_name_their_users(client, container):
    alice = await _user(client, "Alice", "Alice@Example.com")
    bob = await _user(client, "bob")
    subjects = [
        str(alice).upper(),
        alice.hex,
        "{" + str(bob) + "}",
        "aLiCe",
        "ALICE@EXAMPLE.COM",
        "BOB",
        "stranger",
        "stranger@example.com",
        str(uuid.uuid4()),
    ]
    assert await _owners(container, subjects) == {
        str(alice).upper(): alice,
        alice.hex: alice,
        "{" + str(bob) + "}": bob,
        "aLiCe": alice,
        "ALICE@EXAMPLE.COM": alice,
        "BOB": bob,
    }


async def test_a_stored_external_id_names_its_user_exactly(client, container):
    carol = await _user(client, "carol")
    await _remember(container, ExternalId("auth0|abc123", "auth0", carol))
    found = await _owners(container, ["auth0|abc123", "AUTH0|ABC123", "auth0|abc1234"])
    assert found == {"auth0|abc123": carol}


async def test_an_ingested_user_id_names_the_user_with_its_email(client, container):
    """A user another IdP announced (`POST /api/v1/ingest/users`) is known there by its
    `user_id`: the logins that IdP reports under it are the Globeguard user's with the same
    email."""
    from globeguard.ingest.schemas import UserMessage

    dana = await _user(client, "dana", "Dana@Example.com")
    async with container.db.transaction() as session:
        for user_id, email in (("idp|7", "dana@example.COM"), ("idp|8", "nobody@example.com")):
            message = UserMessage(user_id=user_id, email=email, username=None)
            await container.ingest.ingest(session, message, "user-signup", "test")
    found = await _owners(container, ["idp|7", "IDP|7", "idp|8"])
    assert found == {"idp|7": dana}


async def test_a_subject_naming_two_users_goes_to_the_better_ranked_one(client, container):
    owner_of_id = await _user(client, "idholder")
    # A username that is another user's id, in hex: the id wins.
    squatter = await _user(client, owner_of_id.hex)
    erin = await _user(client, "erin", "erin@example.com")
    frank = await _user(client, "frank", "frank@example.com")
    # External ids that are also someone's username and someone's email: the external id wins.
    await _remember(
        container,
        ExternalId("frank", "auth0", erin),
        ExternalId("erin@example.com", "auth0", frank),
    )
    found = await _owners(container, [owner_of_id.hex, "frank", "erin@example.com"])
    assert found == {owner_of_id.hex: owner_of_id, "frank": erin, "erin@example.com": frank}
    assert squatter not in found.values()


async def test_soft_deleted_users_stay_linked_and_erased_ones_are_gone(client, container):
    gone = await signup(client, "goner")
    assert (await client.delete("/api/v1/users/me", headers=bearer(gone))).status_code == 204
    gone_id = uuid.UUID(gone["user_id"])
    assert await _owners(container, ["goner", gone["user_id"]]) == {
        "goner": gone_id,
        gone["user_id"]: gone_id,
    }
    admin = bearer(await make_admin(client, container))
    erased = await client.post(f"/api/v1/users/{gone_id}/erase", headers=admin)
    assert erased.status_code == 204
    assert await _owners(container, ["goner", gone["user_id"]]) == {}


@pytest.mark.parametrize(
    "subject",
    [
        "x" * 10_000,
        "y" * 321,
        "ÄLICE",
        "ᏗᏞᎥᏨᏋ",
        "\u0430lice",  # a Cyrillic first letter: another name, not alice
        "a\x00lice",
        "\ud800",
        "' OR 1=1 --",
        "%",
        "_lice",
    ],
)
async def test_hostile_subjects_name_nobody_and_never_fail(client, container, subject):
    await _user(client, "alice", "alice@example.com")
    assert await _owners(container, [subject, "alice"]) == {"alice": await _alice(container)}


async def _alice(container) -> uuid.UUID:
    return (await _owners(container, ["alice"]))["alice"]


async def test_a_non_ascii_username_key_folds_as_identity_folds_it(client, container):
    # Imported or API usernames are ASCII, but a key is whatever str.lower made of the name.
    zoe = await _user(client, "zoe", "ZOË@example.com")
    assert await _owners(container, ["Zoë@EXAMPLE.com"]) == {"Zoë@EXAMPLE.com": zoe}


async def test_a_thousand_subjects_are_resolved_by_one_query(client, container):
    alice = await _user(client, "alice", "alice@example.com")
    await _remember(container, ExternalId("auth0|alice", "auth0", alice))
    subjects = [f"reported-{n}" for n in range(996)]
    subjects += [str(alice), "ALICE", "alice@example.com", "auth0|alice"]
    with _statements(container) as statements:
        found = await _owners(container, subjects)
    assert found == dict.fromkeys(subjects[-4:], alice)
    assert len(statements) == 1 and "external_identity" in statements[0]


async def test_nothing_to_look_up_asks_the_database_nothing(container, app):
    with _statements(container) as statements:
        assert await _owners(container, []) == {}
        assert await _owners(container, ["", "\x00"]) == {}
    assert statements == []


# --- storing an external id links what was reported before ---------------------------------


async def _report(container, subject: str, n: int, owner: uuid.UUID | None = None) -> None:
    login = Login(subject, T0 + timedelta(hours=n), "81.2.69.142", True, f"ev-{subject}-{n}")
    users = {subject: owner} if owner else None
    async with container.db.transaction() as session:
        await container.ingestor.store(session, [(0, login)], "api", IngestReport(), users)


async def _owners_of_logins(container, subject: str) -> list[uuid.UUID | None]:
    async with container.db.read() as session:
        rows = await session.scalars(
            select(LoginEvent.user_id).where(LoginEvent.subject == subject).order_by(LoginEvent.id)
        )
        return list(rows)


async def _profile_owner(container, subject: str) -> uuid.UUID | None:
    async with container.db.read() as session:
        return await session.scalar(
            select(LoginProfile.user_id).where(LoginProfile.subject == subject)
        )


async def test_storing_an_external_id_links_the_logins_reported_under_it(client, container):
    gina = await _user(client, "gina")
    other = await _user(client, "other")
    await _report(container, "auth0|gina", 1)
    await _report(container, "auth0|gina", 2)
    await _report(container, "auth0|someone-else", 3)
    assert await _owners_of_logins(container, "auth0|gina") == [None, None]

    linked = await _remember(container, ExternalId("auth0|gina", "auth0", gina))

    assert linked == 2
    assert await _owners_of_logins(container, "auth0|gina") == [gina, gina]
    assert await _profile_owner(container, "auth0|gina") == gina
    assert await _owners_of_logins(container, "auth0|someone-else") == [None]
    assert await _profile_owner(container, "auth0|someone-else") is None
    # Storing it again links nothing more and moves nothing.
    assert await _remember(container, ExternalId("auth0|gina", "auth0", gina)) == 0
    assert other not in await _owners_of_logins(container, "auth0|gina")


async def test_a_login_already_owned_keeps_its_owner(client, container):
    hana = await _user(client, "hana")
    ivan = await _user(client, "ivan")
    await _report(container, "auth0|shared", 1, owner=ivan)
    await _report(container, "auth0|shared", 2)
    assert await _remember(container, ExternalId("auth0|shared", "auth0", hana)) == 1
    assert await _owners_of_logins(container, "auth0|shared") == [ivan, hana]


async def test_an_external_id_moves_to_the_user_the_newest_sync_names(client, container):
    jade = await _user(client, "jade")
    kai = await _user(client, "kai")
    await _remember(container, ExternalId("auth0|moved", "auth0", jade))
    await _remember(container, ExternalId("auth0|moved", "auth0", kai))
    assert await _owners(container, ["auth0|moved"]) == {"auth0|moved": kai}


@pytest.mark.parametrize("external_id", ["", "x" * 321, "nul\x00"])
async def test_an_unstorable_external_id_is_skipped(client, container, external_id):
    lee = await _user(client, "lee")
    assert await _remember(container, ExternalId(external_id, "auth0", lee)) == 0
    assert await _owners(container, [external_id]) == {}
