"""bench/latency.py's stall-free reference server: it answers every whole request once, as
the load generator sends them (pipelined heads, bodies split across reads)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from latency import REFERENCE_ANSWER, _take_request, reference_server

GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /v1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"


@pytest.mark.parametrize(
    ("buffer", "taken", "left"),
    [
        (b"", False, b""),
        (GET[:-2], False, GET[:-2]),
        (GET, True, b""),
        (GET + GET[:5], True, GET[:5]),
        (POST[:-1], False, POST[:-1]),
        (POST, True, b""),
        (POST.replace(b"Content-Length", b"content-length") + GET, True, GET),
    ],
)
def test_one_whole_request_is_taken(buffer: bytes, taken: bool, left: bytes) -> None:
    pending = bytearray(buffer)
    assert _take_request(pending) is taken
    assert bytes(pending) == left


def test_the_server_answers_each_request_once() -> None:
    with reference_server(0.0) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(GET + POST[:30])
            client.sendall(POST[30:] + GET)
            expected = REFERENCE_ANSWER * 3
            received = b""
            while len(received) < len(expected):
                received += client.recv(4096)
            assert received == expected
