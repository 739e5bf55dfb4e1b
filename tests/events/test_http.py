"""The webhook HTTP client against a real local socket server: what goes on the wire, what is
read back, connection reuse and its limits, timeouts, and that connections go only to
addresses the SSRF guard approved."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from globeguard.events.sinks import guard as guard_module
from globeguard.events.sinks import http as http_module
from globeguard.events.sinks.guard import TargetGuard, UnsafeTarget
from globeguard.events.sinks.http import BODY_LIMIT, HttpClient, HttpError, HttpTimeout
from globeguard.events.sinks.port import Message
from globeguard.events.sinks.webhook import WebhookSink

HEADERS = {"webhook-id": "evt_1", "content-type": "application/json"}


def reply(status: int = 204, body: bytes = b"", *headers: str, close: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} X", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Request:
    head: str
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name:
                return value.strip()
        return None


# What the server does with request number n (1-based): bytes to write, then whether to
# hang up; None writes nothing and waits (a receiver that never answers).
Script = Callable[[int, Request], tuple[bytes, bool] | None]


@dataclass
class Server:
    script: Script
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request = Request(head, b"")
                request.body = await reader.readexactly(int(request.header("content-length")))
                self.requests.append(request)
                action = self.script(len(self.requests), request)
                if action is None:
                    await asyncio.sleep(3600)
                    return
                data, hang_up = action
                writer.write(data)
                await writer.drain()
                if hang_up:
                    return
        finally:
            self.open_now -= 1
            writer.close()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextlib.asynccontextmanager
async def serving(script: Script) -> AsyncIterator[Server]:
    server = Server(script)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def loopback(host: str, port: int) -> tuple[str, ...]:
    return ("127.0.0.1",)


def client(**kwargs) -> HttpClient:
    return HttpClient(resolve=kwargs.pop("resolve", loopback), **kwargs)


async def test_posts_on_one_kept_alive_connection():
    async with serving(lambda n, r: (reply(204), False)) as server:
        http = client()
        for i in range(3):
            answer = await http.post(
                server.url("/hook?a=1&b=x y"), b'{"n":%d}' % i, HEADERS, timeout_s=5
            )
            assert answer.status == 204
        await http.close()
    assert server.connections == 1
    first = server.requests[0]
    assert first.head.startswith("POST /hook?a=1&b=x%20y HTTP/1.1\r\n")
    assert first.header("host") == f"127.0.0.1:{server.port}"
    assert first.header("webhook-id") == "evt_1"
    assert first.header("content-length") == "7"
    assert [r.body for r in server.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']


async def test_status_retry_after_and_a_bounded_excerpt():
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in [b"a" * 3000, b"b" * 2000])
    body = chunked + b"0\r\n\r\n"
    answer_bytes = reply(429, body, "Retry-After: 7", "Transfer-Encoding: chunked")
    async with serving(lambda n, r: (answer_bytes, False)) as server:
        http = client(excerpt=1000)
        answer = await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        again = await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.close()
    assert (answer.status, answer.retry_after, answer.excerpt) == (429, "7", b"a" * 1000)
    assert again.status == 429
    assert server.connections == 1  # the whole chunked body was read: the connection is reusable


async def test_a_redirect_is_an_answer_and_is_not_followed():
    redirect = reply(302, b"", "Location: http://169.254.169.254/latest/meta-data/")
    async with serving(lambda n, r: (redirect, False)) as server:
        http = client()
        answer = await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.close()
    assert answer.status == 302
    assert len(server.requests) == 1


async def test_an_interim_answer_is_skipped():
    both = b"HTTP/1.1 100 Continue\r\n\r\n" + reply(200, b"ok")
    async with serving(lambda n, r: (both, False)) as server:
        http = client()
        answer = await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.close()
    assert (answer.status, answer.excerpt) == (200, b"ok")


async def test_an_answer_ended_by_closing_the_connection():
    raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello"
    async with serving(lambda n, r: (raw, True)) as server:
        http = client()
        first = await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        second = await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.close()
    assert (first.status, first.excerpt, second.status) == (200, b"hello", 200)
    assert server.connections == 2


async def test_a_kept_alive_connection_closed_by_the_server_is_replaced():
    # The server drops the connection after each answer without saying so (an idle timeout).
    async with serving(lambda n, r: (reply(200), True)) as server:
        http = client()
        for _ in range(3):
            await asyncio.sleep(0.01)  # let the hang-up reach the client, or not: both work
            assert (await http.post(server.url(), b"{}", HEADERS, timeout_s=5)).status == 200
        await http.close()
    assert len(server.requests) == 3
    assert server.connections == 3


async def test_an_oversized_answer_is_cut_and_its_connection_dropped():
    big = reply(200, b"x" * (BODY_LIMIT + 10_000))
    async with serving(lambda n, r: (big, False)) as server:
        http = client(excerpt=10)
        answer = await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.close()
    assert (answer.status, answer.excerpt) == (200, b"x" * 10)
    assert server.connections == 2


async def test_a_receiver_that_never_answers_times_out():
    async with serving(lambda n, r: None) as server:
        http = client()
        with pytest.raises(HttpTimeout):
            await http.post(server.url(), b"{}", HEADERS, timeout_s=0.2)
        await http.close()


async def test_connections_per_host_are_bounded():
    async with serving(lambda n, r: (reply(204), False)) as server:
        http = client(connections_per_host=2)
        answers = await asyncio.gather(
            *(http.post(server.url(), b"{}", HEADERS, timeout_s=5) for _ in range(8))
        )
        await http.close()
    assert [a.status for a in answers] == [204] * 8
    assert server.most_open <= 2
    assert server.connections <= 2


async def test_headers_cannot_smuggle_lines():
    async with serving(lambda n, r: (reply(204), False)) as server:
        http = client()
        with pytest.raises(HttpError):
            await http.post(server.url(), b"{}", {"x": "a\r\nHost: evil"}, timeout_s=5)
        with pytest.raises(HttpError):
            await http.post(server.url(), b"{}", {"x": "\u2603"}, timeout_s=5)
        await http.close()
    assert server.requests == []


async def test_the_connection_goes_to_the_address_the_guard_approved():
    """The client never resolves a name itself: it connects to what the resolver (the guard)
    returned, and sends the name in Host."""
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> tuple[str, ...]:
        asked.append((host, port))
        return ("127.0.0.1",)

    async with serving(lambda n, r: (reply(204), False)) as server:
        http = client(resolve=resolve)
        url = server.url(host="receiver.invalid")  # not resolvable by DNS
        assert (await http.post(url, b"{}", HEADERS, timeout_s=5)).status == 204
        await http.close()
    assert asked == [("receiver.invalid", server.port)]
    assert server.requests[0].header("host") == f"receiver.invalid:{server.port}"


async def test_a_name_the_guard_refuses_is_never_connected_to(monkeypatch):
    monkeypatch.setattr(guard_module, "VERDICT_TTL_S", 0.0)  # every lookup is a new one

    class Rebinding(TargetGuard):
        """Public at the check before the send, loopback at the connection: DNS rebinding."""

        def __init__(self) -> None:
            super().__init__(allow_private=False)
            self.lookups = 0

        async def _resolve(self, host: str, port: int) -> tuple[str | None, tuple[str, ...]]:
            self.lookups += 1
            if self.lookups == 1:
                return None, ("93.184.216.34",)
            return await super()._resolve("127.0.0.1", port)

    guard = Rebinding()
    async with serving(lambda n, r: (reply(204), False)) as server:
        sink = WebhookSink(HttpClient(resolve=guard.addresses), guard, timeout_s=5)
        message = Message("evt_1", "user.updated", server.url(host="rebind.invalid"), b"{}")
        result = await sink.send(message)
        await sink.close()
    assert result.status is None and result.error and result.error.startswith("refused:")
    assert guard.lookups == 2  # the check, then the connection's own: refused
    assert server.connections == 0
    with pytest.raises(UnsafeTarget):
        await guard.addresses("rebind.invalid", server.port)


async def test_the_sink_reports_a_refused_connection_as_a_failed_attempt():
    async with serving(lambda n, r: None) as server:
        port = server.port
    sink = WebhookSink(client(), TargetGuard(allow_private=True), timeout_s=5)
    result = await sink.send(Message("evt_1", "user.updated", f"http://127.0.0.1:{port}/", b"{}"))
    await sink.close()
    assert result.status is None and not result.timed_out
    # No errno text, no address: a delivery's reason must not map internal ports.
    assert result.error == "Unreachable: the receiver could not be reached"


async def test_a_connection_idle_too_long_is_not_reused(monkeypatch):
    async with serving(lambda n, r: (reply(204), False)) as server:
        http = client()
        await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        monkeypatch.setattr(http_module, "KEEPALIVE_S", -1.0)  # everything idle is too old
        await http.post(server.url(), b"{}", HEADERS, timeout_s=5)
        await http.close()
    assert server.connections == 2


async def test_a_request_waiting_for_a_busy_connection_keeps_its_deadline():
    """With every connection busy a request waits in line, within the same deadline."""

    def script(n: int, r: Request) -> tuple[bytes, bool] | None:
        return None if n == 1 else (reply(204), False)

    async with serving(script) as server:
        http = client(connections_per_host=1)
        hanging = asyncio.create_task(http.post(server.url(), b"{}", HEADERS, timeout_s=0.5))
        await asyncio.sleep(0.05)
        with pytest.raises(HttpTimeout):
            await http.post(server.url(), b"{}", HEADERS, timeout_s=0.1)
        with pytest.raises(HttpTimeout):
            await hanging
        # The hung connection was dropped: its place is free again.
        assert (await http.post(server.url(), b"{}", HEADERS, timeout_s=5)).status == 204
        await http.close()
    assert len(server.requests) == 2
    assert server.connections == 2


async def test_a_request_cancelled_in_line_gives_no_place_away():
    """Cancelling requests that wait for a connection (a dispatcher shutting down) neither
    loses the connection nor lets more than `connections_per_host` open."""
    hold_first = asyncio.Event()
    opened = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal opened
        opened += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(Request(head.decode(), b"").header("content-length") or 0)
                await reader.readexactly(length)
                await hold_first.wait()
                writer.write(reply(204))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/hook"
    http = client(connections_per_host=1)
    try:
        posts = [asyncio.create_task(http.post(url, b"{}", HEADERS, timeout_s=5)) for _ in range(4)]
        await asyncio.sleep(0.05)  # the first is sent, the other three wait in line
        posts[1].cancel()
        posts[3].cancel()
        hold_first.set()
        assert (await posts[0]).status == 204
        assert (await posts[2]).status == 204
        for cancelled in (posts[1], posts[3]):
            with pytest.raises(asyncio.CancelledError):
                await cancelled
        answers = await asyncio.gather(
            *(http.post(url, b"{}", HEADERS, timeout_s=5) for _ in range(4))
        )
        assert [a.status for a in answers] == [204] * 4
    finally:
        await http.close()
        listener.close()
    assert opened == 1


async def test_a_request_cancelled_just_as_it_is_handed_a_connection_passes_it_on():
    """The race the line has to get right: the connection is handed over, then the request
    is cancelled before it runs. The connection goes on to the next in line."""

    class CancelOnHandOver(HttpClient):
        victim: asyncio.Task[object] | None = None

        def _give_back(self, origin, connection):  # type: ignore[no-untyped-def]
            super()._give_back(origin, connection)
            if self.victim is not None and connection is not None:
                self.victim.cancel()
                self.victim = None

    async with serving(lambda n, r: (reply(204), False)) as server:
        http = CancelOnHandOver(resolve=loopback, connections_per_host=1)
        posts = [
            asyncio.create_task(http.post(server.url(), b"{}", HEADERS, timeout_s=5))
            for _ in range(3)
        ]
        await asyncio.sleep(0)  # all three started: one sends, two wait in line
        http.victim = posts[1]
        assert (await posts[0]).status == 204
        with pytest.raises(asyncio.CancelledError):
            await posts[1]
        assert (await posts[2]).status == 204
        await http.close()
    assert server.connections == 1
    assert len(server.requests) == 2
