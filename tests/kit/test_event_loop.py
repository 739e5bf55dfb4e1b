"""kit.event_loop: uvloop whose TCP servers accept every waiting connection in one turn."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from globeguard.kit import event_loop
from globeguard.kit.event_loop import BurstAcceptLoop, BurstServer, new_event_loop

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main())


class Echo(asyncio.Protocol):
    made: list[Echo] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        Echo.made.append(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _fresh_echo() -> None:
    Echo.made = []


def port_of(server: asyncio.AbstractServer) -> int:
    return int(server.sockets[0].getsockname()[1])


async def echoed(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new connection that sent `data` and got it back upper-cased; still open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    assert await reader.readexactly(len(data)) == data.upper()
    return reader, writer


class FailingAccept:
    """socket.accept raising `error` for its next `times` calls; counts every call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: OSError, times: int) -> None:
        self.times, self.calls = times, 0
        real_accept = socket.socket.accept

        def accept(listener: socket.socket) -> tuple[socket.socket, Any]:
            self.calls += 1
            if self.calls <= self.times:
                raise error
            return real_accept(listener)

        monkeypatch.setattr(socket.socket, "accept", accept)


async def turns_until(done: Callable[[], bool]) -> int:
    """Turns of the loop until done() holds (a callback re-armed once per turn counts them)."""
    loop = asyncio.get_running_loop()
    turns = 0
    finished = loop.create_future()

    def tick() -> None:
        nonlocal turns
        turns += 1
        if done():
            finished.set_result(None)
        elif turns < 10_000:
            loop.call_soon(tick)
        else:
            finished.set_exception(AssertionError("never done"))

    loop.call_soon(tick)
    await finished
    return turns


def test_the_factory_makes_the_burst_accept_loop() -> None:
    loop = new_event_loop()
    try:
        assert isinstance(loop, BurstAcceptLoop)
    finally:
        loop.close()


def test_connections_waiting_together_are_accepted_in_one_turn() -> None:
    """uvloop alone takes one connection per turn: 20 waiting clients cost 20 turns, and on a
    busy server each turn is every ready request."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        assert isinstance(server, BurstServer)
        clients = [socket.create_connection(("127.0.0.1", port_of(server))) for _ in range(20)]
        try:
            return await turns_until(lambda: len(Echo.made) == 20)
        finally:
            for client in clients:
                client.close()
            server.close()
            await server.wait_closed()

    assert run(main) <= 4


def test_a_connection_is_served_and_close_stops_accepting() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = port_of(server)
        reader, writer = await echoed(port, b"ping")
        assert server.is_serving()
        server.close()
        await server.wait_closed()
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        # The open connection outlives the listener, as with asyncio's servers.
        writer.write(b"pong")
        assert await reader.readexactly(4) == b"PONG"
        writer.close()

    run(main)


@pytest.mark.parametrize("listening", [False, True])
def test_a_socket_bound_elsewhere_is_served_as_given(listening: bool) -> None:
    """uvicorn's worker processes hand the loop a socket their parent bound but did not
    make listen (`globeguard serve --workers 2` answered nothing before)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        if listening:
            listener.listen()
        server = await loop.create_server(Echo, sock=listener)
        assert isinstance(server, BurstServer)
        assert server.sockets == (listener,)
        _, writer = await echoed(listener.getsockname()[1], b"abc")
        writer.close()
        server.close()

    run(main)


def test_what_it_does_not_handle_goes_to_uvloop_unchanged(tmp_path: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(str(tmp_path / "s"))
        for server in (
            await loop.create_server(Echo, sock=unix),
            await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False),
        ):
            assert not isinstance(server, BurstServer)
            server.close()

    run(main)


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENOMEM, errno.EINVAL])
def test_a_failing_accept_pauses_accepting_then_resumes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, code: int
) -> None:
    """Out of descriptors, or any error accept() keeps giving: not tried again every turn
    while it lasts, and the waiting client is served after the pause."""
    monkeypatch.setattr(event_loop, "ACCEPT_PAUSE_S", 0.05)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        accept = FailingAccept(monkeypatch, OSError(code, "refused"), times=1_000)
        waiting = socket.create_connection(("127.0.0.1", port_of(server)))
        failed_turns = 0

        def twenty_turns_after_the_failure() -> bool:
            nonlocal failed_turns
            failed_turns += accept.calls > 0
            return failed_turns >= 20

        await turns_until(twenty_turns_after_the_failure)
        assert accept.calls == 1
        accept.times = 0  # the error is over
        waiting.sendall(b"late")
        assert await asyncio.to_thread(waiting.recv, 4) == b"LATE"
        waiting.close()
        server.close()

    run(main)
    assert "accepting paused" in caplog.text


def test_a_client_that_gives_up_in_the_queue_does_not_stop_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        aborted = ConnectionAbortedError(errno.ECONNABORTED, "gone")
        accept = FailingAccept(monkeypatch, aborted, times=1)
        _, writer = await echoed(port_of(server), b"next")
        writer.close()
        server.close()
        assert accept.calls >= 2

    run(main)


def test_a_protocol_that_cannot_be_made_closes_only_its_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = 0

    def factory() -> asyncio.Protocol:
        nonlocal made
        made += 1
        if made == 1:
            raise RuntimeError("boom")
        return Echo()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0)
        first_reader, _ = await asyncio.open_connection("127.0.0.1", port_of(server))
        assert await first_reader.read() == b""  # closed by the server
        _, writer = await echoed(port_of(server), b"ok")
        writer.close()
        server.close()

    run(main)
    assert "could not be set up" in caplog.text


def test_serve_forever_returns_when_the_server_closes() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        serving = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        await serving
        with pytest.raises(RuntimeError):
            await server.serve_forever()

    run(main)


def test_a_port_in_use_is_refused_naming_the_address() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(OSError, match=f"cannot listen on \\('127.0.0.1', {port}\\)") as err:
            await loop.create_server(Echo, "127.0.0.1", port)
        assert err.value.errno == errno.EADDRINUSE

    try:
        run(main)
    finally:
        taken.close()
