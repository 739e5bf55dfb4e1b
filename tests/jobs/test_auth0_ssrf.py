"""The Auth0 connector cannot be pointed at the internal network: tenant domains are plain host
names whose addresses pass the SSRF guard, checked when a sync is submitted and again on each
connection the sync makes, and a refused or unreachable tenant fails with one fixed sentence,
so the job's error does not tell an open port from a closed one."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from globeguard.events.sinks import guard as guard_module
from globeguard.events.sinks.guard import NOT_ALLOWED
from globeguard.jobs.auth0.client import UNREACHABLE, TokenCache
from globeguard.jobs.auth0.connector import Auth0SyncHandler
from globeguard.jobs.auth0.tenant import InvalidDomain, TenantAddresses, tenant_url
from globeguard.jobs.imports import UserImporter
from globeguard.jobs.models import Auth0Tenant, Job
from globeguard.jobs.runner import JobRunner
from globeguard.jobs.schemas import AUTH0_SYNC
from tests.adapters.outbound_support import (
    PUBLIC,
    Listener,
    RecordingNetwork,
    ScriptedGuard,
    closed_port,
)
from tests.conftest import make_settings
from tests.helpers import bearer, make_admin
from tests.jobs.fake_auth0 import CLIENT_ID, CLIENT_SECRET, Behaviour, FakeAuth0

# A plain-TCP answer to a TLS handshake: the port is open, the TLS connection fails at once.
NOT_TLS = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def settings(database_url, tmp_path):
    return make_settings(database_url, tmp_path, jobs={"embedded": False})


async def instant_sleep(seconds: float) -> None:
    return None


def sync_handler(container, tenants: TenantAddresses) -> Auth0SyncHandler:
    return Auth0SyncHandler(
        container.db,
        container.jobs,
        UserImporter(container.settings.limits.metadata_max_bytes),
        container.ingestor,
        container.jobs.files,
        tenants.settings,
        TokenCache(),
        sleep=instant_sleep,
        tenants=tenants,
    )


async def run(container, sync: Auth0SyncHandler, job_id: str) -> Job:
    runner = JobRunner(container.db, container.settings.jobs, {AUTH0_SYNC: sync})
    assert await runner.run_one(uuid.UUID(job_id))
    async with container.db.read() as session:
        return await container.jobs.get(session, uuid.UUID(job_id))


async def submit(client, headers, domain: str):
    body = {"domain": domain, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    return await client.post("/api/v1/jobs/auth0-sync", json=body, headers=headers)


async def stored(container) -> tuple[int, int]:
    async with container.db.read() as session:
        tenants = await session.scalar(select(func.count()).select_from(Auth0Tenant))
        jobs = await session.scalar(select(func.count()).select_from(Job))
    return tenants or 0, jobs or 0


LOOPBACK_DOMAINS = [
    "127.0.0.1:{port}",
    "https://127.0.0.1:{port}",
    "localhost:{port}",
    "127.0.0.1",
    "localhost",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "2130706433",  # 127.0.0.1 in decimal
    "0x7f000001",  # ... in hexadecimal
    "0x7f.0.0.1",
    "127.1",
    "0177.0.0.1",  # ... in octal
    "tenant.example.com",  # resolves to loopback (below)
    "169.254.169.254",  # a cloud metadata service
    "10.0.0.7",
]


@pytest.mark.parametrize("domain", LOOPBACK_DOMAINS)
async def test_a_private_tenant_is_refused_at_submission_without_a_connection(
    client, container, domain
):
    guard = ScriptedGuard(
        False, lambda host, n: ["127.0.0.1"] if host == "tenant.example.com" else []
    )
    container.jobs.auth0_tenants = TenantAddresses(container.settings.auth0, guard=guard)
    admin = bearer(await make_admin(client, container))
    async with Listener() as listener:
        response = await submit(client, admin, domain.format(port=listener.port))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] in ("invalid_auth0_domain", "auth0_domain_not_allowed")
    assert "127.0.0.1" not in problem["detail"] and str(listener.port) not in problem["detail"]
    assert listener.accepted == 0
    assert await stored(container) == (0, 0)  # nothing stored, no job


async def test_an_open_and_a_closed_port_get_the_same_answer(client, container):
    admin = bearer(await make_admin(client, container))
    async with Listener() as listener:
        open_answer = await submit(client, admin, f"127.0.0.1:{listener.port}")
        closed_answer = await submit(client, admin, f"127.0.0.1:{closed_port()}")
    assert open_answer.status_code == closed_answer.status_code == 422
    assert open_answer.json() == closed_answer.json()
    assert listener.accepted == 0


async def test_with_private_targets_allowed_open_and_closed_ports_fail_alike(
    client, container, database_url, tmp_path
):
    """Even where loopback may be called (a mock), a sync to a port that answers something
    other than Auth0 and one to a closed port end with the same error."""
    settings = make_settings(database_url, tmp_path, auth0={"allow_private_targets": True})
    container.jobs.auth0_tenants = TenantAddresses(settings.auth0)
    admin = bearer(await make_admin(client, container))
    errors = []
    async with Listener(reply=NOT_TLS, speak_first=True) as listener:
        for port in (listener.port, closed_port()):
            response = await submit(client, admin, f"127.0.0.1:{port}")
            assert response.status_code == 202, response.text
            sync = sync_handler(container, TenantAddresses(settings.auth0))
            job = await run(container, sync, response.json()["id"])
            view = await client.get(f"/api/v1/jobs/{job.id}", headers=admin)
            errors.append((job.status, job.error, view.json()["error"]))
    assert listener.accepted >= 1  # the open port was really tried
    assert errors[0] == errors[1] == ("failed", UNREACHABLE, UNREACHABLE)


async def test_a_tenant_that_turns_private_after_submission_is_refused_at_connection(
    client, container, monkeypatch
):
    """DNS rebinding: public when the sync is submitted, loopback when the job connects. The
    job's connections resolve through the guard again and are refused; nothing is opened."""
    monkeypatch.setattr(guard_module, "VERDICT_TTL_S", 0.0)
    guard = ScriptedGuard(False, lambda host, n: [PUBLIC] if n == 1 else ["127.0.0.1"])
    container.jobs.auth0_tenants = TenantAddresses(container.settings.auth0, guard=guard)
    admin = bearer(await make_admin(client, container))
    response = await submit(client, admin, "tenant.example.com")
    assert response.status_code == 202, response.text
    network = RecordingNetwork()
    tenants = TenantAddresses(container.settings.auth0, guard=guard, network=network)
    job = await run(container, sync_handler(container, tenants), response.json()["id"])
    assert (job.status, job.error) == ("failed", NOT_ALLOWED)
    assert network.opened == []
    view = await client.get(f"/api/v1/jobs/{job.id}", headers=admin)
    assert view.json()["error"] == NOT_ALLOWED


async def test_the_sync_connects_to_the_pinned_address_and_not_to_a_private_download_link(
    client, container, database_url, tmp_path
):
    """The tenant's name is connected to at the address the guard approved (the system could
    not even resolve it), and the export link Auth0 answers with -- here pointing at
    loopback -- goes through the guard too."""
    settings = make_settings(database_url, tmp_path, auth0={"allow_http": True})
    guard = ScriptedGuard(False, lambda host, n: [PUBLIC] if host == "tenant.example.com" else [])
    container.jobs.auth0_tenants = TenantAddresses(settings.auth0, guard=guard)
    admin = bearer(await make_admin(client, container))
    with FakeAuth0(Behaviour(users=[{"user_id": "auth0|p1", "email": "p1@example.com"}])) as fake:
        response = await submit(client, admin, "http://tenant.example.com")
        assert response.status_code == 202, response.text
        network = RecordingNetwork(route_to=fake.server.server_address[1])
        tenants = TenantAddresses(settings.auth0, guard=guard, network=network)
        job = await run(container, sync_handler(container, tenants), response.json()["id"])
    assert fake.seen.token_requests == 1 and fake.seen.polls == 1
    assert set(network.opened) == {(PUBLIC, 80)}
    assert (job.status, job.error) == ("failed", f"the export's download link: {NOT_ALLOWED}")
    assert fake.seen.downloads == 0


ACCEPTED = [
    ("acme.eu.auth0.com", "https://acme.eu.auth0.com"),
    ("  ACME.Auth0.com/ ", "https://acme.auth0.com"),
    ("https://login.example.org", "https://login.example.org"),
    ("xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ("localhost", "https://localhost"),  # the form is fine; the guard refuses its address
    ("127.0.0.1", "https://127.0.0.1"),
    ("[::1]", "https://[::1]"),
]
REFUSED = [
    "acme.auth0.com/api/v2",
    "acme.auth0.com?x=1",
    "acme.auth0.com#frag",
    "user:pw@acme.auth0.com",
    "acme.auth0.com@127.0.0.1",
    "acme.auth0.com:8443",
    "http://acme.auth0.com",
    "ftp://acme.auth0.com",
    "https://https://acme.auth0.com",
    "acme.auth0.com\\@evil",
    "acme auth0.com",
    "bücher.example",
    "a..b.com",
    "-acme.auth0.com",
    "acme.auth0.com.",
    "2130706433",
    "0x7f000001",
    "127.1",
    "0177.0.0.1",
    "[abc]",
    "[fe80::1%25eth0]",
    "",
]


@pytest.mark.parametrize(("domain", "url"), ACCEPTED)
def test_accepted_tenant_domains(domain, url):
    assert tenant_url(domain, allow_http=False, allow_port=False) == url


@pytest.mark.parametrize("domain", REFUSED)
def test_refused_tenant_domains(domain):
    with pytest.raises(InvalidDomain):
        tenant_url(domain, allow_http=False, allow_port=False)


def test_ports_and_plain_http_only_when_allowed():
    assert tenant_url("127.0.0.1:8080", allow_http=False, allow_port=True) == (
        "https://127.0.0.1:8080"
    )
    assert tenant_url("http://[::1]:8443", allow_http=True, allow_port=True) == (
        "http://[::1]:8443"
    )
    with pytest.raises(InvalidDomain):
        tenant_url("acme.auth0.com:99999", allow_http=False, allow_port=True)


@given(st.text(max_size=80))
def test_whatever_is_accepted_is_a_bare_origin(text):
    try:
        url = tenant_url(text, allow_http=False, allow_port=False)
    except InvalidDomain:
        return
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.hostname
    assert (parts.path, parts.query, parts.fragment, parts.username, parts.port) == (
        "",
        "",
        "",
        None,
        None,
    )
