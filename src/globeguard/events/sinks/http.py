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
  whole answer, so a receiver trickling bytes cannot hold a delivery past its lease. It is
  checked by one ticking timer per client (wire.Deadlines), not a timer per request.
* A bounded answer (wire.py): the first `excerpt` bytes kept, the head and body capped.
* A request on a reused connection that the server had already closed (an idle keep-alive
  timeout racing our write) is sent once more on a fresh connection, as long as not one byte
  of an answer came back.
* At most `connections_per_host` connections per origin. A request finding them all busy
  waits in line, and the next one to finish hands its connection straight over: no
  semaphore, no trip through the idle list.
* HTTPS trusts certifi's public roots plus an optional CA bundle (`tls_context`).
* Through an egress proxy (proxy.py), which is handed the approved address, never the name.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache, partial
from pathlib import Path

from globeguard.events.sinks.proxy import Proxy, tunnel
from globeguard.events.sinks.wire import (
    BODY_LIMIT,
    MAX_AFTER_HEAD,
    MAX_HEAD_BYTES,
    MAX_HEADER_LINE,
    MAX_HEADERS,
    MAX_STATUS_LINE,
    Answer,
    AnswerTooLarge,
    Connection,
    Deadlines,
    HttpError,
    HttpTimeout,
    Target,
    Unreachable,
    authority,
    encode_headers,
    parse_target,
    unreachable,
)

__all__ = [
    "BODY_LIMIT",
    "MAX_AFTER_HEAD",
    "MAX_HEADERS",
    "MAX_HEADER_LINE",
    "MAX_HEAD_BYTES",
    "MAX_STATUS_LINE",
    "Answer",
    "AnswerTooLarge",
    "HttpClient",
    "HttpError",
    "HttpTimeout",
    "Proxy",
    "Unreachable",
    "tls_context",
]

# An idle connection older than this is closed rather than reused: a peer (or a NAT between)
# may have dropped it silently, and a request written into that would only end at the
# deadline. Servers commonly keep idle connections for 5-75 s.
KEEPALIVE_S = 5.0
MAX_TARGETS = 4096

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
# What a waiting request is handed: a connection to use, or None: the right to open one.
_Turn = asyncio.Future[Connection | None]


@cache
def tls_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """Certificates checked against certifi's public roots, plus `ca_bundle`'s (a PEM file)
    when given: receivers behind a private CA work without trusting it system-wide. Made
    once per process and bundle (loading the roots takes ~25 ms); connections share it, as an
    SSLContext is meant to be shared, and nobody changes it after this."""
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Origin:
    """The connections to one (scheme, host, port). `open` counts those open or opening,
    idle ones included, never more than `limit`; a request holds one of them (or the right
    to open one) from taking it until it gives it back."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.idle: list[Connection] = []
        self.waiting: deque[_Turn] = deque()

    def take_idle(self, now: float) -> Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since <= KEEPALIVE_S:
                return connection
            connection.close()
            self.open -= 1
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
        self._targets: dict[str, Target] = {}
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._deadlines = Deadlines()
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = tls_context()
        return self._ssl

    def _target(self, url: str) -> Target:
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
        rest = encode_headers(headers, len(body)) + body
        origin = self._origins.get(target.origin)
        if origin is None:
            origin = self._origins[target.origin] = _Origin(self.limit)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            held = await self._take(origin, loop, deadline)
            try:
                if held is not None:
                    try:
                        return await self._send(held, target, rest, deadline)
                    except HttpTimeout:
                        raise
                    except HttpError:
                        if held.got_bytes:
                            raise
                        held.close()  # closed under us before answering: once more
                async with asyncio.timeout_at(deadline):
                    held = await self._connect(target.origin)
                return await self._send(held, target, rest, deadline)
            finally:
                self._give_back(origin, held)
        except (HttpTimeout, TimeoutError) as exc:
            raise HttpTimeout(f"no complete answer within {timeout_s:g} s") from exc
        except OSError as exc:
            raise unreachable(exc) from exc

    async def _send(
        self, connection: Connection, target: Target, rest: bytes, deadline: float
    ) -> Answer:
        return await connection.request(
            self._request(connection, target, rest), self._deadlines, deadline
        )

    async def _take(
        self, origin: _Origin, loop: asyncio.AbstractEventLoop, deadline: float
    ) -> Connection | None:
        """A hold on one of the origin's connections: an idle one, or None for the right to
        open one; when all are busy, in line for the next to be given back."""
        connection = origin.take_idle(loop.time())
        if connection is not None:
            return connection
        if origin.open < origin.limit:
            origin.open += 1
            return None
        turn: _Turn = loop.create_future()
        origin.waiting.append(turn)
        self._deadlines.watch(turn, deadline, partial(_time_out, turn))
        try:
            return await turn
        except BaseException:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                # Cancelled after being handed a hold: pass it on, or it is lost to all.
                self._give_back(origin, turn.result())
            elif turn in origin.waiting:
                origin.waiting.remove(turn)
            raise
        finally:
            self._deadlines.forget(turn)

    def _give_back(self, origin: _Origin, connection: Connection | None) -> None:
        """The end of a request's hold: a reusable connection goes to the next request in
        line (or to the idle list); otherwise the right to open one does (or the count
        drops)."""
        usable = (
            connection is not None
            and connection.reusable
            and not connection.closed
            and not self._closed
        )
        if connection is not None and not usable:
            connection.close()
        while origin.waiting:
            turn = origin.waiting.popleft()
            if not turn.done():
                turn.set_result(connection if usable else None)
                return
        if usable:
            assert connection is not None
            connection.idle_since = asyncio.get_running_loop().time()
            origin.idle.append(connection)
        else:
            origin.open -= 1

    def _request(self, connection: Connection, target: Target, rest: bytes) -> bytes:
        if not connection.proxied:
            return target.head + rest
        auth = self.proxy.authorization if self.proxy is not None else b""
        return b"POST " + connection.proxied + target.path + target.tail + auth + rest

    async def _connect(self, origin: tuple[str, str, int]) -> Connection:
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
    ) -> Connection:
        """A connection to `address` (one the guard approved for `host`): direct, or through
        the proxy, which is given the address and never the name."""
        loop = asyncio.get_running_loop()
        made = partial(Connection, self.excerpt)
        if self.proxy is None:
            server_hostname = host if tls is not None else None
            _, connection = await loop.create_connection(
                made, address, port, ssl=tls, server_hostname=server_hostname
            )
        elif tls is None:
            start = f"http://{authority(address, port)}".encode("ascii")
            _, connection = await loop.create_connection(
                partial(made, start), self.proxy.host, self.proxy.port
            )
        else:
            sock = await tunnel(self.proxy, address, port)
            _, connection = await loop.create_connection(
                made, sock=sock, ssl=tls, server_hostname=host
            )
        return connection

    async def close(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            for connection in origin.idle:
                connection.close()
            origin.idle.clear()
        self._origins.clear()


def _time_out(turn: _Turn) -> None:
    if not turn.done():
        turn.set_exception(HttpTimeout("no connection free in time"))
