"""HTTPS webhooks against real TLS servers with trustme certificates (valid, wrong host,
expired, a private CA made trusted by the CA-bundle setting), and delivery through an egress
proxy that is only ever given the address the SSRF guard approved."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from globeguard.events.sinks.guard import TargetGuard
from globeguard.events.sinks.http import HttpClient, HttpError, Proxy, tls_context
from globeguard.events.sinks.port import Message
from globeguard.events.sinks.webhook import WebhookSink
from globeguard.settings import DeliverySettings
from globeguard.wiring import delivery_sinks
from tests.conftest import make_settings

HEADERS = {"webhook-id": "evt_1"}
NAME = "receiver.test"


@dataclass
class Receiver:
    """Answers every POST with 204 and keeps each request's head."""

    heads: list[str] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                self.heads.append(head)
                length = next(
                    int(line.split(":", 1)[1])
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length:")
                )
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def host_header(self) -> str:
        (head,) = self.heads
        return next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("host:")
        )


@contextlib.asynccontextmanager
async def receiving(tls: ssl.SSLContext | None) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0, ssl=tls)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()


def server_tls(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


class Names(TargetGuard):
    """A guard whose DNS knows the test names: each resolves to loopback. With
    `allow_private=False` it refuses them, as the real guard would."""

    async def _resolve(self, host: str, port: int) -> tuple[str | None, tuple[str, ...]]:
        return await super()._resolve("127.0.0.1", port)


async def post(url: str, **client: object) -> int:
    http = HttpClient(resolve=Names(allow_private=True).addresses, **client)  # type: ignore[arg-type]
    try:
        return (await http.post(url, b"{}", HEADERS, timeout_s=10)).status
    finally:
        await http.close()


async def test_a_valid_certificate_from_a_bundled_ca_delivers(ca, ca_bundle):
    async with receiving(server_tls(ca.issue_cert(NAME))) as receiver:
        status = await post(
            f"https://{NAME}:{receiver.port}/hook", ssl_context=tls_context(ca_bundle)
        )
    assert status == 204
    assert receiver.host_header() == f"{NAME}:{receiver.port}"


async def test_a_private_ca_is_not_trusted_without_the_bundle(ca):
    async with receiving(server_tls(ca.issue_cert(NAME))) as receiver:
        with pytest.raises(
            HttpError, match="certificate was not accepted: unable to get local issuer"
        ):
            await post(f"https://{NAME}:{receiver.port}/hook", ssl_context=tls_context())
    assert receiver.heads == []


async def test_a_certificate_for_another_host_fails(ca, ca_bundle):
    async with receiving(server_tls(ca.issue_cert("elsewhere.test"))) as receiver:
        with pytest.raises(HttpError, match="Hostname mismatch"):
            await post(f"https://{NAME}:{receiver.port}/hook", ssl_context=tls_context(ca_bundle))
    assert receiver.heads == []


async def test_an_expired_certificate_fails(ca, ca_bundle):
    now = datetime.now(UTC)
    expired = ca.issue_cert(
        NAME, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    async with receiving(server_tls(expired)) as receiver:
        with pytest.raises(HttpError, match="certificate has expired"):
            await post(f"https://{NAME}:{receiver.port}/hook", ssl_context=tls_context(ca_bundle))
    assert receiver.heads == []


async def test_the_ca_bundle_setting_reaches_the_webhook_sink(ca, ca_bundle, tmp_path, monkeypatch):
    """GLOBEGUARD_DELIVERY__CA_BUNDLE, through wiring, to a delivery to https://localhost."""
    monkeypatch.setenv("GLOBEGUARD_DELIVERY__CA_BUNDLE", str(ca_bundle))
    monkeypatch.setenv("GLOBEGUARD_DELIVERY__ALLOW_PRIVATE_TARGETS", "true")
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path)
    sink = delivery_sinks(settings)["webhook"]
    async with receiving(server_tls(ca.issue_cert("localhost"))) as receiver:
        url = f"https://localhost:{receiver.port}/hook"
        result = await sink.send(Message("evt_1", "user.updated", url, b"{}"))
        await sink.close()
    assert (result.status, result.error) == (204, None)


def test_the_settings_refuse_a_missing_bundle_and_a_proxy_that_is_not_http(tmp_path):
    with pytest.raises(ValidationError, match="no such file"):
        DeliverySettings(ca_bundle=tmp_path / "missing.pem")
    for bad in ("socks5://proxy:1080", "https://proxy:3128", "http://", "http://proxy:99999"):
        with pytest.raises(ValidationError, match="proxy_url"):
            DeliverySettings(proxy_url=bad)
    assert DeliverySettings(proxy_url="http://u:p@proxy.internal:3128").proxy_url is not None


# -- an egress proxy ----------------------------------------------------------------------


@dataclass
class TinyProxy:
    """CONNECT tunnels and absolute-form forwarding, recording each request line and its
    Proxy-Authorization; it connects wherever it is told (the client must tell it well)."""

    lines: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    refuse: bool = False
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            first, *lines = head.split("\r\n")
            self.lines.append(first)
            auth = [v for v in lines if v.lower().startswith("proxy-authorization:")]
            self.authorizations.append(auth[0].split(":", 1)[1].strip() if auth else None)
            method, target, _ = first.split(" ")
            if self.refuse:
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                rest = target.removeprefix("http://")
                authority, _, path = rest.partition("/")
                host, port = authority.rsplit(":", 1)
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                kept = [v for v in lines if not v.lower().startswith("proxy-authorization:")]
                up_writer.write(("\r\n".join([f"{method} /{path} HTTP/1.1", *kept])).encode())
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def proxying() -> AsyncIterator[TinyProxy]:
    proxy = TinyProxy()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()


async def test_https_through_the_proxy_tunnels_to_the_approved_address(ca, ca_bundle):
    async with proxying() as proxy, receiving(server_tls(ca.issue_cert(NAME))) as receiver:
        via = Proxy.parse(f"http://alice:s%40cret@127.0.0.1:{proxy.port}")
        url = f"https://{NAME}:{receiver.port}/hook"
        status = await post(url, ssl_context=tls_context(ca_bundle), proxy=via)
    assert status == 204
    # The proxy was told the address the guard approved, never the name to resolve itself.
    assert proxy.lines == [f"CONNECT 127.0.0.1:{receiver.port} HTTP/1.1"]
    assert proxy.authorizations == ["Basic " + base64.b64encode(b"alice:s@cret").decode()]
    assert receiver.host_header() == f"{NAME}:{receiver.port}"  # inside the tunnel


async def test_http_through_the_proxy_uses_the_absolute_form(ca):
    async with proxying() as proxy, receiving(None) as receiver:
        via = Proxy.parse(f"http://127.0.0.1:{proxy.port}")
        status = await post(f"http://{NAME}:{receiver.port}/hook?a=1", proxy=via)
    assert status == 204
    assert proxy.lines == [f"POST http://127.0.0.1:{receiver.port}/hook?a=1 HTTP/1.1"]
    assert proxy.authorizations == [None]
    assert receiver.host_header() == f"{NAME}:{receiver.port}"


async def test_a_proxy_refusing_the_tunnel_is_a_failed_attempt(ca, ca_bundle):
    async with proxying() as proxy:
        proxy.refuse = True
        via = Proxy.parse(f"http://127.0.0.1:{proxy.port}")
        with pytest.raises(HttpError, match="the proxy refused the tunnel: 403"):
            await post(f"https://{NAME}:443/hook", ssl_context=tls_context(ca_bundle), proxy=via)


@pytest.mark.parametrize("host", [NAME, "127.0.0.1"])
async def test_the_guard_still_refuses_private_targets_behind_the_proxy(host):
    """The proxy could reach anything: the guard judges the final target first, by name and
    by address, and a refused one never reaches the proxy."""
    guard = Names(allow_private=False)
    async with proxying() as proxy:
        via = Proxy.parse(f"http://127.0.0.1:{proxy.port}")
        sink = WebhookSink(HttpClient(resolve=guard.addresses, proxy=via), guard, timeout_s=10)
        for scheme in ("http", "https"):
            url = f"{scheme}://{host}:8443/hook"
            result = await sink.send(Message("evt_1", "user.updated", url, b"{}"))
            assert result.status is None
            assert result.error and result.error.startswith("refused:")
        await sink.close()
    assert proxy.lines == []


async def test_the_proxy_setting_reaches_the_webhook_sink(tmp_path):
    async with proxying() as proxy, receiving(None) as receiver:
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
            tmp_path,
            delivery={"allow_private_targets": True, "proxy_url": f"http://127.0.0.1:{proxy.port}"},
        )
        sink = delivery_sinks(settings)["webhook"]
        url = f"http://127.0.0.1:{receiver.port}/hook"
        result = await sink.send(Message("evt_1", "user.updated", url, b"{}"))
        await sink.close()
    assert result.status == 204
    assert proxy.lines == [f"POST http://127.0.0.1:{receiver.port}/hook HTTP/1.1"]
