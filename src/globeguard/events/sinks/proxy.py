"""The webhook client's egress proxy (`GLOBEGUARD_DELIVERY__PROXY_URL`). The proxy is handed the
address the SSRF guard approved, never the name, so it cannot resolve the name to somewhere
else: https goes through a CONNECT tunnel to that address (TLS inside it still checks the
certificate against the name, which also travels in SNI and Host); http is sent in absolute
form to that address, with the name in Host (a proxy may rewrite Host to the address).
"""

from __future__ import annotations

import asyncio
import base64
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from globeguard.events.sinks.wire import MAX_HEAD_BYTES, AnswerTooLarge, HttpError, authority


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP egress proxy: CONNECT for https targets, absolute-form requests for http."""

    host: str
    port: int
    authorization: bytes  # a Proxy-Authorization line, or nothing

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """From `http://[user:password@]host[:port]`; raises ValueError."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("the proxy must be an http://host[:port] URL")
        port = parts.port or 80  # ValueError for a bad port
        authorization = b""
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(pair.encode()).decode("ascii")
            authorization = f"Proxy-Authorization: Basic {token}\r\n".encode("ascii")
        return cls(parts.hostname, port, authorization)


async def tunnel(proxy: Proxy, address: str, port: int) -> socket.socket:
    """A socket to `proxy` on which it has agreed to CONNECT to address:port."""
    loop = asyncio.get_running_loop()
    sock = await _open_socket(proxy.host, proxy.port)
    try:
        target = authority(address, port).encode("ascii")
        await loop.sock_sendall(
            sock,
            b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, target, proxy.authorization),
        )
        status = _proxy_status(await _read_head(sock))
        if status != 200:
            raise HttpError(f"the proxy refused the tunnel: {status}")
    except BaseException:
        sock.close()
        raise
    return sock


async def _open_socket(host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    failure: OSError = OSError(f"cannot resolve the proxy {host}")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise failure


async def _read_head(sock: socket.socket) -> bytes:
    """The proxy's answer to CONNECT, up to its blank line. Nothing may follow it: the
    proxy only relays once the client has spoken (its TLS ClientHello)."""
    loop = asyncio.get_running_loop()
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        if b"\r\n\r\n" in head:
            raise HttpError("the proxy sent bytes after its answer to CONNECT")
        if len(head) > MAX_HEAD_BYTES:
            raise AnswerTooLarge(f"the proxy's answer is larger than {MAX_HEAD_BYTES} bytes")
        data = await loop.sock_recv(sock, 4096)
        if not data:
            raise HttpError("the proxy closed the connection")
        head += data
    return head


def _proxy_status(head: bytes) -> int:
    version, _, rest = head.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or not code.isdigit():
        raise HttpError("the proxy's answer is not HTTP")
    return int(code)
