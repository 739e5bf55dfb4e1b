"""A fake Pwned Passwords range API: a real HTTP server on loopback that answers
`GET /range/<prefix>` from a small corpus, padded with random suffixes of count 0 when asked
(`Add-Padding: true`), and records every request it gets. Knobs make it fail, answer
garbage, or hang until the test ends."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.support.loopback_http import LoopbackHTTPServer


def sha1_hex(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Behaviour:
    # password → times seen
    breached: dict[str, int] = field(default_factory=dict)
    # Passwords whose suffix is listed with a count of 0, as padding (they are not breached).
    padded_with: set[str] = field(default_factory=set)
    # Random padding lines per answer when the request asks for padding.
    padding_lines: int = 20
    # "serve", "error" (503), "garbage" (a 200 HTML page) or "hang" (no answer until closed).
    mode: str = "serve"


class FakeRange:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests: list[Request] = []
        # Called as each request arrives (tests order it among other events).
        self.on_request: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.server = LoopbackHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/range/"

    def __enter__(self) -> FakeRange:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # frees a hanging handler
        self.server.shutdown()
        self.server.server_close()

    def answer(self, prefix: str, padded: bool) -> str:
        lines = []
        for password, count in self.behaviour.breached.items():
            digest = sha1_hex(password)
            if digest.startswith(prefix):
                lines.append(f"{digest[5:]}:{count}")
        for password in self.behaviour.padded_with:
            digest = sha1_hex(password)
            if digest.startswith(prefix):
                lines.append(f"{digest[5:]}:0")
        if padded:
            lines += [
                f"{secrets.token_hex(18)[:35].upper()}:0"
                for _ in range(self.behaviour.padding_lines)
            ]
        secrets.SystemRandom().shuffle(lines)
        return "\r\n".join(lines)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                return

            def _send(self, status: int, body: str, content_type: str = "text/plain") -> None:
                raw = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.path, dict(self.headers.items()), self.rfile.read(length))
                with fake._lock:
                    fake.requests.append(request)
                if fake.on_request is not None:
                    fake.on_request()
                mode = fake.behaviour.mode
                if mode == "hang":
                    fake._closing.wait()
                    return
                if mode == "error":
                    self._send(503, "upstream unavailable")
                    return
                if mode == "garbage":
                    self._send(200, "<html><body>Sign in to continue</body></html>", "text/html")
                    return
                prefix = self.path.removeprefix("/range/")
                padded = self.headers.get("Add-Padding", "").lower() == "true"
                self._send(200, fake.answer(prefix.upper(), padded))

        return Handler
