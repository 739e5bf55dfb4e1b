"""One HTTP/1.1 connection of the webhook client (sinks/http.py): the request's bytes, the
answer read with httptools (llhttp, the parser uvicorn uses), and the caps that keep a hostile
receiver from making us hold more than a bounded answer.

* The answer's first `excerpt` bytes are kept; a body past `BODY_LIMIT` is not read: the
  connection is dropped instead. The head is capped (status line, each header line, header
  count, all header bytes): past a cap the answer is refused (`AnswerTooLarge`) unread.
* A header name or value that would add a line, or is not latin-1, is refused before a byte
  is sent.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

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
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


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


@dataclass(slots=True)  # one per request: not frozen (delivery/records.py)
class Answer:
    status: int
    retry_after: str | None
    excerpt: bytes


@dataclass(frozen=True, slots=True)
class Target:
    origin: tuple[str, str, int]
    head: bytes  # request line, Host and User-Agent
    path: bytes  # the request line's origin-form target
    tail: bytes  # what follows it: version, Host and User-Agent


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ascii_host(host: str) -> str:
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        return host.encode("idna").decode("ascii")
    return host


def parse_target(url: str, user_agent: str) -> Target:
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
    host_header = shown if port == default else f"{shown}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    tail = f" HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {user_agent}\r\n".encode("ascii")
    start = path.encode("ascii")
    return Target((parts.scheme, host, port), b"POST " + start + tail, start, tail)


def encode_headers(headers: Mapping[str, str], length: int) -> bytes:
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


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection, one request at a time."""

    def __init__(self, excerpt: int, proxied: bytes = b"") -> None:
        self.excerpt_limit = excerpt
        # To an http proxy: "http://<address>:<port>", the absolute form's start.
        self.proxied = proxied
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
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

    async def request(self, data: bytes, deadlines: Deadlines, deadline: float) -> Answer:
        """Send `data` and wait for the whole answer. Past `deadline` (loop time) the
        connection is dropped and HttpTimeout raised; on a connection the server had closed,
        HttpError with `got_bytes` still False."""
        self._reset()
        transport = self.transport
        if transport is None or self.closed:
            raise HttpError("server closed the connection")
        self._head_left = MAX_HEAD_BYTES
        self._after_head = 0
        waiter = self._waiter = self._loop.create_future()
        deadlines.watch(waiter, deadline, self._time_out)
        try:
            transport.write(data)
            return await waiter
        finally:
            deadlines.forget(waiter)
            if not (waiter.done() and self.reusable and not self.closed):
                self.close()
            self._waiter = None

    def _time_out(self) -> None:
        self._fail(HttpTimeout("no complete answer in time"))


# A request's deadline is checked by one timer per client, ticking while anything waits,
# rather than by a timer of its own: arming and cancelling a uvloop timer costs ~5 us here
# (asyncio.timeout ~9 us), as much as the rest of the request's Python work. A deadline is
# noticed up to DEADLINE_TICK_S late.
DEADLINE_TICK_S = 0.05


class Deadlines:
    """Things waiting with a deadline (loop time), each with what to do when it passes."""

    def __init__(self) -> None:
        self._due: dict[object, tuple[float, Callable[[], None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, key: object, deadline: float, expire: Callable[[], None]) -> None:
        self._due[key] = (deadline, expire)
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop:  # a client outliving a loop: tests
            self._arm(loop)

    def forget(self, key: object) -> None:
        self._due.pop(key, None)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer = loop.call_later(DEADLINE_TICK_S, self._tick)

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        self._timer = None
        now = loop.time()
        expired = [key for key, (deadline, _) in self._due.items() if deadline <= now]
        try:
            for key in expired:
                entry = self._due.pop(key, None)
                if entry is not None:
                    entry[1]()
        finally:
            if self._due and self._timer is None:
                self._arm(loop)
