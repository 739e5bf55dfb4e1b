#!/usr/bin/env python3
"""A webhook receiver doing what a real one does, for bench/events.py: verify the Standard
Webhooks signature (with globeguard.webhooks.verify, the helper receivers import), parse the
JSON, deduplicate on webhook-id, answer 204. It also records, per request, when it arrived and
how long after the event's `time` — the commit → delivery latency.

    POST /hook      a webhook (401 when the signature does not verify)
    POST /config    {"secret": "whsec_…"} — the key to verify with; also clears the record
    GET  /stats     {"requests", "unique", "first", "last"} since the last /config, and
                    "latencies" with ?latencies=1 (polled every 50 ms, the counts stay small)

One process, uvicorn with httptools and uvloop: its own max req/s (measured with wrk by the
benchmark) is the baseline the dispatcher's delivery rate is divided by. Every request costs
it the same work whether its webhook-id is new or not (verify, parse, read the event's time):
wrk repeats one id, the dispatcher sends a new one each time, and the baseline must not be
cheaper per request than the run it is compared with.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import orjson
import uvicorn

from globeguard.webhooks.verify import WebhookVerificationError, verify


class State:
    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.reset()

    def reset(self) -> None:
        self.seen: set[str] = set()
        self.requests = 0
        self.first = 0.0
        self.last = 0.0
        self.latencies: list[float] = []


STATE = State()


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", b"application/json")] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _hook(body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> int:
    now = time.time()
    headers = {k.decode(): v.decode() for k, v in raw_headers}
    try:
        msg_id = verify(body, headers, STATE.secrets, now=now)
    except (WebhookVerificationError, ValueError):
        return 401
    event = orjson.loads(body)
    occurred = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
    STATE.requests += 1
    STATE.first = STATE.first or now
    STATE.last = now
    if msg_id not in STATE.seen:
        STATE.seen.add(msg_id)
        STATE.latencies.append(now - occurred)
    return 204


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    body = await _body(receive)
    if method == "POST" and path == "/hook":
        await _answer(send, _hook(body, scope["headers"]))
    elif method == "POST" and path == "/config":
        STATE.secrets = [orjson.loads(body)["secret"]]
        STATE.reset()
        await _answer(send, 204)
    elif method == "GET" and path == "/stats":
        stats: dict[str, Any] = {
            "requests": STATE.requests,
            "unique": len(STATE.seen),
            "first": STATE.first,
            "last": STATE.last,
        }
        if b"latencies=1" in scope["query_string"]:
            stats["latencies"] = STATE.latencies
        await _answer(send, 200, orjson.dumps(stats))
    else:
        await _answer(send, 404)


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )
