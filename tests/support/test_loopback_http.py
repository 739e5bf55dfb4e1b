"""The fakes' HTTP server keeps connections a starved test process has not accepted yet."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler

from tests.support.loopback_http import LoopbackHTTPServer


def test_connections_queue_while_the_server_is_not_accepting() -> None:
    # serve_forever is never started: as when the test process gets no CPU for a while.
    server = LoopbackHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    clients: list[socket.socket] = []
    try:
        for _ in range(32):
            # With http.server's backlog of 5, a connect past the backlog is dropped: it times out.
            clients.append(socket.create_connection(server.server_address[:2], timeout=0.5))
        assert len(clients) == 32
    finally:
        for client in clients:
            client.close()
        server.server_close()
