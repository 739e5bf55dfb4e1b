"""Test doubles for outbound connections: a loopback listener that counts the connections it
accepts, a guard whose "DNS" answers are chosen by the test, and a network layer that records
which address each connection was sent to."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpcore
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from globeguard.events.sinks.guard import TargetGuard

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
# A public address (IANA's example.com) that tests never actually reach: the recording
# network routes it to a loopback listener.
PUBLIC = "93.184.216.34"


@dataclass
class Listener:
    """Accepts on 127.0.0.1, records each request's head, answers 200 (or `reply`), closes."""

    reply: bytes = OK_RESPONSE
    ssl_context: ssl.SSLContext | None = None
    # Answer as soon as a connection opens, without reading (a server of another protocol).
    speak_first: bool = False
    accepted: int = 0
    heads: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    async def __aenter__(self) -> Listener:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            if not self.speak_first:
                self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScriptedGuard(TargetGuard):
    """The guard as deployed, but the answers of "DNS" come from `answers(host, n)`, n being
    the lookup's number for that host (1, 2, ...)."""

    def __init__(self, allow_private: bool, answers: Callable[[str, int], Iterable[str]]) -> None:
        super().__init__(allow_private)
        self.answers = answers
        self.lookups: dict[str, int] = {}

    async def _lookup(self, host: str, port: int) -> tuple[str, ...]:
        self.lookups[host] = self.lookups.get(host, 0) + 1
        found = tuple(self.answers(host, self.lookups[host]))
        return found or await super()._lookup(host, port)  # else the system's answer


class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Records every (address, port) a connection is opened to; connects to `route_to`
    (a loopback port) instead when given, else refuses."""

    def __init__(self, route_to: int | None = None) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.route_to = route_to
        self.opened: list[tuple[str, int]] = []

    async def connect_tcp(  # type: ignore[override]
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        *args: object,
        **kw: object,
    ) -> httpcore.AsyncNetworkStream:
        self.opened.append((host, port))
        if self.route_to is None:
            raise httpcore.ConnectError("unreachable in tests")
        return await self.inner.connect_tcp("127.0.0.1", self.route_to, timeout)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass
class Certificates:
    server: ssl.SSLContext
    client: ssl.SSLContext


def certificates(*names: str) -> Certificates:
    """A throwaway CA and a server certificate for `names`: contexts for both sides."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as folder:
        cert_path, key_path = f"{folder}/cert.pem", f"{folder}/key.pem"
        with open(cert_path, "wb") as out:
            out.write(leaf.public_bytes(Encoding.PEM))
        with open(key_path, "wb") as out:
            out.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cadata=ca.public_bytes(Encoding.PEM).decode())
    return Certificates(server, client)
