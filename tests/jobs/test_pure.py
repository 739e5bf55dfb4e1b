"""The pure cores of jobs: backoff schedule, link signatures, CSV cells, format detection,
record mapping. Tables for the rules, hypothesis for the properties."""

from __future__ import annotations

import csv
import gzip
import io
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from globeguard.jobs import signing
from globeguard.jobs.cells import cell, escape, flatten
from globeguard.jobs.exports import COLUMNS as EXPORT_COLUMNS
from globeguard.jobs.exports import ExportError, resolve
from globeguard.jobs.formats import ImportFormat, UnknownFormat, detect
from globeguard.jobs.reader import RecordReader
from globeguard.jobs.records import RecordError, to_user, user_id_of
from globeguard.kit.backoff import ceiling, full_jitter
from globeguard.kit.retry_after import parse_retry_after

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BCRYPT = "$2b$04$" + "a" * 53

# --- backoff ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (500, 8.0)],
)
def test_the_ceiling_doubles_from_the_base_up_to_the_cap(attempt, expected):
    assert ceiling(attempt, 0.5, 8.0) == expected


@given(st.integers(0, 10_000), st.floats(0, 1, exclude_max=True))
def test_a_jittered_wait_lies_in_zero_to_the_ceiling(attempt, r):
    wait = full_jitter(attempt, 0.5, 8.0, lambda: r)
    assert 0 <= wait <= min(8.0, 0.5 * 2 ** min(attempt, 62))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Sat, 21 Nov 2026 12:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 11:00:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("-3", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_dates(header, expected):
    assert parse_retry_after(header, NOW) == expected


# --- signed links ------------------------------------------------------------------------


def test_a_link_verifies_until_it_expires_and_only_for_its_job():
    key = signing.link_key(b"master")
    job = uuid.uuid4()
    sig = signing.sign(key, job, 1000)
    assert signing.verify(key, job, 1000, sig, now=999.0)
    assert not signing.verify(key, job, 1000, sig, now=1000.0)
    assert not signing.verify(key, uuid.uuid4(), 1000, sig, now=0)
    assert not signing.verify(key, job, 2000, sig, now=0)
    assert not signing.verify(signing.link_key(b"other"), job, 1000, sig, now=0)


@given(st.integers(0, 2**40), st.text(max_size=70))
def test_no_other_signature_verifies(expires, forged):
    key = signing.link_key(b"master")
    job = uuid.UUID(int=expires)
    if forged != signing.sign(key, job, expires):
        assert not signing.verify(key, job, expires, forged, now=0)


# --- CSV cells -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+33 6 12", "'+33 6 12"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\r=x", "'\r=x"),
        ("plain", "plain"),
        (-5, "-5"),
        (2.5, "2.5"),
        (True, "true"),
        (None, ""),
        (["=a"], '["=a"]'),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
    ],
)
def test_cells(value, expected):
    assert cell(value) == expected


@given(st.text())
def test_no_escaped_text_starts_a_formula(text):
    escaped = escape(text)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert escaped.removeprefix("'") == text or escaped == text


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_doc = st.recursive(
    st.dictionaries(st.text("abc", min_size=1, max_size=3), json_leaf, max_size=4),
    lambda inner: st.dictionaries(
        st.text("abc", min_size=1, max_size=3), inner | json_leaf, max_size=4
    ),
    max_leaves=20,
)


@given(json_doc)
def test_flattening_keeps_every_leaf_once(doc):
    paths = dict(flatten(doc, "m"))

    def leaves(value, prefix):
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                yield from leaves(inner, f"{prefix}.{key}")
        else:
            yield prefix, value

    assert paths == dict(item for key, value in doc.items() for item in leaves(value, f"m.{key}"))


def test_a_csv_written_from_cells_reads_back():
    out = io.StringIO()
    values = ['a,"b"', "line\nbreak", "=cmd"]
    csv.writer(out).writerow([cell(v) for v in values])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ['a,"b"', "line\nbreak", "'=cmd"]


# --- formats and the reader -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'[{"email": "a@b.c"}]', ImportFormat.JSON_ARRAY),
        (b"\xef\xbb\xbf \n [", ImportFormat.JSON_ARRAY),
        (b'{"email": "a@b.c"}\n', ImportFormat.NDJSON),
        (b"", ImportFormat.NDJSON),
        (b"  \n", ImportFormat.NDJSON),
    ],
)
def test_format_detection(head, expected):
    assert detect(head) is expected


@pytest.mark.parametrize("head", [b"email,name\n", b"<xml/>", b'"text"'])
def test_other_files_are_refused(head):
    with pytest.raises(UnknownFormat):
        detect(head)


def test_a_broken_array_reports_where_it_broke_and_keeps_what_came_before(tmp_path):
    path = tmp_path / "broken.json.gz"
    path.write_bytes(gzip.compress(b'[{"email": "a@b.co"}, {"email": "c@d.co"}, {"email": '))
    reader = RecordReader(path)
    items = reader.next_batch(10)
    reader.close()
    assert [i.record for i in items[:2]] == [{"email": "a@b.co"}, {"email": "c@d.co"}]
    assert items[2].position == 2 and items[2].error.startswith("not JSON from here on")


def test_an_overlong_line_is_refused_without_losing_the_next(tmp_path):
    path = tmp_path / "long.ndjson"
    path.write_bytes(b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}\n{"email": "a@b.co"}\n')
    reader = RecordReader(path)
    items = reader.next_batch(10)
    reader.close()
    assert items[0].position == 1 and "longer than" in items[0].error
    assert items[1].position == 2 and items[1].record == {"email": "a@b.co"}


# --- records -----------------------------------------------------------------------------


def user(record):
    return to_user(record, metadata_max_bytes=100, now=NOW)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([], "not a JSON object"),
        ({}, "a user needs at least one of user_id, email or username"),
        ({"email": "nope"}, "email: not an email address"),
        ({"email": "a@b.co", "username": "a b"}, "username: 3-64 letters, digits, '.', '_' or '-'"),
        (
            {"email": "a@b.co", "password_hash": "plain"},
            "password_hash: not a bcrypt ($2a$/$2b$/$2y$) or argon2id hash",
        ),
        (
            {"email": "a@b.co", "custom_password_hash": {"algorithm": "sha256"}},
            "custom_password_hash.algorithm: 'sha256' is not supported (only bcrypt)",
        ),
        ({"email": "a@b.co", "user_metadata": []}, "user_metadata: must be a JSON object"),
        (
            {"email": "a@b.co", "user_metadata": {"k": "x" * 200}},
            "user_metadata: 208 bytes; the limit is 100",
        ),
        ({"email": "a@b.co", "logins_count": -1}, "logins_count: a whole number of at least 0"),
        ({"email": "a@b.co", "last_login": "yesterday"}, "last_login: an ISO 8601 time"),
        ({"email": "a@b.co", "last_ip": "1.2.3"}, "last_ip: not an IP address"),
        ({"email": "a@b.co", "status": "deleted"}, "status: deleted users are not imported"),
        ({"email": "a@b.co", "email_verified": "yes"}, "email_verified: must be true or false"),
    ],
)
def test_records_that_cannot_be_users(record, reason):
    with pytest.raises(RecordError) as error:
        user(record)
    assert str(error.value) == reason


def test_an_auth0_export_line_maps_onto_a_user():
    imported = user(
        {
            "user_id": "auth0|abc", "email": "Ana@Example.com", "blocked": True,
            "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": BCRYPT}},
            "last_login": "2026-11-20T10:00:00.000Z", "last_ip": "::ffff:81.2.69.142",
            "name": "ignored",
        }
    )  # fmt: skip
    row = imported.row
    assert row["id"] == user_id_of("auth0|abc")
    assert row["email_key"] == "ana@example.com" and row["password_hash"] == BCRYPT
    assert row["status"] == "blocked" and row["blocked_at"] == NOW
    assert row["username"].startswith("Ana-") and len(row["username"]) == len("Ana-") + 8
    assert imported.last_login is not None and imported.last_login.ip == "81.2.69.142"
    assert imported.last_login.at == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_our_own_uuids_are_kept_and_auth0_ids_are_stable():
    ours = uuid.uuid4()
    assert user_id_of(str(ours)) == ours
    assert user_id_of("auth0|x") == user_id_of("auth0|x") != user_id_of("auth0|y")


@given(st.emails())
def test_every_email_gets_a_valid_username(email):
    username = user({"email": email}).row["username"]
    assert 3 <= len(username) <= 64
    assert user({"username": username, "email": email}).row["username"] == username


def test_the_flat_and_nested_seed_keys_both_give_a_last_login():
    flat = user({"email": "a@b.co", "user_metadata.last_login_ip": "81.2.69.142"})
    nested = user({"email": "a@b.co", "user_metadata": {"last_login_ip": "81.2.69.142"}})
    assert flat.last_login == nested.last_login
    assert flat.last_login is not None and flat.last_login.at is None


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        (None, [f for f in EXPORT_COLUMNS if f != "password_hash"]),
        (["email", "user_metadata.plan.tier"], ["email", "user_metadata.plan.tier"]),
    ],
)
def test_export_fields(fields, names):
    assert [f.name for f in resolve(fields)] == names


@pytest.mark.parametrize("fields", [["nope"], ["email", "email"], ["user_metadata."], ["password"]])
def test_bad_export_fields(fields):
    with pytest.raises(ExportError):
        resolve(fields)


def test_ndjson_lines_of_records_read_back(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps({"email": "a@b.co"}) + b"\n\n" + b"[1]\n")
    reader = RecordReader(path)
    items = reader.next_batch(10)
    assert [(i.position, i.record) for i in items] == [(1, {"email": "a@b.co"}), (3, [1])]
