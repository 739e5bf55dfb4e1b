"""A fake Auth0 Management API: a real HTTP server on loopback with the token endpoint, the
users-exports job endpoints and a gzip download, and knobs to make it slow, rate-limited,
failing, or hand out links that have expired."""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback_http import LoopbackHTTPServer

CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-secret-value-1234"


@dataclass
class Behaviour:
    users: list[dict[str, Any]] = field(default_factory=list)
    # Polls answered `pending` before the job completes.
    pending_polls: int = 0
    # Poll numbers (1-based) answered 429 with this Retry-After.
    throttled_polls: set[int] = field(default_factory=set)
    retry_after: str = "3"
    # When set, the job ends `failed` with this summary after the pending polls.
    fail_summary: str | None = None
    # Downloads answered 403 (an S3 link that expired) before one succeeds.
    expired_downloads: int = 0
    token_ttl: int = 86400


@dataclass
class Seen:
    token_requests: int = 0
    export_requests: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    downloads: int = 0
    authorizations: set[str] = field(default_factory=set)


class FakeAuth0:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.seen = Seen()
        self._issued = 0
        self._lock = threading.Lock()
        self.server = LoopbackHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeAuth0:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _export_body(self) -> bytes:
        lines = "".join(json.dumps(user) + "\n" for user in self.behaviour.users)
        return gzip.compress(lines.encode())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None):
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _authorized(self) -> bool:
                header = self.headers.get("Authorization", "")
                fake.seen.authorizations.add(header)
                return header.startswith("Bearer tok-")

            def do_POST(self) -> None:
                if self.path == "/oauth/token":
                    body = self._body()
                    fake.seen.token_requests += 1
                    if (body.get("client_id"), body.get("client_secret")) != (
                        CLIENT_ID,
                        CLIENT_SECRET,
                    ):
                        self._send(401, {"error": "access_denied"})
                        return
                    with fake._lock:
                        fake._issued += 1
                        token = f"tok-{fake._issued}"
                    self._send(
                        200,
                        {
                            "access_token": token,
                            "expires_in": fake.behaviour.token_ttl,
                            "token_type": "Bearer",
                        },
                    )
                elif self.path == "/api/v2/jobs/users-exports":
                    if not self._authorized():
                        self._send(401, {"message": "Missing authentication"})
                        return
                    fake.seen.export_requests.append(self._body())
                    self._send(201, {"id": "job_fake0001", "status": "pending"})
                else:
                    self._send(404, {"message": "not found"})

            def do_GET(self) -> None:
                if self.path == "/api/v2/jobs/job_fake0001":
                    self._poll()
                elif self.path.startswith("/exports/job_fake0001.json.gz"):
                    fake.seen.downloads += 1
                    if fake.seen.downloads <= fake.behaviour.expired_downloads:
                        self._send(403, b"<Error><Code>AccessDenied</Code></Error>")
                        return
                    self._send(200, fake._export_body(), {"Content-Type": "application/gzip"})
                else:
                    self._send(404, {"message": "not found"})

            def _poll(self) -> None:
                if not self._authorized():
                    self._send(401, {"message": "Missing authentication"})
                    return
                fake.seen.polls += 1
                number = fake.seen.polls
                behaviour = fake.behaviour
                if number in behaviour.throttled_polls:
                    self._send(
                        429,
                        {"message": "Too Many Requests"},
                        {"Retry-After": behaviour.retry_after},
                    )
                    return
                answered = number - len({n for n in behaviour.throttled_polls if n < number})
                if answered <= behaviour.pending_polls:
                    self._send(200, {"id": "job_fake0001", "status": "pending"})
                elif behaviour.fail_summary is not None:
                    self._send(
                        200,
                        {
                            "id": "job_fake0001",
                            "status": "failed",
                            "summary": behaviour.fail_summary,
                        },
                    )
                else:
                    location = (
                        f"{fake.url}/exports/job_fake0001.json.gz?X-Amz-Expires=60&n={number}"
                    )
                    self._send(
                        200, {"id": "job_fake0001", "status": "completed", "location": location}
                    )

        return Handler
