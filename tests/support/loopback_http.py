"""The HTTP server the fakes of remote APIs run on loopback."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A thread per request, and a listen backlog a starved test process cannot overflow.

    http.server listens with a backlog of 5. While the test process gets no CPU (a busy
    machine, another test process starting servers) connections queue unaccepted; past the
    backlog the kernel drops SYNs, and the client's connect waits out retransmissions beyond
    httpx's 5 s connect timeout."""

    daemon_threads = True
    request_queue_size = 128
