"""The event loop `serve` runs on: uvloop, accepting every waiting connection at once.

libuv (under uvloop) accepts one connection per turn of the loop and waits for the next
readiness report for the rest. On a busy server a turn runs every request that is ready,
~10 ms at 3,000 req/s on `/users/me` here, so when a client opened 32 connections at once the
last one was accepted ~30 turns later: its first request took 150-300 ms while the others
took 8-10 ms, and that start-of-burst wait was the closed-loop maximum and much of the p99 in
bench/latency.py (the server itself answered each request in under 17 ms, measured from the
moment it had read it). asyncio's own loop accepts everything waiting on each readiness but
serves the cheapest routes 20-30% slower. So this loop keeps uvloop for everything and
replaces only the accept step of plain TCP servers: when a listening socket is readable it
accepts up to `ACCEPT_BURST` connections and hands each to uvloop as an accepted socket.
TLS, Unix sockets and any option we do not handle go to uvloop's own server unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

import uvloop

log = logging.getLogger(__name__)

# Connections taken per readiness report: a burst of clients is accepted in one turn, and a
# listening socket shared by several worker processes is still left to the others now and then.
ACCEPT_BURST = 128
# accept() failed (out of file descriptors or memory, most likely): stop accepting for a while
# instead of failing again every turn (the kernel keeps the connections queued meanwhile).
ACCEPT_PAUSE_S = 1.0
_TCP = (socket.AF_INET, socket.AF_INET6)

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class BurstAcceptLoop(uvloop.Loop):
    """uvloop, whose plain TCP servers accept in bursts (see the module docstring)."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: ProtocolFactory,
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **options: Any,
    ) -> asyncio.AbstractServer:
        if not _plain_tcp(sock, port, ssl, options):
            uvloop_server: Any = super().create_server  # its stub types one call per form
            return await uvloop_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **options
            )
        listeners = [sock] if sock is not None else await self._bind(host, port, backlog)
        server = BurstServer(self, listeners, protocol_factory)
        server.start(backlog)
        return server

    async def _bind(self, host: str | None, port: int | None, backlog: int) -> list[socket.socket]:
        """Listening sockets for every address of `host` (all interfaces when empty), as
        asyncio binds them: address reuse on, IPv6 sockets IPv6-only."""
        infos = await self.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        bound: list[socket.socket] = []
        try:
            for family, kind, proto, _name, address in _unique(infos):
                listener = socket.socket(family, kind, proto)
                bound.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    listener.bind(address)
                except OSError as exc:  # uvicorn logs this one line, then exits
                    raise OSError(
                        exc.errno, f"cannot listen on {address!r}: {exc.strerror}"
                    ) from exc
        except OSError:
            for listener in bound:
                listener.close()
            raise
        return bound


def _plain_tcp(
    sock: socket.socket | None, port: int | None, ssl: Any, options: dict[str, Any]
) -> bool:
    """Whether a create_server call is one this loop serves: TCP, no TLS, no other option."""
    if ssl is not None or options:
        return False
    return port is not None if sock is None else sock.family in _TCP


def _unique(infos: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """getaddrinfo answers, each (family, address) once."""
    seen: set[tuple[Any, Any]] = set()
    kept = []
    for info in infos:
        key = (info[0], info[4])
        if key not in seen:
            seen.add(key)
            kept.append(info)
    return kept


class BurstServer(asyncio.AbstractServer):
    """The listening sockets of one `create_server` call and their accept step."""

    def __init__(
        self, loop: BurstAcceptLoop, listeners: list[socket.socket], factory: ProtocolFactory
    ) -> None:
        self._loop = loop
        self._listeners = listeners
        self._factory = factory
        self._serving = False
        self._closed: asyncio.Future[None] = loop.create_future()
        # Strong references: a task the loop alone holds may be collected before it runs.
        self._handing_over: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._listeners)

    def start(self, backlog: int) -> None:
        burst = max(1, min(backlog, ACCEPT_BURST))
        for listener in self._listeners:
            # A socket handed over may be bound only (uvicorn's worker processes get theirs
            # so): listening starts here, as asyncio's create_server does it.
            listener.listen(backlog)
            listener.setblocking(False)
            self._watch(listener, burst)
        self._serving = True

    def _watch(self, listener: socket.socket, burst: int) -> None:
        self._loop.add_reader(listener.fileno(), self._accept_waiting, listener, burst)

    def _accept_waiting(self, listener: socket.socket, burst: int) -> None:
        for _ in range(burst):
            try:
                connection, _peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while queued; the next one may be waiting
            except OSError as exc:
                self._pause_after(exc, listener, burst)
                return
            self._hand_over(connection)

    def _pause_after(self, exc: OSError, listener: socket.socket, burst: int) -> None:
        """Out of descriptors or memory, or anything else accept() refuses: the listening
        socket stays readable, so accepting again at once would fail again, every turn."""
        log.error("accepting paused for %.1f s: %s", ACCEPT_PAUSE_S, exc)
        self._loop.remove_reader(listener.fileno())
        self._loop.call_later(ACCEPT_PAUSE_S, self._resume, listener, burst)

    def _resume(self, listener: socket.socket, burst: int) -> None:
        if self._serving:
            self._watch(listener, burst)

    def _hand_over(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        task = self._loop.create_task(self._connect(connection))
        self._handing_over.add(task)
        task.add_done_callback(self._handing_over.discard)

    async def _connect(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, connection)
        except Exception:
            # uvloop closes the transport it made; the socket is ours if it made none.
            log.exception("a new connection could not be set up")
            connection.close()

    def close(self) -> None:
        if not self._serving:
            return
        self._serving = False
        for listener in self._listeners:
            self._loop.remove_reader(listener.fileno())
            listener.close()
        self._closed.set_result(None)

    async def wait_closed(self) -> None:
        if self._handing_over:
            await asyncio.gather(*self._handing_over, return_exceptions=True)

    def is_serving(self) -> bool:
        return self._serving

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    async def start_serving(self) -> None:
        """Serving starts with `create_server`; nothing to do."""

    async def serve_forever(self) -> None:
        if not self._serving:
            raise RuntimeError("the server is closed")
        await asyncio.shield(self._closed)


def new_event_loop() -> BurstAcceptLoop:
    """The loop factory `globeguard serve` hands uvicorn."""
    return BurstAcceptLoop()
