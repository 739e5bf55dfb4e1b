"""A receiver cannot make the webhook client hold more than a bounded answer in memory: the
status line, each header line, the number of headers and the whole header section are
capped, and an answer past them is a failed attempt with a clear reason."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from globeguard.events.sinks import http as http_module
from globeguard.events.sinks.guard import TargetGuard
from globeguard.events.sinks.http import HttpClient, HttpError
from globeguard.events.sinks.port import Message
from globeguard.events.sinks.webhook import WebhookSink

HEADERS = {"webhook-id": "evt_1"}
MB = 1024 * 1024
CHUNK = b"a" * (64 * 1024)

Answerer = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Streamer:
    """Reads one request's head, then lets `answer` write; counts what it managed to send."""

    answer: Answerer
    port: int = 0
    sent: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await self.answer(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up on us: what these tests want
        finally:
            writer.close()

    async def write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.sent += len(data)


@contextlib.asynccontextmanager
async def streaming(make: Callable[[Streamer], Answerer]) -> AsyncIterator[Streamer]:
    server = Streamer(lambda writer: asyncio.sleep(0))
    server.answer = make(server)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


async def loopback(host: str, port: int) -> tuple[str, ...]:
    return ("127.0.0.1",)


async def post(server: Streamer) -> http_module.Answer:
    http = HttpClient(resolve=loopback)
    try:
        return await http.post(f"http://127.0.0.1:{server.port}/hook", b"{}", HEADERS, timeout_s=60)
    finally:
        await http.close()


async def test_a_200_mb_header_is_refused_with_memory_bounded():
    """The receiver streams one header value of 200 MB (never held whole on either side);
    the client stops reading at the header cap, so it neither buffers it nor waits for it."""
    total = 200 * MB

    def make(server: Streamer) -> Answerer:
        async def answer(writer: asyncio.StreamWriter) -> None:
            await server.write(writer, b"HTTP/1.1 200 OK\r\nX-Big: ")
            while server.sent < total:
                await server.write(writer, CHUNK)
            await server.write(writer, b"\r\nContent-Length: 0\r\n\r\n")

        return answer

    async with streaming(make) as server:
        tracemalloc.start()
        try:
            with pytest.raises(HttpError, match="header section larger than"):
                await post(server)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * MB  # the old client grew one buffer to the whole 200 MB
    assert server.sent < total // 4  # only what filled the socket buffers went out


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"HTTP/1.1 200 " + b"O" * 5000 + b"\r\n", "status line longer than"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * 10_000 + b"\r\n", "header line longer than"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 101, "more than 100 headers"),
    ],
)
async def test_oversized_answer_heads_are_refused(head, reason):
    def make(server: Streamer) -> Answerer:
        async def answer(writer: asyncio.StreamWriter) -> None:
            await server.write(writer, head + b"Content-Length: 0\r\n\r\n")

        return answer

    async with streaming(make) as server:
        with pytest.raises(HttpError, match=reason):
            await post(server)


async def test_a_bloated_chunked_body_is_cut_off():
    """Tiny chunks and a huge trailer cost bytes that are not body; they count too."""

    def make(server: Streamer) -> Answerer:
        async def answer(writer: asyncio.StreamWriter) -> None:
            await server.write(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            await server.write(writer, b"1;" + b"e" * 4000 + b"\r\nx\r\n0\r\nX-Trailer: ")
            while server.sent < 50 * MB:
                await server.write(writer, CHUNK)
            await server.write(writer, b"\r\n\r\n")

        return answer

    async with streaming(make) as server:
        answer = await post(server)
    assert answer.status == 200  # the receiver did answer; what followed was not read
    assert server.sent < 40 * MB


async def test_an_oversized_answer_is_a_failed_attempt_with_its_reason():
    def make(server: Streamer) -> Answerer:
        async def answer(writer: asyncio.StreamWriter) -> None:
            await server.write(writer, b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n")

        return answer

    async with streaming(make) as server:
        sink = WebhookSink(HttpClient(resolve=loopback), TargetGuard(allow_private=True))
        url = f"http://127.0.0.1:{server.port}/hook"
        result = await sink.send(Message("evt_1", "user.updated", url, b"{}"))
        await sink.close()
    assert result.status is None
    assert result.error == "AnswerTooLarge: answer has more than 100 headers"
