"""The HTTP/1.1 client webhooks are POSTed with: kept-alive connections per origin, each bound
to an address the SSRF guard approved, and one deadline for the whole request.

Why not a general-purpose client: the dispatcher sends many small POSTs to a handful of
origins, and there the client's own CPU per request is the limit. Against bench/_receiver.py
on one 2-core machine, 64 requests in flight: httpx (16 one-connection clients) ~670 req/s --
its pool rescans every connection per request, and httpcore retries a failed `import sniffio`
on every one; aiohttp ~4,400 req/s; this client ~10,000 req/s, parsing answers with httptools
(llhttp, the parser uvicorn uses). Measured again against a bare 204 receiver (README,
"Webhook transport"): ~6,100 vs aiohttp ~2,300 vs httpx ~130. It does only what a webhook
needs:

* POST with a Content-Length body; never follows redirects (a 3xx is an answer).
* The connection is made to an address the resolver returned, with the URL's host in `Host`
  and as the TLS server name: the address checked by the guard is the address connected to,
  so a name that flips between two lookups (DNS rebinding) cannot slip a private address in.
* One deadline (`timeout_s`) covers waiting for a connection, connecting, sending and the
  whole answer, so a receiver trickling bytes cannot hold a delivery past its lease.
* The answer's first `excerpt` bytes are kept; a body past `BODY_LIMIT` is not read: the
  connection is dropped instead. The head is capped (status line, each header line, header
  count, all header bytes): past a cap the answer is refused (`AnswerTooLarge`) unread.
* A request on a reused connection that the server had already closed (an idle keep-alive
  timeout racing our write) is sent once more on a fresh connection, as long as not one byte
  of an answer came back.
* HTTPS trusts certifi's public roots plus an optional CA bundle (`tls_context`).
* Through an egress proxy (`Proxy`) the proxy is handed the address the guard approved, never
  the name, so it cannot resolve the name to somewhere else: https goes through a CONNECT
  tunnel to that address (TLS inside it still checks the certificate against the name, which
  also travels in SNI and Host); http is sent in absolute form to that address, with the
  name in Host (a proxy may rewrite Host to the address).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httptools

log = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024
# The answer's head is capped before the parser sees it (httptools/llhttp keep a header
# whole until its line ends, with no limit of their own): a receiver streaming one endless
# header would otherwise be buffered in full. 32 KiB, 8 KiB a line and 100 headers are
# twice Node's whole-head default (16 KiB) and leave room for any real webhook receiver.
MAX_HEAD_BYTES = 32 * 1024
MAX_STATUS_LINE = 1024
MAX_HEADER_LINE = 8 * 1024
MAX_HEADERS = 100
# Bytes after the head: the body plus its framing (chunk sizes, extensions, trailers), which
# a receiver could bloat without a byte of body.
MAX_AFTER_HEAD = 2 * BODY_LIMIT
# An idle connection older than this is closed rather than reused: a peer (or a NAT between)
# may have dropped it silently, and a request written into that would only end at the
# deadline. Servers commonly keep idle connections for 5-75 s.
KEEPALIVE_S = 5.0
MAX_TARGETS = 4096
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class HttpError(Exception):
    """No usable answer: the connection failed, broke, or the answer was not HTTP."""


class HttpTimeout(HttpError):
    """The deadline passed before the whole answer came."""


class AnswerTooLarge(HttpError):
    """The answer's head broke a size limit: not read further, the connection dropped."""


class Unreachable(HttpError):
    """No connection could be made or kept. The reason is one fixed sentence per kind: the
    errno text and address would tell whoever reads a delivery which internal ports are open
    (refused) or filtered (timed out). The detail goes to the debug log only."""


def unreachable(exc: OSError) -> Unreachable:
    log.debug("webhook connection failed: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        # Why the certificate failed (expired, another host's, unknown CA) is the
        # receiver's public face, not a fact about our network: worth telling the admin.
        reason = exc.verify_message or "verification failed"
        return Unreachable(f"the receiver's TLS certificate was not accepted: {reason}")
    if isinstance(exc, ssl.SSLError):
        return Unreachable("the TLS handshake with the receiver failed")
    return Unreachable("the receiver could not be reached")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: str | None
    excerpt: bytes


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]
    head: bytes  # request line, Host and User-Agent
    path: bytes  # the request line's origin-form target
    tail: bytes  # what follows it: version, Host and User-Agent


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


def tls_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """Certificates checked against certifi's public roots, plus `ca_bundle`'s (a PEM file)
    when given: receivers behind a private CA work without trusting it system-wide."""
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    context.set_alpn_protocols(["http/1.1"])
    return context


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ascii_host(host: str) -> str:
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        return host.encode("idna").decode("ascii")
    return host


def parse_target(url: str, user_agent: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url[:100]}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = _ascii_host(parts.hostname)
    except (ValueError, UnicodeError) as exc:
        raise HttpError(f"invalid URL: {exc}") from exc
    default = 443 if parts.scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == default else f"{shown}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    tail = f" HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\n".encode("ascii")
    start = path.encode("ascii")
    return _Target((parts.scheme, host, port), b"POST " + start + tail, start, tail)


def _encode_headers(headers: Mapping[str, str], length: int) -> bytes:
    block = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    # Each header adds exactly one CR and one LF: any other is an attempt to add a line.
    lines = len(headers)
    if block.count("\n") != lines or block.count("\r") != lines or "\0" in block:
        raise HttpError("a header name or value holds a line break")
    for name in headers:
        if name not in _GOOD_NAMES:
            if not name or ":" in name or " " in name:
                raise HttpError(f"invalid header name {name[:40]!r}")
            if len(_GOOD_NAMES) < 256:
                _GOOD_NAMES.add(name)
    try:
        return (block + f"Content-Length: {length}\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError as exc:
        raise HttpError("a header value is not latin-1") from exc


_GOOD_NAMES: set[str] = set()


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection, one request at a time."""

    def __init__(self, excerpt: int, proxied: bytes = b"") -> None:
        self.excerpt_limit = excerpt
        # To an http proxy: "http://<address>:<port>", the absolute form's start.
        self.proxied = proxied
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._head_left = MAX_HEAD_BYTES
        self._after_head = 0
        self._reset()

    def _reset(self) -> None:
        """Before a request, and after an interim (1xx) answer: the real one follows."""
        self._status = 0
        self._retry_after: bytes | None = None
        self._body: list[bytes] = []
        self._kept = 0
        self._received = 0
        self._in_head = True
        self._status_line = 0
        self._headers = 0
        self.got_bytes = False
        self.reusable = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted
            return
        self.got_bytes = True
        try:
            self._feed(data)
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            self._fail(refused if isinstance(refused, HttpError) else HttpError(str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"invalid HTTP answer: {exc}"))
        except HttpError as exc:
            self._fail(exc)

    def _feed(self, data: bytes) -> None:
        """Hand `data` to the parser, never more head than MAX_HEAD_BYTES (all interim
        answers' heads included) nor more than MAX_AFTER_HEAD after it."""
        while data and self._in_head:
            if self._head_left <= 0:
                raise AnswerTooLarge(f"header section larger than {MAX_HEAD_BYTES} bytes")
            piece = data if len(data) <= self._head_left else data[: self._head_left]
            data = data[len(piece) :]
            self._head_left -= len(piece)
            self._parser.feed_data(piece)
        if data:
            self._after_head += len(data)
            if self._after_head > MAX_AFTER_HEAD:
                self._finish()  # the status is known: the receiver answered
                self.close()
                return
            self._parser.feed_data(data)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._status >= 200:
            self._finish()  # an answer delimited by the end of the connection
        else:
            waiter.set_exception(HttpError("server closed the connection"))

    # -- httptools callbacks -----------------------------------------------------------------

    def on_status(self, part: bytes) -> None:
        self._status_line += len(part)  # called once per piece of the reason phrase
        if self._status_line > MAX_STATUS_LINE:
            raise AnswerTooLarge(f"status line longer than {MAX_STATUS_LINE} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1  # trailers after a chunked body too
        if self._headers > MAX_HEADERS:
            raise AnswerTooLarge(f"answer has more than {MAX_HEADERS} headers")
        if len(name) + len(value) > MAX_HEADER_LINE:
            raise AnswerTooLarge(f"header line longer than {MAX_HEADER_LINE} bytes")
        if name.lower() == b"retry-after":
            self._retry_after = value

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._in_head = False

    def on_body(self, body: bytes) -> None:
        self._received += len(body)
        room = self.excerpt_limit - self._kept
        if room > 0:
            self._body.append(body[:room])
            self._kept += min(room, len(body))
        if self._received > BODY_LIMIT:
            self._finish()
            self.close()

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._reset()
            self.got_bytes = True
            return
        self.reusable = self._parser.should_keep_alive()
        self._finish()

    # -- use ---------------------------------------------------------------------------------

    def _finish(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            retry_after = self._retry_after.decode("latin-1") if self._retry_after else None
            waiter.set_result(Answer(self._status, retry_after, b"".join(self._body)))

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    async def request(self, data: bytes) -> Answer:
        assert self.transport is not None
        self._reset()
        self._head_left = MAX_HEAD_BYTES
        self._after_head = 0
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            self.transport.write(data)
            return await self._waiter
        finally:
            if not (self._waiter.done() and self.reusable and not self.closed):
                self.close()
            self._waiter = None


class _Origin:
    """The connections to one (scheme, host, port): at most `limit` open at once."""

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[_Connection] = []

    def take_idle(self, now: float) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if connection.closed:
                continue
            if now - connection.idle_since > KEEPALIVE_S:
                connection.close()
                continue
            return connection
        return None


class HttpClient:
    def __init__(
        self,
        *,
        resolve: Resolver,
        connections_per_host: int = 16,
        excerpt: int = 1000,
        user_agent: str = "Globeguard-Webhooks/1",
        ssl_context: ssl.SSLContext | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        self.resolve = resolve
        self.proxy = proxy
        self.limit = connections_per_host
        self.excerpt = excerpt
        self.user_agent = user_agent
        self._ssl = ssl_context
        self._targets: dict[str, _Target] = {}
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = tls_context()
        return self._ssl

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            target = parse_target(url, self.user_agent)
            if len(self._targets) >= MAX_TARGETS:
                self._targets.clear()
            self._targets[url] = target
        return target

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float
    ) -> Answer:
        """POST `body`; the answer's status, Retry-After and first bytes. Raises HttpTimeout,
        HttpError, or whatever the resolver raises (the guard's UnsafeTarget)."""
        target = self._target(url)
        rest = _encode_headers(headers, len(body)) + body
        origin = self._origins.get(target.origin)
        if origin is None:
            origin = self._origins[target.origin] = _Origin(self.limit)
        try:
            async with asyncio.timeout(timeout_s):
                async with origin.slots:
                    connection = origin.take_idle(asyncio.get_running_loop().time())
                    if connection is not None:
                        try:
                            answer = await connection.request(
                                self._request(connection, target, rest)
                            )
                        except HttpError:
                            if connection.got_bytes:
                                raise
                            connection = None  # closed under us before answering: once more
                        else:
                            self._give_back(origin, connection)
                            return answer
                    connection = await self._connect(target.origin)
                    answer = await connection.request(self._request(connection, target, rest))
                    self._give_back(origin, connection)
                    return answer
        except TimeoutError as exc:
            raise HttpTimeout(f"no complete answer within {timeout_s:g} s") from exc
        except OSError as exc:
            raise unreachable(exc) from exc

    def _request(self, connection: _Connection, target: _Target, rest: bytes) -> bytes:
        if not connection.proxied:
            return target.head + rest
        auth = self.proxy.authorization if self.proxy is not None else b""
        return b"POST " + connection.proxied + target.path + target.tail + auth + rest

    def _give_back(self, origin: _Origin, connection: _Connection) -> None:
        if self._closed:
            connection.close()
        elif connection.reusable and not connection.closed:
            connection.idle_since = asyncio.get_running_loop().time()
            origin.idle.append(connection)

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        addresses = await self.resolve(host, port)
        tls = self._ssl_context() if scheme == "https" else None
        failure: OSError | None = None
        for address in addresses:
            try:
                connection = await self._open(host, address, port, tls)
            except OSError as exc:
                failure = exc
                continue
            return connection
        if failure is not None:
            raise failure
        raise HttpError(f"{host} has no address")

    async def _open(
        self, host: str, address: str, port: int, tls: ssl.SSLContext | None
    ) -> _Connection:
        """A connection to `address` (one the guard approved for `host`): direct, or through
        the proxy, which is given the address and never the name."""
        loop = asyncio.get_running_loop()
        made = partial(_Connection, self.excerpt)
        if self.proxy is None:
            server_hostname = host if tls is not None else None
            _, connection = await loop.create_connection(
                made, address, port, ssl=tls, server_hostname=server_hostname
            )
        elif tls is None:
            start = f"http://{_authority(address, port)}".encode("ascii")
            _, connection = await loop.create_connection(
                partial(made, start), self.proxy.host, self.proxy.port
            )
        else:
            tunnel = await self._tunnel(self.proxy, address, port)
            _, connection = await loop.create_connection(
                made, sock=tunnel, ssl=tls, server_hostname=host
            )
        return connection

    @staticmethod
    async def _tunnel(proxy: Proxy, address: str, port: int) -> socket.socket:
        """A socket to `proxy` on which it has agreed to CONNECT to address:port."""
        loop = asyncio.get_running_loop()
        sock = await _open_socket(proxy.host, proxy.port)
        try:
            authority = _authority(address, port).encode("ascii")
            await loop.sock_sendall(
                sock,
                b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
                % (authority, authority, proxy.authorization),
            )
            status = _proxy_status(await _read_head(sock))
            if status != 200:
                raise HttpError(f"the proxy refused the tunnel: {status}")
        except BaseException:
            sock.close()
            raise
        return sock

    async def close(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            for connection in origin.idle:
                connection.close()
            origin.idle.clear()
        self._origins.clear()


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
