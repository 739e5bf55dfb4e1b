"""The account lifecycle's rules as a table: what each change ends, bumps and records."""

from __future__ import annotations

import uuid

import pytest

from globeguard.events.catalog import EventType
from globeguard.identity.users.lifecycle import AccountChange, consequences, status_events

U = uuid.UUID(int=1)
PW = "password_changed"
ACTIVE, BLOCKED, DELETED = "active", "blocked", "deleted"
KEPT = uuid.UUID(int=99)

E = EventType


@pytest.mark.parametrize(
    ("before", "after", "events"),
    [
        ("active", "blocked", [E.USER_BLOCKED]),
        ("blocked", "active", [E.USER_UNBLOCKED]),
        ("active", "deleted", [E.USER_DELETED]),
        ("blocked", "deleted", [E.USER_DELETED]),
        ("deleted", "active", [E.USER_RESTORED]),
        ("deleted", "blocked", [E.USER_RESTORED, E.USER_BLOCKED]),
        ("active", "active", []),
        ("blocked", "blocked", []),
    ],
)
def test_status_transitions_record_their_own_events(before, after, events):
    assert status_events(before, after) == events


@pytest.mark.parametrize(
    ("change", "ended", "bumped", "keys", "events"),
    [
        # an import's or an admin's new password: every session, every access token
        (AccountChange(U, 2, password=True), {PW: [U]}, [U], [], [E.PASSWORD_CHANGED]),
        # the owner's own change keeps the session it came from, and its access token
        (
            AccountChange(U, 2, password=True, keep_session=KEPT),
            {"password_changed": [U]}, [], [], [E.PASSWORD_CHANGED],
        ),
        (AccountChange(U, 2, status=(ACTIVE, BLOCKED)), {BLOCKED: [U]}, [U], [], [E.USER_BLOCKED]),
        (AccountChange(U, 2, status=(ACTIVE, DELETED)), {DELETED: [U]}, [U], [U], [E.USER_DELETED]),
        # unblocking and restoring revive nothing and revoke nothing
        (AccountChange(U, 2, status=("blocked", "active")), {}, [], [], [E.USER_UNBLOCKED]),
        (AccountChange(U, 2, status=("deleted", "active")), {}, [], [], [E.USER_RESTORED]),
        # a block with a new password ends sessions once, under the stronger reason
        (
            AccountChange(U, 2, password=True, status=("active", "blocked")),
            {"blocked": [U]}, [U], [], [E.USER_BLOCKED, E.PASSWORD_CHANGED],
        ),
        # other fields (email included) are one user.updated, as the API records them
        (AccountChange(U, 2, fields=("email", "given_name")), {}, [], [], [E.USER_UPDATED]),
        # a role change moves the token version and ends no session
        (AccountChange(U, roles=True), {}, [U], [], []),
        (AccountChange(U, 2, status=("active", "active")), {}, [], [], []),
    ],
)  # fmt: skip
def test_what_each_change_ends_bumps_and_records(change, ended, bumped, keys, events):
    plan = consequences([change])
    assert plan.end_sessions == ended
    assert plan.bump_versions == bumped
    assert plan.revoke_api_keys == keys
    assert [type_ for type_, *_ in plan.events] == events
    assert plan.announce == [U]  # every change reaches every process's caches


def test_a_batch_groups_users_by_reason_and_lists_changed_fields():
    users = [uuid.UUID(int=i) for i in range(4)]
    plan = consequences(
        [
            AccountChange(users[0], 3, password=True),
            AccountChange(users[1], 5, status=("active", "blocked")),
            AccountChange(users[2], 7, password=True),
            AccountChange(users[3], 2, fields=("user_metadata", "email")),
        ]
    )
    assert plan.end_sessions == {"password_changed": [users[0], users[2]], "blocked": [users[1]]}
    assert plan.bump_versions == users[:3]
    assert plan.events[-1] == (E.USER_UPDATED, users[3], 2, ["email", "user_metadata"])
    assert [version for _, _, version, _ in plan.events] == [3, 5, 7, 2]
